"""Altair (Vega-Lite) charts for the pages' simple plots: a sweep, a feature scatter, cosine curves.

Why not Plotly: Streamlit loads a chart library's front-end code the first time a page draws
one of its charts. Plotly's bundle is 4.6 MB of JavaScript; Vega-Lite's is ~0.8 MB, and the
correlation report needs it anyway for its brushed histogram (`selection_charts`). In headless
Chromium the first Plotly chart cost ~2–3 s more than the first Altair chart at load 7
(docs/app-first-use.md, "One chart library per page"), which was most of a first visit. The
PCA explorer keeps Plotly (`charts.pca_scatter`) for its clickable line.

Each builder takes the same plain table as the downloadable matplotlib panel
(`cp2image.analysis.panels`), so chart and download show the same numbers. Areas and lengths
are drawn in µm² / µm when a pixel size is known, with the pixel values in the tooltip.
Charts can be panned (drag) and zoomed (shift + scroll; plain scrolling still scrolls the page),
double-click resets.
"""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from cp2image.analysis.panels.charts import OKABE_ITO

IDENTITY_COLOUR = "#555555"
REQUESTED_NAME = "requested (y = x)"
MEASURED_NAME = "measured on generated image"
AXIS_FORMAT = ",~r"  # 1,500 and 0.25 (significant digits from the tick step), not 1.5e+3
TIP_FORMAT = ",.3~r"  # three significant digits with thousands separators


def _units(feature: str, pixel_size_um: float | None):
    """(unit, converter to that unit, readable name), or plain numbers for a non-CellProfiler name."""
    from cp2image.analysis.feature_labels import labelled, to_physical, unit_symbol

    try:
        unit = unit_symbol(feature, pixel_size_um=pixel_size_um)
        name = labelled(feature)
    except ValueError:  # not a CellProfiler name
        return "", (lambda v: np.asarray(v, float)), feature
    return unit, lambda v: np.array([to_physical(feature, x, pixel_size_um=pixel_size_um) for x in v], float), name


def _zoom() -> alt.Parameter:
    """Pan by dragging, zoom with shift + wheel: a plain wheel over the chart keeps scrolling the page."""
    return alt.selection_interval(name="zoom", bind="scales", zoom="wheel![event.shiftKey]")


def _pixel_unit(unit: str) -> str | None:
    """px² / px for a physical area / length (the tooltip's second unit), else None."""
    return {"µm²": "px²", "µm": "px"}.get(unit)


def sweep_chart(table: pd.DataFrame, *, feature: str, rho: float | None = None, slope: float | None = None,
                pixel_size_um: float | None = None, height: int = 340) -> alt.LayerChart:
    """Requested vs measured value of the swept feature (the model follows it when measured runs along y = x).

    The title leads with the slope (1 = the cell changed by what was asked), then Spearman ρ.
    """
    unit, convert, name = _units(feature, pixel_size_um)
    req_px = table["requested"].to_numpy(float)
    req = convert(req_px)
    series = [pd.DataFrame({"requested": req, "value": req, "series": REQUESTED_NAME, "requested_px": req_px,
                            "value_px": req_px})]
    if "measured" in table.columns:
        mea_px = table["measured"].to_numpy(float)
        series.append(pd.DataFrame({"requested": req, "value": convert(mea_px), "series": MEASURED_NAME,
                                    "requested_px": req_px, "value_px": mea_px}))
    data = pd.concat(series, ignore_index=True)
    suffix = f" ({unit})" if unit else ""
    parts = [f"slope = {slope:.2f}" if slope is not None and np.isfinite(slope) else "",
             f"Spearman ρ = {rho:.2f}" if rho is not None and np.isfinite(rho) else ""]
    parts = [p for p in parts if p]
    title = "requested vs measured" + (f" ({', '.join(parts)})" if parts else "")
    names = [n for n in (REQUESTED_NAME, MEASURED_NAME) if n in set(data["series"])]
    colours = {REQUESTED_NAME: IDENTITY_COLOUR, MEASURED_NAME: OKABE_ITO[0]}
    dashes = {REQUESTED_NAME: [5, 4], MEASURED_NAME: [1, 0]}
    tips = _tooltips([("requested", "requested"), ("value", "measured")], suffix=suffix, unit=unit)
    base = alt.Chart(data).encode(
        x=alt.X("requested:Q", title=f"requested {name}{suffix}", scale=alt.Scale(zero=False),
                axis=alt.Axis(format=AXIS_FORMAT)),
        y=alt.Y("value:Q", title=f"measured{suffix}", scale=alt.Scale(zero=False), axis=alt.Axis(format=AXIS_FORMAT)),
        color=alt.Color("series:N", scale=alt.Scale(domain=names, range=[colours[n] for n in names]),
                        legend=alt.Legend(title=None, orient="bottom", labelLimit=400, symbolType="stroke")),
        strokeDash=alt.StrokeDash("series:N", scale=alt.Scale(domain=names, range=[dashes[n] for n in names]),
                                  legend=None),
    )
    lines = base.mark_line(strokeWidth=2).add_params(_zoom())
    points = base.mark_point(filled=True, size=80, opacity=1).encode(tooltip=tips).transform_filter(
        alt.datum.series == MEASURED_NAME)
    return alt.layer(lines, points).properties(height=height, title=title)


