"""Absolute channel balance: simulated DMSO crops are as bright, per stain, as real BBBC021 DMSO crops.

The other realism checks (test_realism.py) scale every crop to its maximum first, so they
compare the *layout* of the stains and are blind to exposure. A composite's colours rest on
the absolute levels: before this check, the bundled slice's DMSO crops had DNA/tubulin/actin
means 43/123/43 and 99th percentiles 161/255/75 with 1.3 % of the tubulin pixels clipped, so
composites were tubulin-red with dim actin.

Real: every DMSO crop of both ../shared BBBC021 archives (3,438 cells, 30 plates; channels
put in cp2image's order). Two real references, because ingested crops are scaled *per crop*
to their maximum (one pixel per crop and channel at 255), which a camera with one exposure
cannot reproduce while cells differ in brightness:

- the ingested crops (`max_scaled`): how far up the 8-bit range each stain reaches (p99);
- the same raw crops with one exposure per plate and channel, set to that p99
  (`linear_exposure`, plates with ≥ 20 DMSO cells): the mean and clipped fraction a
  linear camera shows at that level, which is what the simulator is.

Measured on this machine (bundled slice vs real; tolerances are the assertions below):

| DNA / Tubulin / Actin | simulated DMSO, before | simulated DMSO, now | real ingested | real, one exposure per plate | tolerance |
|---|---|---|---|---|---|
| p99 | 161 / 255 / 75 | 233 / 233 / 218 | 233 / 231 / 221 | 233 / 231 / 221 | ± 12 grey levels of ingested |
| mean | 43.2 / 123.1 / 42.7 | 55.3 / 106.0 / 100.4 | 73.9 / 131.0 / 116.2 | 62.0 / 108.3 / 85.5 | ± 20 % of one exposure |
| saturated (%) | 0.06 / 1.33 / 0.00 | 0.38 / 0.51 / 0.28 | 0.02 / 0.02 / 0.02 | 0.62 / 0.62 / 0.46 | ± 0.35 percentage points |

("Before": the slice of commit 7fbc701, 324 DMSO cells; "now": 288 DMSO cells of the rebuilt
slice. What changed: `render.DMSO_EXPOSURE`, and the cell-to-cell spread of the tubulin and
actin stains, see `phenotypes.py`.) Actin is the loosest fit: +17 % in mean at the real p99,
because real F-actin varies more from cell to cell than the simulated stain.

Without ../shared, the same comparison runs against the real values recorded in
`RECORDED_REAL` (and, with ../shared, a test checks the recorded values are still what the
real crops give).
"""
from __future__ import annotations

import numpy as np
import pytest

from cp2image.assets import bundled_dataset_dir
from cp2image.channels import CHANNELS
from cp2image.data.dataset import open_dataset
from cp2image.data.simulate.realism import ChannelBalance, channel_balance, linear_exposure, max_scaled

ARCHIVE_TO_CP2IMAGE = [0, 2, 1]  # both archives store DAPI, F-actin, β-tubulin → DNA, Tubulin, Actin
P99_TOLERANCE = 12.0  # grey levels
MEAN_TOLERANCE = 0.20  # relative
SATURATED_TOLERANCE = 0.0035  # absolute fraction (0.35 percentage points)

# Real levels measured by `real_references` below on the 3,438 DMSO crops (rounded as printed).
RECORDED_REAL = {
    "ingested_p99": (233.0, 231.0, 221.0),
    "linear_mean": (62.0, 108.3, 85.5),
    "linear_saturated": (0.0062, 0.0062, 0.0046),
}


@pytest.fixture(scope="module")
def real_references(real_cells_npz, real_moa_cells_npz) -> tuple[ChannelBalance, ChannelBalance]:
    """(ingested, one exposure per plate) balance of every real DMSO crop."""
    raws, plates = [], []
    for path in (real_cells_npz, real_moa_cells_npz):
        with np.load(path, allow_pickle=False) as z:
            dmso = np.flatnonzero(z["compound"] == "DMSO")
            raws.append(z["images"][dmso].transpose(0, 3, 1, 2)[:, ARCHIVE_TO_CP2IMAGE])
            plates.append(z["plate"][dmso])
    raw, plate = np.concatenate(raws), np.concatenate(plates)
    ingested = channel_balance(max_scaled(raw))
    linear = channel_balance(linear_exposure(raw, plate, ingested.p99))
    for name in CHANNELS:
        print(f"real {name}: ingested {ingested.row(name)}; one exposure per plate {linear.row(name)}")
    return ingested, linear


