"""Screen layout: BBBC021's structure, real compounds and concentrations, DMSO on every plate."""
from __future__ import annotations

import pandas as pd
import pytest

from cp2image.data.simulate.phenotypes import MOAS
from cp2image.data.simulate.screen import SCREEN_CONCENTRATIONS, ScreenConfig, plan_screen, screen_treatments


def test_every_moa_has_a_compound_at_three_or_more_concentrations():
    treatments = screen_treatments()
    for moa in MOAS:
        counts = pd.Series([t.compound for t in treatments if t.moa == moa]).value_counts()
        assert counts.max() >= 3, moa


def test_latrunculin_b_has_four_doses_including_1_and_3_um():
    doses = SCREEN_CONCENTRATIONS["latrunculin B"]
    assert len(doses) >= 4 and 1.0 in doses and 3.0 in doses


def test_every_plate_has_dmso_and_every_treatment():
    plans = plan_screen(ScreenConfig(n_cells=1000, replicates=3))
    n_treatments = len(screen_treatments())
    for plate in {p.plate for p in plans}:
        on_plate = [p for p in plans if p.plate == plate]
        assert sum(p.treatment.compound == "DMSO" for p in on_plate) == 6
        assert len({(p.treatment.compound, p.treatment.concentration) for p in on_plate}) == n_treatments + 1
        assert len({p.well for p in on_plate}) == len(on_plate)  # one treatment per well


def test_cell_quotas_add_up_exactly():
    for n in (1, 143, 1000, 12345):
        plans = plan_screen(ScreenConfig(n_cells=n))
        assert sum(p.n_cells for p in plans) == n
        assert max(p.n_cells for p in plans) - min(p.n_cells for p in plans) <= 1


def test_compounds_and_concentrations_are_real_bbbc021(bbbc021_metadata_dir):
    image = pd.read_csv(bbbc021_metadata_dir / "BBBC021_v1_image.csv")
    moa = pd.read_csv(bbbc021_metadata_dir / "BBBC021_v1_moa.csv")
    real_moa = dict(zip(moa["compound"], moa["moa"]))
    for t in screen_treatments():
        assert real_moa[t.compound] == t.moa, t.compound
        concs = image.loc[image["Image_Metadata_Compound"] == t.compound, "Image_Metadata_Concentration"]
        assert concs.round(6).eq(round(t.concentration, 6)).any(), (t.compound, t.concentration)


def test_layout_depends_on_the_seed_only():
    a = plan_screen(ScreenConfig(n_cells=500, seed=1))
    b = plan_screen(ScreenConfig(n_cells=500, seed=1))
    c = plan_screen(ScreenConfig(n_cells=500, seed=2))
    assert a == b and a != c


def test_subset_of_compounds_and_bad_configs():
    plans = plan_screen(ScreenConfig(n_cells=100, replicates=2, compounds=("latrunculin B",)))
    assert {p.treatment.compound for p in plans} == {"latrunculin B", "DMSO"}
    with pytest.raises(ValueError, match="unknown screen compound"):
        ScreenConfig(n_cells=10, compounds=("aspirin",))
    with pytest.raises(ValueError, match="n_cells"):
        ScreenConfig(n_cells=0)
    with pytest.raises(ValueError, match="DMSO"):
        ScreenConfig(n_cells=10, dmso_wells_per_plate=0)
