"""Pose control: generated cells are turned to the requested nucleus orientation (cp2image.models.pose).

Analytic cases on synthetic cells (an elliptical nucleus inside an elliptical cell), measured
back with `cp2image.features.measure`, and the hook in `CP2Image.generate` on tiny models.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage as ndi
from torch import nn

from cp2image.features.measure import MeasureConfig, measure
from cp2image.models.pose import (POSE_FEATURE, PoseConfig, align_orientation, nucleus_orientation, rotate_images,
                                  wrap_angle)
from cp2image.analysis.perturb import sweep_feature
from cp2image.models.testing import tiny_model

SHAPE = MeasureConfig(groups=("AreaShape", "Intensity"))
NAMES = ["Nuclei_AreaShape_Area", POSE_FEATURE, "Cells_AreaShape_Area", "Cells_Intensity_MeanIntensity_Actin"]


def synthetic_cell(angle: float, *, nucleus_axes: tuple[float, float] = (13.0, 7.0), size: int = 68) -> np.ndarray:
    """uint8 (3, size, size): nucleus (DNA) with its major axis at `angle` degrees (AreaShape convention), in a cell."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2.0
    t = np.radians(angle)
    u = yy * np.cos(t) + xx * np.sin(t)  # along the axis (row, col) = (cos t, sin t)
    v = -yy * np.sin(t) + xx * np.cos(t)
    a, b = nucleus_axes
    nucleus = (u / a) ** 2 + (v / b) ** 2 <= 1
    cell = (u / (a + 10)) ** 2 + (v / (b + 12)) ** 2 <= 1
    image = np.full((3, size, size), 6.0)  # dim background, as in real crops
    image[0][nucleus] = 200
    image[1][cell], image[2][cell] = 120, 90
    image[1][nucleus], image[2][nucleus] = 60, 40
    # edges blurred as a microscope (and the generator) blur them
    return np.rint(ndi.gaussian_filter(image, (0, 1.0, 1.0))).astype(np.uint8)


def measured(images: np.ndarray, feature: str = "Nuclei_AreaShape_Orientation") -> np.ndarray:
    return measure(images, config=SHAPE)[feature].to_numpy()


def angular_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(wrap_angle(np.asarray(a) - np.asarray(b)))


# ----------------------------------------------------------------------------- measuring the drawn pose


def test_drawn_orientation_is_what_measure_reports():
    images = np.stack([synthetic_cell(a) for a in (0.0, 30.0, 45.0, -60.0, 89.0)])
    orientation, eccentricity = nucleus_orientation(images)
    table = measure(images, config=SHAPE)
    np.testing.assert_allclose(orientation, table["Nuclei_AreaShape_Orientation"], atol=1e-9)
    np.testing.assert_allclose(eccentricity, table["Nuclei_AreaShape_Eccentricity"], atol=1e-9)
    assert angular_error(orientation, [0.0, 30.0, 45.0, -60.0, 89.0]).max() < 2.0


def test_a_crop_without_a_nucleus_has_no_drawn_orientation():
    orientation, eccentricity = nucleus_orientation(np.zeros((2, 3, 68, 68), np.uint8))
    assert np.isnan(orientation).all() and np.isnan(eccentricity).all()


# ----------------------------------------------------------------------------- turning


@pytest.mark.parametrize("delta", [20.0, -30.0, 75.0, 100.0])
def test_turning_by_delta_raises_the_measured_orientation_by_delta(delta):
    image = synthetic_cell(10.0)[None]
    assert angular_error(measured(rotate_images(image, [delta])), wrap_angle(10.0 + delta))[0] < 2.0


def test_turned_images_keep_shape_and_dtype_and_have_no_black_corners():
    images = np.stack([synthetic_cell(0.0), synthetic_cell(40.0)])
    turned = rotate_images(images, [45.0, -45.0])
    assert turned.dtype == np.uint8 and turned.shape == images.shape
    corners = turned[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners > 0).all()  # the dim background is mirrored in, nothing is zero-filled
    assert (rotate_images(images, [45.0, -45.0], frame=4)[:, :, [6, 6, -7, -7], [6, -7, 6, -7]] > 0).all()


def test_with_a_frame_the_outer_pixels_stay_as_drawn():
    image = synthetic_cell(0.0)[None]
    image[..., :2, :] = 255  # an edge artefact along the top
    turned = rotate_images(image, [60.0], frame=4)
    np.testing.assert_array_equal(turned[..., :4, :], image[..., :4, :])
    assert turned[..., 4:-4, 4:-4].max() < 255  # and it is not mirrored into the turned box


