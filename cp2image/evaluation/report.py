"""The evaluation report: Markdown + HTML pages with PNG and SVG figures.

Figures (each saved as PNG and SVG under `figures/`) are built by
`cp2image.analysis.panels.evaluation`: correlation_ranked (Fig. 4a), correlation_top6
(Fig. 4b), correlation_top_bottom, examples (originals above generated crops) and
moa_fidelity.
"""
from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cp2image.analysis.panels.evaluation import (
    correlation_ranked_figure,
    examples_figure,
    moa_figure,
    top_bottom_figure,
    top_scatter_figure,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from cp2image.evaluation.run import EvaluationResult

logger = logging.getLogger(__name__)

def _save(fig: Figure, out: Path, name: str) -> dict[str, str]:
    folder = out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext, kwargs in (("png", {"dpi": 150}), ("svg", {})):
        path = folder / f"{name}.{ext}"
        fig.savefig(path, bbox_inches="tight", **kwargs)
        paths[ext] = f"figures/{name}.{ext}"
    return paths


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _metrics_rows(m: dict[str, Any]) -> list[tuple[str, str, str]]:
    inc, cp, enc = m["inception"], m["cellprofiler_space"], m["encoder_space"]
    rows = []
    if inc.get("available"):
        rows.append(("FID (Inception-v3 pool, 2048-d)", _fmt(inc["fid"]), f"{inc['n_real']} real / {inc['n_generated']} generated"))
        rows.append(("KID (Inception-v3 pool)", f"{_fmt(inc['kid'])} ± {_fmt(inc['kid_std'], 2)}", f"subsets of {inc['kid_subset_size']}"))
    else:
        rows.append(("FID / KID (Inception-v3)", "not computed", inc.get("reason", "")))
    rows.append(("Fréchet distance, CellProfiler space*", _fmt(cp.get("frechet")),
                 f"{cp.get('n_features')} standardised features; {cp.get('generated_dropped', 0)} generated crops unmeasurable"))
    rows.append(("KID, CellProfiler space*", _fmt(cp.get("kid")), ""))
    rows.append(("Fréchet distance, domain encoder*", _fmt(enc.get("frechet")), enc.get("encoder", enc.get("reason", ""))))
    rows.append(("KID, domain encoder*", _fmt(enc.get("kid")), ""))
    corr, moa = m["correlation"], m["moa_fidelity"]
    if corr.get("available"):
        rows.append((f"features with r > {corr['threshold']:g}", f"{corr['fraction_above']:.1%}",
                     f"{corr['n_defined']} of {corr['n_features']} features defined, median r {corr['median_r']:.3f}"))
    else:
        rows.append(("feature correlation", "n/a", corr.get("reason", "")))
    if moa.get("available"):
        rows.append(("MoA accuracy, generated", f"{moa['generated_accuracy']:.1%}",
                     f"real held-out {moa['real_accuracy']:.1%}; chance {moa['chance_accuracy']:.1%}; {len(moa['classes'])} classes"))
        if "ratio" in moa:
            def interval(key: str) -> str:
                low, high = (moa.get(key) or [None, None])[:2]
                return f" (95 % interval {_fmt(low, 2)}–{_fmt(high, 2)})" if low is not None else ""

            rows.append(("MoA fidelity ratio, balanced accuracy (mean recall per MoA)", _fmt(moa["balanced_ratio"], 3),
                         f"generated {moa['generated_balanced_accuracy']:.1%} / real {moa['real_balanced_accuracy']:.1%}"
                         f"{interval('balanced_ratio_interval')}"))
            rows.append(("MoA fidelity ratio, accuracy", _fmt(moa["ratio"], 3),
                         f"{interval('ratio_interval').strip()}; {moa['protocol']}"))
    else:
        rows.append(("MoA fidelity", "n/a", moa.get("reason", "")))
    return rows


def _image_quality_tables(quality: dict[str, Any] | None) -> list[tuple[str, list[str], list[list[str]]]]:
    """(heading, header, rows) of the image statistics CellProfiler features miss, real beside generated
    (cp2image.evaluation.image_quality); none for evaluations without them."""
    if not quality or not quality.get("available"):
        return []
    real, gen = quality["real"], quality["generated"]
    tables = [("Image statistics CellProfiler features miss (real → generated)", ["statistic", "real", "generated"], [
        ["edge frame (absolute Laplacian on the edge over 3–9 px inside; ≫ 1 is a drawn frame)",
         _fmt(real["edge_frame"], 3), _fmt(gen["edge_frame"], 3)],
        ["streak index (median absolute log of E_x / E_y; high = straight row or column streaks)",
         _fmt(real["streak"], 3), _fmt(gen["streak"], 3)],
        ["actin puncta per crop", _fmt(real["puncta_per_crop"], 3), _fmt(gen["puncta_per_crop"], 3)]])]
    if quality.get("puncta_by_class"):
        tables.append(("Actin puncta per crop, by class (actin disruptors such as latrunculin B break F-actin into "
                       "puncta)", ["class", "n", "real", "generated"],
                       [[str(r["class"]), str(r["n"]), _fmt(r["real"], 3), _fmt(r["generated"], 3)]
                        for r in quality["puncta_by_class"]]))
    return tables


def write_report(result: "EvaluationResult", out: Path) -> Path:
    """Write report.md and report.html (same content) plus figures; return the Markdown path."""
    m = result.metrics.to_dict()
    figures: list[tuple[str, dict[str, str]]] = []
    figures.append(("Originals and generated images",
                    _save(examples_figure(result.reference.images, result.generated.images,
                                          paired=result.generated.paired), out, "examples")))
    corr = result.correlation
    if corr is not None and len(corr.defined):
        threshold = m["correlation"]["threshold"]
        figures.append(("Per-feature correlation (cf. paper Fig. 4a)",
                        _save(correlation_ranked_figure(corr.table, threshold=threshold), out, "correlation_ranked")))
        figures.append(("Six best-kept features (cf. paper Fig. 4b)",
                        _save(top_scatter_figure(corr), out, "correlation_top6")))
        figures.append(("Best and worst kept features", _save(top_bottom_figure(corr), out, "correlation_top_bottom")))
    if result.moa is not None and len(result.moa.per_class):
        figures.append(("MoA fidelity per class", _save(moa_figure(result.moa.per_class), out, "moa_fidelity")))

    title = f"Evaluation of {m['model']['type']} ({m['model']['mode']})"
    ds = m["dataset"]
    intro = (f"Dataset `{ds['path']}`, split `{ds['split']}`: {ds['n_evaluated']} of {ds['n_heldout']} held-out cells "
             f"evaluated ({ds['n_excluded_nonfinite']} excluded for non-finite profiles). Model source: "
             f"{m['model']['source'] or 'n/a'}.")
    rows = _metrics_rows(m)
    note = ("\\* Offline distances are *not comparable with Inception FID* (different feature space); "
            "compare models only within one column, on the same dataset, split and encoder.")

    md = [f"# {title}", "", intro, "", "| metric | value | details |", "|---|---|---|"]
    md += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    md += ["", note, ""]
    if corr is not None:
        for label, part in (("Top", corr.top(20)), ("Bottom", corr.bottom(20))):
            md += [f"## {label} 20 features by Pearson r", "", "| rank | feature | r |", "|---|---|---|"]
            md += [f"| {int(r['rank'])} | {r['feature']} | {r['pearson_r']:.3f} |" for _, r in part.iterrows()]
            md.append("")
        md += ["Per-feature values: `correlation.csv`; real/generated pairs: `pairs.parquet`.", ""]
    signatures = getattr(result, "signatures", None)
    if signatures is not None and len(signatures):
        md += [f"## What each MoA keeps (shift from {m['moa_signature']['control']}, real → generated, in control SDs)",
               "", "| MoA | n | signature cosine | top-5 kept | top features: real → generated |", "|---|---|---|---|---|"]
        md += [f"| {r['moa']} | {r['n']} | {_fmt(r['signature_cosine'], 2)} | {_fmt(r['top_kept'], 2)} | "
               f"{r['top_features']} |" for _, r in signatures.iterrows()]
        md.append("")
    quality_tables = _image_quality_tables(m.get("image_quality"))
    for heading, header, table_rows in quality_tables:
        md += [f"## {heading}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(row) + " |" for row in table_rows] + [""]
    for caption, paths in figures:
        md += [f"## {caption}", "", f"![{caption}]({paths['png']})", "", f"Vector: [{paths['svg']}]({paths['svg']})", ""]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md))

    h = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>{html.escape(title)}</title>",
         "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:4px 8px;font-size:90%}img{max-width:100%}</style></head><body>",
         f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(intro)}</p>",
         "<table><tr><th>metric</th><th>value</th><th>details</th></tr>"]
    h += [f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td><td>{html.escape(c)}</td></tr>" for a, b, c in rows]
    h += ["</table>", f"<p>{html.escape(note.replace(chr(92), ''))}</p>"]
    if signatures is not None and len(signatures):
        h += [f"<h2>What each MoA keeps (shift from {html.escape(m['moa_signature']['control'])}, real → generated)</h2>",
              "<table><tr><th>MoA</th><th>n</th><th>signature cosine</th><th>top-5 kept</th><th>top features</th></tr>"]
        h += [f"<tr><td>{html.escape(r['moa'])}</td><td>{r['n']}</td><td>{_fmt(r['signature_cosine'], 2)}</td>"
              f"<td>{_fmt(r['top_kept'], 2)}</td><td>{html.escape(r['top_features'])}</td></tr>"
              for _, r in signatures.iterrows()]
        h.append("</table>")
    if corr is not None:
        for label, part in (("Top", corr.top(20)), ("Bottom", corr.bottom(20))):
            h += [f"<h2>{label} 20 features by Pearson r</h2><table><tr><th>rank</th><th>feature</th><th>r</th></tr>"]
            h += [f"<tr><td>{int(r['rank'])}</td><td>{html.escape(r['feature'])}</td><td>{r['pearson_r']:.3f}</td></tr>"
                  for _, r in part.iterrows()]
            h.append("</table>")
    for heading, header, table_rows in quality_tables:
        h += [f"<h2>{html.escape(heading)}</h2><table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in header)
              + "</tr>"]
        h += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table_rows]
        h.append("</table>")
    for caption, paths in figures:
        h += [f"<h2>{html.escape(caption)}</h2>", f"<img src='{paths['png']}' alt='{html.escape(caption)}'>",
              f"<p><a href='{paths['svg']}'>SVG</a></p>"]
    h.append("</body></html>")
    (out / "report.html").write_text("\n".join(h))
    logger.info("report written to %s", md_path)
    return md_path


__all__ = ["write_report"]
