"""Real BBBC021 crops in the app: ingest the shared 12-MoA crops, point CP2IMAGE_DATA at them,
and every page runs on real cells (latrunculin B 1 and 3 µM in the PCA explorer, all 12 MoAs
in MoA interpolation). Needs ../shared. At most 8 crops of each compound and concentration
are ingested (523 of 1,276): every MoA, dose and plate is kept, and feature measurement,
the slow part of this test, has less than half the crops to do."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

from app_harness import PAGES, image_captions, open_page, start_app  # noqa: E402

from cp2image.cli import main  # noqa: E402

pytestmark = [pytest.mark.real_data, pytest.mark.slow]
PER_TREATMENT = 8  # crops kept per (compound, concentration)
MOAS = ["Actin disruptors", "Aurora kinase inhibitors", "Cholesterol-lowering", "DNA damage", "DNA replication",
        "Eg5 inhibitors", "Epithelial", "Kinase inhibitors", "Microtubule destabilizers", "Microtubule stabilizers",
        "Protein degradation", "Protein synthesis"]


def _every_treatment(npz: Path, folder: Path) -> Path:
    """The first PER_TREATMENT crops of each (compound, concentration), as an archive of the same layout."""
    with np.load(npz, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    treatment = pd.DataFrame({"compound": arrays["compound"], "concentration": arrays["concentration"]})
    keep = treatment.groupby(["compound", "concentration"]).head(PER_TREATMENT).index.to_numpy()
    out = folder / "bbbc021-moa-subset.npz"
    np.savez(out, **{name: values[keep] for name, values in arrays.items()})
    return out


@pytest.fixture(scope="module")
def real_dataset(real_moa_cells_npz, bbbc021_metadata_dir, shared_dask_client, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("real")
    out = base / "bbbc021-moa"
    crops = _every_treatment(real_moa_cells_npz, base)
    code = main(["ingest", "crops", "--npz", str(crops), "--channel-order", "DNA,Actin,Tubulin",
                 "--moa-table", str(bbbc021_metadata_dir / "BBBC021_v1_moa.csv"), "--split-by", "plate",
                 "--out", str(out), "--scheduler", shared_dask_client.scheduler.address, "--no-progress"])
    assert code == 0
    return out


@pytest.fixture
def real_env(real_dataset, monkeypatch):
    monkeypatch.setenv("CP2IMAGE_DATA", str(real_dataset))
    monkeypatch.setenv("CP2IMAGE_MODEL", "bundled:cp2image-bbbc021-real")
    for name in ("CP2IMAGE_ASSETS", "CP2IMAGE_DATA_ROOTS", "CP2IMAGE_HOSTED"):
        monkeypatch.delenv(name, raising=False)
    return real_dataset


def test_the_pca_explorer_shows_real_dmso_and_latrunculin_b_at_1_and_3_um(real_env):
    at = start_app()
    assert at.sidebar.selectbox(key="dataset_choice").value == "bbbc021-moa (CP2IMAGE_DATA)"
    open_page(at, "pca_explorer")
    at.selectbox(key="pca_compound").select("latrunculin B").run()
    assert not at.error, [e.value for e in at.error]
    assert {1.0, 3.0} <= {float(d) for d in at.selectbox(key="pca_end").options}
    captions = image_captions(at)
    assert "DMSO" in captions and "1 µM" in captions and "3 µM" in captions  # real cells beside the generated strip


def test_moa_interpolation_runs_between_real_cells_of_all_12_moas(real_env):
    at = open_page(start_app(), "moa_interpolation")
    assert at.multiselect(key="moa_targets").options == MOAS
    at.multiselect(key="moa_targets").set_value(MOAS).run()
    assert not at.error and not at.exception
    headers = [h.value for h in at.subheader] + [h.value for h in at.header]
    assert all(any(moa in h for h in headers) for moa in MOAS), headers


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_on_the_real_cells(real_env, page):
    at = open_page(start_app(), page)
    assert not at.error and not at.exception, [e.value for e in at.error]