def seam_step(image: np.ndarray, frame: int) -> float:
    """Largest jump across the frame's inner edge along the top and left sides."""
    top = np.abs(image[..., frame, frame:-frame].astype(float) - image[..., frame - 1, frame:-frame])
    left = np.abs(image[..., frame:-frame, frame].astype(float) - image[..., frame:-frame, frame - 1])
    return max(top.max(), left.max())


def test_a_feather_fades_the_turned_box_into_the_kept_frame():
    image = synthetic_cell(0.0)[None]
    ramp = np.linspace(0, 120, 68)[None, None, None, :]  # a vignette the turn moves, so frame and box disagree
    image = np.clip(image + ramp, 0, 255).astype(np.uint8)
    hard = rotate_images(image, [60.0], frame=4)
    soft = rotate_images(image, [60.0], frame=4, feather=3)
    np.testing.assert_array_equal(soft[..., :4, :], image[..., :4, :])  # the frame is still as drawn
    np.testing.assert_array_equal(soft[..., 7:-7, 7:-7], hard[..., 7:-7, 7:-7])  # inside the ramp: the exact turn
    assert seam_step(soft, 4) < 0.5 * seam_step(hard, 4)
    ring = soft[..., 4, 10:-10].astype(float)  # depth 0 takes a quarter of the turn
    expected = 0.25 * hard[..., 4, 10:-10] + 0.75 * image[..., 4, 10:-10]
    assert np.abs(ring - expected).max() <= 1.0


def test_pose_control_feathers_its_turns_and_still_meets_the_requested_angle():
    assert PoseConfig().feather > 0
    result = align_orientation(synthetic_cell(30.0)[None], np.array([-45.0]))
    assert angular_error(measured(result.images), -45.0)[0] < 3.0


def test_rotation_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="angles for"):
        rotate_images(np.zeros((2, 3, 68, 68), np.uint8), [1.0])
    with pytest.raises(ValueError, match="no image inside"):
        rotate_images(np.zeros((1, 3, 8, 8), np.uint8), [1.0], frame=4)


# ----------------------------------------------------------------------------- aligning to a request


@pytest.mark.parametrize("requested", [70.0, -45.0, 0.0, 88.0, -88.0])
def test_an_elongated_nucleus_is_turned_to_the_requested_angle(requested):
    result = align_orientation(synthetic_cell(30.0)[None], np.array([requested]))
    assert angular_error(measured(result.images), requested)[0] < 3.0


def test_turns_take_the_short_way_round_the_180_degree_period():
    result = align_orientation(synthetic_cell(85.0)[None], np.array([-85.0]))
    assert 5.0 < result.turned[0] < 15.0  # +10°, not −170°
    assert angular_error(measured(result.images), -85.0)[0] < 3.0


def test_requests_beyond_the_period_are_wrapped_onto_it():
    result = align_orientation(synthetic_cell(0.0)[None], np.array([120.0]))  # the axis at −60°
    assert angular_error(measured(result.images), -60.0)[0] < 3.0
    assert abs(result.turned[0] + 60.0) < 3.0


def test_areas_and_intensities_survive_the_turn():
    images = np.stack([synthetic_cell(a) for a in (-50.0, 10.0, 60.0)])
    before = measure(images, config=SHAPE)
    after = measure(align_orientation(images, np.array([40.0, -70.0, -20.0])).images, config=SHAPE)
    for feature in ("Nuclei_AreaShape_Area", "Cells_AreaShape_Area", "Nuclei_AreaShape_Eccentricity",
                    "Nuclei_Intensity_MeanIntensity_DNA", "Cells_Intensity_MeanIntensity_Actin",
                    "Cells_Intensity_MeanIntensity_Tubulin"):
        np.testing.assert_allclose(after[feature], before[feature], rtol=0.03, err_msg=feature)


def test_a_round_nucleus_is_left_as_drawn():
    image = synthetic_cell(0.0, nucleus_axes=(9.0, 9.0))[None]
    result = align_orientation(image, np.array([45.0]))
    assert result.eccentricity[0] < PoseConfig().min_eccentricity
    np.testing.assert_array_equal(result.images, image)
    assert result.turned[0] == 0.0 and result.n_turned == 0


def test_images_without_a_nucleus_or_a_request_are_left_as_drawn():
    images = np.stack([np.zeros((3, 68, 68), np.uint8), synthetic_cell(20.0)])
    result = align_orientation(images, np.array([45.0, np.nan]))
    np.testing.assert_array_equal(result.images, images)
    assert np.isnan(result.drawn[0]) and abs(result.drawn[1] - 20.0) < 2.0


