"""The one Plotly style of the app, and the colours that carry meaning in it.

`TEMPLATE_NAME` is registered with plotly.io on import; every chart builder in
`charts.py` sets it explicitly, so the pages look alike whatever Streamlit's own
theme is. Colours: Okabe-Ito (colour-blind safe) for categories, grey for the DMSO
control, a dark-to-light sequential ramp for concentrations of one compound, and
red for the DMSO → top-concentration line, as in the paper's Fig. 5b.
"""
from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import plotly.io as pio
from plotly.colors import sample_colorscale

TEMPLATE_NAME = "cp2image"
FONT_FAMILY = "Inter, Helvetica Neue, Arial, sans-serif"
# the same colours as the downloadable matplotlib panels
from cp2image.analysis.panels.charts import CONTROL_COLOUR, LINE_COLOUR, OKABE_ITO  # noqa: E402,F401
CONCENTRATION_SCALE = "Viridis"


def _build_template() -> go.layout.Template:
    template = go.layout.Template(pio.templates["simple_white"])
    template.layout.update(
        font=dict(family=FONT_FAMILY, size=13, color="#222222"),
        colorway=list(OKABE_ITO),
        margin=dict(l=60, r=20, t=50, b=50),
        legend=dict(bgcolor="rgba(255,255,255,0.85)", borderwidth=0, font=dict(size=12)),
        hoverlabel=dict(font=dict(family=FONT_FAMILY, size=12)),
        title=dict(font=dict(size=15), x=0.0, xanchor="left"),
    )
    template.layout.xaxis.update(showgrid=True, gridcolor="#eeeeee", zeroline=False, ticks="outside")
    template.layout.yaxis.update(showgrid=True, gridcolor="#eeeeee", zeroline=False, ticks="outside")
    return template


pio.templates[TEMPLATE_NAME] = _build_template()


def concentration_colours(concentrations: Sequence[float]) -> dict[float, str]:
    """Colour per concentration: grey for 0 (the control), a sequential ramp for the rest (low → dark)."""
    doses = sorted({float(c) for c in concentrations if float(c) > 0})
    colours: dict[float, str] = {0.0: CONTROL_COLOUR}
    if doses:
        positions = [0.15 + 0.7 * i / max(len(doses) - 1, 1) for i in range(len(doses))]
        for dose, colour in zip(doses, sample_colorscale(CONCENTRATION_SCALE, positions)):
            colours[dose] = colour
    return colours


def format_concentration(value: float) -> str:
    """'3 µM', '0.3 µM', '0.003 µM' — no trailing zeros."""
    return f"{float(value):g} µM"