def _tooltips(fields: list[tuple[str, str]], *, suffix: str, unit: str) -> list[alt.Tooltip]:
    """Each (column, title) in the shown unit, then in pixels where that unit was converted from pixels
    (the data carries a `<column>_px` column beside each), so hover shows both."""
    tips = [alt.Tooltip(f"{column}:Q", title=f"{title}{suffix}", format=TIP_FORMAT) for column, title in fields]
    pixel_unit = _pixel_unit(unit)
    if pixel_unit:
        tips += [alt.Tooltip(f"{column}_px:Q", title=f"{title} ({pixel_unit})", format=TIP_FORMAT)
                 for column, title in fields]
    return tips


def feature_scatter(pairs: pd.DataFrame, feature: str, *, r: float | None = None, max_points: int = 3000,
                    pixel_size_um: float | None = None, height: int = 420) -> alt.LayerChart:
    """Real vs generated value of one feature over held-out cells, with the identity line (title: name and r)."""
    from cp2image.analysis.feature_labels import scale_note

    for column in ("real", "generated"):
        if column not in pairs.columns:
            raise ValueError(f"pairs need a {column!r} column; got {list(pairs.columns)}")
    finite = np.isfinite(pairs["real"].to_numpy(float)) & np.isfinite(pairs["generated"].to_numpy(float))
    data = pairs.loc[finite, ["real", "generated"]].astype(float)
    if len(data) > max_points:
        data = data.sample(n=max_points, random_state=0).sort_index()
    unit, convert, name = _units(feature, pixel_size_um)
    try:
        note = scale_note(feature) if unit == "" else ""
    except ValueError:
        note = ""
    suffix = f" ({unit})" if unit else (f" ({note})" if note and note != "no unit" else "")
    shown = pd.DataFrame({"real": convert(data["real"]), "generated": convert(data["generated"]),
                          "real_px": data["real"].to_numpy(), "generated_px": data["generated"].to_numpy()})
    tips = _tooltips([("real", "real"), ("generated", "generated")], suffix=suffix, unit=unit)
    x = alt.X("real:Q", title=f"measured on real cell{suffix}", scale=alt.Scale(zero=False),
              axis=alt.Axis(format=AXIS_FORMAT))
    y = alt.Y("generated:Q", title=f"measured on generated cell{suffix}", scale=alt.Scale(zero=False),
              axis=alt.Axis(format=AXIS_FORMAT))
    points = alt.Chart(shown).mark_circle(size=28, opacity=0.5, color=OKABE_ITO[0]).encode(
        x=x, y=y, tooltip=tips).add_params(_zoom())
    layers = [points]
    if len(shown):
        lo = float(min(shown["real"].min(), shown["generated"].min()))
        hi = float(max(shown["real"].max(), shown["generated"].max()))
        identity = pd.DataFrame({"real": [lo, hi], "generated": [lo, hi]})
        layers.append(alt.Chart(identity).mark_line(color=IDENTITY_COLOUR, strokeDash=[5, 4], strokeWidth=1.5)
                      .encode(x="real:Q", y="generated:Q"))
    title = name if r is None or not np.isfinite(r) else f"{name}   (r = {r:.2f})"
    return alt.layer(*layers).properties(height=height, title=title)


def cosine_chart(tables: dict[str, pd.DataFrame], *, height: int = 320) -> alt.Chart:
    """Cosine similarity to the target against interpolation step, one line per target MoA."""
    names = list(tables)
    long = pd.concat([pd.DataFrame({"step": t["step"].to_numpy(), "cosine": t["cosine"].to_numpy(float),
                                    "target MoA": moa}) for moa, t in tables.items()], ignore_index=True) \
        if tables else pd.DataFrame({"step": [], "cosine": [], "target MoA": []})
    colours = [OKABE_ITO[k % len(OKABE_ITO)] for k in range(len(names))]
    return alt.Chart(long).mark_line(point=True, strokeWidth=2).encode(
        x=alt.X("step:Q", title="step", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("cosine:Q", title="cosine to target", scale=alt.Scale(domain=[-0.05, 1.05])),
        color=alt.Color("target MoA:N", scale=alt.Scale(domain=names, range=colours),
                        legend=alt.Legend(orient="bottom", labelLimit=400)),
        tooltip=[alt.Tooltip("target MoA:N"), alt.Tooltip("step:Q"), alt.Tooltip("cosine:Q", format=".3f")],
    ).properties(height=height)


def layer_data(chart: alt.TopLevelMixin, layer: int = 0) -> pd.DataFrame:
    """The table one layer of a chart draws (for tests and checks: what the browser receives)."""
    part = chart.layer[layer] if isinstance(chart, alt.LayerChart) else chart
    data = part.data if isinstance(part.data, pd.DataFrame) else chart.data
    return data
