"""The shipped models load offline, verify their digest and draw nuclei where the features say.

The weights, cards and dataset are committed files, so a missing one fails these tests
(never a skip). Checks on held-out cells of the bundled dataset (sim model) — what a
biologist would look at: the generated DNA channel is centred in the crop, and the
generated nucleus gets bigger/brighter when the input says bigger/brighter (Pearson r
across cells).
"""
from __future__ import annotations

import numpy as np
import pytest
from safetensors import safe_open
from scipy import ndimage

from cp2image.analysis.coupling import load_coupling
from cp2image.assets import REAL_CELLS_MODEL_NAME, bundled_dataset_dir, bundled_model_dir
from cp2image.models import CP2Image
from cp2image.models.weights import DIGEST_KEY, read_safetensors

BUNDLED = ["cp2image-sim", REAL_CELLS_MODEL_NAME]


def _weights(name: str):
    path = bundled_model_dir(name) / "model.safetensors"
    assert path.exists(), f"committed weights missing: assets/models/{name}/model.safetensors"
    return path


@pytest.fixture(scope="module")
def sim_model() -> CP2Image:
    return CP2Image.from_pretrained(_weights("cp2image-sim").parent)


def _held_out(model: CP2Image, n: int = 96):
    from cp2image.data.dataset import open_dataset

    folder = bundled_dataset_dir()
    assert (folder / "dataset.json").exists(), "committed dataset missing: assets/datasets/bbbc021-sim"
    ds = open_dataset(folder)
    rows = ds.split_indices("test") if "Metadata_Split" in ds.cells else np.arange(len(ds))
    values = ds.cells[model.feature_names].iloc[rows].to_numpy(dtype=float)
    rows = rows[np.isfinite(values).all(axis=1)][:n]
    return ds.cells.iloc[rows].reset_index(drop=True), np.asarray(ds.images[rows])


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_loads_strictly_with_its_card(name):
    folder = _weights(name).parent
    model = CP2Image.from_pretrained(folder)
    card = (folder / "README.md").read_text()
    assert "## Intended use" in card and "## Limitations" in card
    assert "cp2image train --data " in card  # the card says how the weights were trained
    prov = model.config.provenance
    assert prov["model_kind"] == "cp2image" and prov["steps"] > 0 and "command" in prov
    assert model.channels == ["DNA", "Tubulin", "Actin"] and model.image_size == 68
    assert (folder / "model.safetensors").stat().st_size < 8 * 2**20  # small enough to ship


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_weights_carry_a_digest_that_verifies(name):
    path = _weights(name)
    with safe_open(str(path), framework="pt") as fh:
        assert DIGEST_KEY in (fh.metadata() or {})
    assert read_safetensors(path)  # the digest matches the shipped tensors


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_feature_coupling_belongs_to_the_bundled_weights(name):
    """Coupled sweeps ("with its correlated features", the default) need the coupling fitted under the weights'
    own normalisation; a retrained model with a stale coupling would silently offer only the paper's mode."""
    coupling = load_coupling(bundled_model_dir(name))  # raises CouplingError on a mismatch
    assert coupling is not None and coupling.normalisation_digest


@pytest.mark.filterwarnings("ignore:.*training standard deviations:UserWarning")  # a few held-out outliers
def test_sim_model_places_nuclei_at_the_centre_with_the_right_size_and_brightness(sim_model):
    cells, originals = _held_out(sim_model)
    generated = sim_model.generate(cells).astype(np.float64)
    dna = generated[:, 0]  # (n, H, W)
    # the cell's nucleus: the largest connected region above half the crop's DNA maximum (a DNA-mass centroid
    # would also weigh the neighbours' nuclei cut by the crop edge, which real crops show as well)
    centre = (dna.shape[1] - 1) / 2
    offsets = []
    for image in dna:
        labels, n = ndimage.label(image > 0.5 * image.max())
        largest = 1 + int(np.argmax(ndimage.sum(np.ones_like(image), labels, range(1, n + 1))))
        cy, cx = ndimage.center_of_mass(labels == largest)
        offsets.append(np.hypot(cy - centre, cx - centre))
    assert np.median(offsets) < 3  # pixels (real held-out crops: 0.8)

    # area: pixels above half the crop's DNA maximum, real vs generated
    def area(img):
        return (img > 0.5 * img.max(axis=(1, 2), keepdims=True)).sum(axis=(1, 2))
    r_area = np.corrcoef(area(originals[:, 0].astype(float)), area(dna))[0, 1]
    r_input = np.corrcoef(cells["Nuclei_AreaShape_Area"], area(dna))[0, 1]
    bright = dna.max(axis=(1, 2))
    r_bright = np.corrcoef(originals[:, 0].max(axis=(1, 2)), bright)[0, 1]
    assert r_area > 0.5 and r_input > 0.5, (r_area, r_input)
    assert r_bright > 0.3, r_bright


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_files_name_no_folder_of_the_machine_that_trained_them(name):
    """Cards, configs and evaluation reports record commands with repository-relative or placeholder paths."""
    import re

    folder = bundled_model_dir(name)
    absolute = re.compile(r"""["'\s=(](/(?:work|home|root|tmp|mnt|data|Users)/[^\s"']*)""")
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in {".json", ".md", ".csv", ".html", ".toml"}:
            found += [f"{path.relative_to(folder)}: {m}" for m in absolute.findall(path.read_text(errors="replace"))]
    assert not found, found
