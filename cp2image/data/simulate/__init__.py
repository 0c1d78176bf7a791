"""Virtual BBBC021: a simulated MCF-7 drug screen rendered, cropped and measured like real data.

Modules, in pipeline order: `phenotypes` (the documented table of per-MoA, dose-dependent
parameter shifts), `cells` (per-cell parameter draws), `render` (fields of view and the
microscope model), `screen` (plates, wells, treatments), `pipeline` (crop → measure →
dataset). `cp2image simulate` is the command-line entry point.
"""
from cp2image.data.simulate.cells import draw_cells, expected_cell_radius
from cp2image.data.simulate.phenotypes import COMPOUNDS, MOAS, PARAMETERS, PHENOTYPES, dose_response
from cp2image.data.simulate.pipeline import SimulationConfig, simulate_screen, simulate_well, truth_column
from cp2image.data.simulate.render import PlateEffect, RenderConfig, crop_cells, render_field
from cp2image.data.simulate.screen import ScreenConfig, plan_screen, screen_treatments

__all__ = [
    "COMPOUNDS",
    "MOAS",
    "PARAMETERS",
    "PHENOTYPES",
    "PlateEffect",
    "RenderConfig",
    "ScreenConfig",
    "SimulationConfig",
    "crop_cells",
    "dose_response",
    "draw_cells",
    "expected_cell_radius",
    "plan_screen",
    "render_field",
    "screen_treatments",
    "simulate_screen",
    "simulate_well",
    "truth_column",
]