def test_a_turn_below_the_threshold_is_skipped():
    image = synthetic_cell(20.0)[None]
    drawn = nucleus_orientation(image)[0][0]
    result = align_orientation(image, np.array([drawn + 0.5]))
    np.testing.assert_array_equal(result.images, image)


def test_align_rejects_bad_inputs():
    with pytest.raises(ValueError, match="uint8"):
        align_orientation(np.zeros((1, 3, 68, 68), np.float32), np.array([0.0]))
    with pytest.raises(ValueError, match="requested angles"):
        align_orientation(np.zeros((2, 3, 68, 68), np.uint8), np.array([0.0]))


# ----------------------------------------------------------------------------- the hook in CP2Image.generate


class Draws(nn.Module):
    """A stand-in generator that always draws the same cell (floats in [0, 1]), whatever it is asked."""

    def __init__(self, image: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("image", torch.from_numpy(image.astype(np.float32) / 255.0))
        self.unused = nn.Parameter(torch.zeros(1))  # a model has parameters (its device is read from them)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.image.expand(len(z), -1, -1, -1).clone()


def drawing_model(angle: float, *, feature_scale: list[float] | None = None):
    model = tiny_model(NAMES, seed=0, feature_scale=feature_scale or [1.0, 50.0, 1.0, 1.0])
    model.generator = Draws(synthetic_cell(angle))
    return model


def profiles(orientations: list[float]) -> pd.DataFrame:
    frame = pd.DataFrame(0.0, index=range(len(orientations)), columns=NAMES)
    frame[POSE_FEATURE] = orientations
    return frame


def test_generate_with_pose_turns_each_cell_to_its_requested_orientation():
    model = drawing_model(30.0)
    asked = [-60.0, 0.0, 75.0]
    assert model.controls_pose
    assert angular_error(measured(model.generate(profiles(asked), batch_size=2, pose=True)), asked).max() < 3.0


def test_plain_generate_leaves_cells_as_drawn():
    # turning re-cuts the cell outline at the crop edge, so profile → image keeps the drawn pose
    model = drawing_model(30.0)
    frame = profiles([-60.0, 0.0, 75.0])
    np.testing.assert_array_equal(model.generate(frame), model.generate_from_normalised(model.normalise(frame)))


def test_an_orientation_sweep_turns_the_cell_and_other_sweeps_do_not():
    model = drawing_model(30.0)
    base = profiles([30.0]).iloc[0]
    turned = sweep_feature(model, base, POSE_FEATURE, mode="single", values=[-60.0, 0.0, 75.0],
                           measure_back=False)
    assert angular_error(measured(turned.images), [-60.0, 0.0, 75.0]).max() < 3.0
    other = sweep_feature(model, base, NAMES[0], mode="single", values=[100.0, 200.0, 300.0], measure_back=False)
    drawn = model.generate_from_normalised(model.normalise(other.profiles))
    np.testing.assert_array_equal(other.images, drawn)
    model.pose_control = False  # the benchmarks' switch for the raw generator
    raw = sweep_feature(model, base, POSE_FEATURE, mode="single", values=[-60.0, 0.0, 75.0],
                           measure_back=False)
    np.testing.assert_array_equal(raw.images, model.generate_from_normalised(model.normalise(raw.profiles)))


def test_pose_false_returns_the_raw_generator_output_exactly():
    for model in (tiny_model(NAMES, seed=3, feature_scale=[1.0, 50.0, 1.0, 1.0]), drawing_model(30.0)):
        frame = profiles([-60.0, 10.0, 80.0])
        raw = model.generate_from_normalised(model.normalise(frame))
        np.testing.assert_array_equal(model.generate(frame, pose=False), raw)
        model.pose_control = False  # the instance switch that benchmarks use
        assert not model.controls_pose


def test_the_requested_angle_is_the_raw_value_not_the_clipped_model_input():
    # SD 5°: 120° lies 24 SD out, so the network input is clipped to 10 SD (50°); the pose asks for 120° ≡ −60°
    model = drawing_model(0.0, feature_scale=[1.0, 5.0, 1.0, 1.0])
    with pytest.warns(UserWarning):
        images = model.generate(profiles([120.0]), pose=True)
    assert angular_error(measured(images), -60.0)[0] < 3.0


def test_models_without_the_orientation_input_generate_as_before():
    names = [n for n in NAMES if n != POSE_FEATURE]
    model = tiny_model(names, seed=1)
    frame = pd.DataFrame(np.random.default_rng(0).standard_normal((3, 3)), columns=names)
    assert not model.controls_pose
    np.testing.assert_array_equal(model.generate(frame, pose=True),
                                  model.generate_from_normalised(model.normalise(frame)))
