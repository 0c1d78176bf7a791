"""Edge frame, streak index and actin puncta: each checked on crops drawn so the answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from cp2image.channels import CHANNELS
from cp2image.evaluation.image_quality import (
    ImageQuality, PunctaConfig, count_puncta, edge_frame_ratio, quality_summary, streak_index,
)

ACTIN = CHANNELS.index("Actin")


def noise(n: int = 16, size: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3, size, size)).astype(np.uint8)


def test_texture_that_is_the_same_everywhere_has_no_frame():
    assert edge_frame_ratio(noise()) == pytest.approx(1.0, abs=0.05)


def test_a_bright_outline_one_pixel_inside_the_crop_is_a_frame():
    crops = np.full((4, 3, 48, 48), 60, dtype=np.uint8)
    crops += noise(4)[:, :, :, :] // 16  # faint texture everywhere, so the inside is not flat
    crops[..., 1, 1:-1] = crops[..., -2, 1:-1] = 250
    crops[..., 1:-1, 1] = crops[..., 1:-1, -2] = 250
    assert edge_frame_ratio(crops) > 10


def test_straight_row_streaks_score_high_and_isotropic_texture_low():
    rng = np.random.default_rng(1)
    rows = np.repeat(rng.integers(0, 256, (8, 3, 48, 1)), 48, axis=3).astype(np.uint8)  # each row one value
    rows = rows // 2 + noise(8, seed=2) // 32  # plus faint isotropic noise, so E_x > 0
    assert streak_index(rows) > 2.0
    assert streak_index(noise()) < 0.1


def test_puncta_are_small_bright_spots_and_nothing_else():
    crops = np.zeros((3, 3, 48, 48), dtype=np.uint8)
    for y, x in [(5, 5), (5, 30), (20, 12), (40, 40)]:  # four 2 × 2 spots, well apart
        crops[0, ACTIN, y:y + 2, x:x + 2] = 200
    crops[1, ACTIN, 10:30, 10:30] = 200  # a large bright patch: an opening keeps it, so no top-hat spot
    crops[2, ACTIN, 8, 8] = 200  # one pixel: below the minimum area
    crops[2, ACTIN, 30:32, 30:32] = 60  # a dim spot: below the threshold
    crops[2, CHANNELS.index("DNA"), 20:22, 20:22] = 255  # a spot in another channel
    assert count_puncta(crops).tolist() == [4, 0, 0]
    assert count_puncta(crops, PunctaConfig(threshold=50)).tolist() == [4, 0, 1]
    assert count_puncta(crops, PunctaConfig(channel="DNA")).tolist() == [0, 0, 1]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="channels, height, width"):
        edge_frame_ratio(np.zeros((48, 48)))
    with pytest.raises(ValueError, match="too small"):
        streak_index(np.zeros((1, 3, 12, 12)))
    with pytest.raises(ValueError, match="no 'GFP' channel"):
        count_puncta(noise(1), PunctaConfig(channel="GFP"))


def test_the_summary_puts_real_beside_generated_and_counts_puncta_per_class():
    real, generated = noise(4, seed=3), noise(4, seed=4)
    generated[:, ACTIN] = 0
    generated[0, ACTIN, 10:12, 10:12] = 200
    summary = quality_summary(real, generated, np.array(["DMSO", "DMSO", "actin", "actin"]))
    assert summary["real"] == ImageQuality.of(real).__dict__
    assert summary["generated"]["puncta_per_crop"] == 0.25
    by_class = {row["class"]: row for row in summary["puncta_by_class"]}
    assert by_class["DMSO"]["n"] == 2 and by_class["DMSO"]["generated"] == 0.5
    assert by_class["actin"]["generated"] == 0.0
    assert by_class["actin"]["real"] == float(count_puncta(real[2:]).mean())
    with pytest.raises(ValueError, match="3 labels for 4 real"):
        quality_summary(real, generated, np.array(["a", "b", "c"]))


def test_statistics_do_not_depend_on_how_many_crops_are_read_at_a_time(monkeypatch):
    from cp2image.evaluation import image_quality

    crops = noise(10, seed=5)
    whole = ImageQuality.of(crops)
    monkeypatch.setattr(image_quality, "CHUNK", 3)
    chunked = ImageQuality.of(crops)
    assert chunked.edge_frame == pytest.approx(whole.edge_frame, rel=1e-12)
    assert chunked.streak == whole.streak and chunked.puncta_per_crop == whole.puncta_per_crop