@pytest.fixture(scope="module")
def simulated() -> ChannelBalance:
    ds = open_dataset(bundled_dataset_dir())  # a committed asset: missing is a failure, not a skip
    dmso = np.flatnonzero((ds.cells["Metadata_Compound"] == "DMSO").to_numpy())
    balance = channel_balance(np.asarray(ds.images[dmso]))
    for name in CHANNELS:
        print(f"simulated {name}: {balance.row(name)}")
    return balance


def _assert_balanced(sim: ChannelBalance, p99: tuple[float, ...], mean: tuple[float, ...],
                     saturated: tuple[float, ...]) -> None:
    for c, name in enumerate(CHANNELS):
        assert sim.p99[c] == pytest.approx(p99[c], abs=P99_TOLERANCE), (name, "p99", sim.row(name))
        assert sim.mean[c] == pytest.approx(mean[c], rel=MEAN_TOLERANCE), (name, "mean", sim.row(name))
        assert sim.saturated[c] == pytest.approx(saturated[c], abs=SATURATED_TOLERANCE), (name, "saturated",
                                                                                         sim.row(name))


def test_simulated_dmso_stains_are_as_bright_as_real_dmso_crops(real_references, simulated):
    ingested, linear = real_references
    _assert_balanced(simulated, ingested.p99, linear.mean, linear.saturated)


def test_recorded_real_levels_are_what_the_real_crops_give(real_references):
    ingested, linear = real_references
    np.testing.assert_allclose(ingested.p99, RECORDED_REAL["ingested_p99"], atol=0.5)
    np.testing.assert_allclose(linear.mean, RECORDED_REAL["linear_mean"], atol=0.06)
    np.testing.assert_allclose(linear.saturated, RECORDED_REAL["linear_saturated"], atol=0.00006)


def test_simulated_dmso_stains_match_the_recorded_real_levels(simulated):
    """Runs without ../shared: the bundled slice against the recorded real levels."""
    _assert_balanced(simulated, RECORDED_REAL["ingested_p99"], RECORDED_REAL["linear_mean"],
                     RECORDED_REAL["linear_saturated"])


def test_channel_balance_pools_all_pixels_of_each_channel():
    images = np.zeros((2, 3, 10, 10), np.uint8)
    images[0, 0] = 100  # DNA: half the pixels 100, half 0 → mean 50
    images[:, 1, 0, :] = 255  # Tubulin: one row of ten in each crop clipped → 10 % saturated
    images[:, 2] = 7
    balance = channel_balance(images)
    assert balance.mean == pytest.approx((50.0, 25.5, 7.0))
    assert balance.saturated == pytest.approx((0.0, 0.1, 0.0))
    assert balance.p99 == pytest.approx((100.0, 255.0, 7.0))


def test_channel_balance_rejects_images_that_are_not_uint8_crops_in_channel_order():
    with pytest.raises(ValueError, match="uint8"):
        channel_balance(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="DNA, Tubulin, Actin"):
        channel_balance(np.zeros((2, 4, 4, 4), np.uint8))


def test_linear_exposure_gives_one_gain_per_plate_so_brighter_plates_look_the_same():
    rng = np.random.default_rng(0)
    crops = rng.uniform(100, 1000, (25, 3, 8, 8))
    raw = np.concatenate([crops, 3 * crops])  # plate B recorded three times brighter
    plates = np.array(["A"] * 25 + ["B"] * 25)
    out = linear_exposure(raw, plates, (200.0, 150.0, 100.0))
    np.testing.assert_array_equal(out[:25], out[25:])
    assert channel_balance(out).p99 == pytest.approx((200.0, 150.0, 100.0), abs=1.0)
    # within a plate the gain is one number: a crop twice as bright stays twice as bright (until it clips)
    dim = np.argmin(crops[:, 0].mean(axis=(1, 2)))
    assert out[dim, 0].astype(float).mean() < out[:25, 0].astype(float).mean()


def test_linear_exposure_leaves_out_plates_with_too_few_cells():
    raw = np.ones((30, 3, 4, 4))
    plates = np.array(["big"] * 25 + ["small"] * 5)
    assert len(linear_exposure(raw, plates, (200.0, 200.0, 200.0))) == 25
    with pytest.raises(ValueError, match="no plate has 40"):
        linear_exposure(raw, plates, (200.0, 200.0, 200.0), min_cells=40)
