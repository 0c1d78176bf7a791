"""One benchmark runner for every stage: `python benchmarks/run.py [--quick] [--json PATH]`.

Prints a Markdown table and writes JSON (machine, versions, date, every figure with
min and median over repeats). Speeds are reported against references measured in the
same run: this machine's fp32 matmul peak (GFLOP/s) for generation and training,
training's consumption rate for the data loader. This is the only benchmark entry:
each section's rows come from the bench module that owns the stage
(`benchmarks/sections.py` lists them); a stage that cannot run here yields rows
saying "not available: <reason>".

`--quick` (CI smoke run) uses fewer repeats and smaller sizes and finishes in under
two minutes on two cores; its numbers are indicative only.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import traceback
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for _p in (str(REPO_ROOT), str(BENCH_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from runner_support import Context, Row, Section, machine_info, unavailable  # noqa: E402

log = logging.getLogger("benchmarks")


def _run_section(section: Section, ctx: Context) -> list[Row]:
    expected = section.names(ctx)
    start = time.perf_counter()
    try:
        rows = section.run(ctx)
    except Exception as err:  # a stage missing or broken must not stop the other rows
        log.debug("section %s failed:\n%s", section.key, traceback.format_exc())
        reason = f"{type(err).__name__}: {err}"
        return [unavailable(section.title, name, reason) for name in expected]
    produced = {r.name for r in rows}
    for name in expected:
        if name not in produced:
            rows.append(unavailable(section.title, name, "section did not produce this row"))
    log.info("%s: %.1f s", section.key, time.perf_counter() - start)
    return rows


# ----------------------------------------------------------------------------- output


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return ""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.{digits}g}"


def markdown_table(rows: list[Row]) -> str:
    """The results as one Markdown table, in section order."""
    head = ("| Stage | Measure | Median | Worst/min | Unit | vs reference | Target | Met | Note |\n"
            "|---|---|---:|---:|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        if r.status != "ok":
            lines.append(f"| {r.section} | {r.name} | – | – | {r.unit} | | {r.target} | | {r.status} |")
            continue
        ratio = f"{_fmt(r.ratio)} {r.reference}".strip() if r.ratio is not None else r.reference
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.section} | {r.name} | {_fmt(r.median)} | {_fmt(r.min)} | {r.unit} | "
                     f"{ratio} | {r.target} | {met} | {r.note} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def all_sections() -> list[Section]:
    import sections  # noqa: PLC0415  (benchmarks/sections.py: each section's rows come from its bench module)

    return sections.SECTIONS


def expected_row_names(*, quick: bool, cuda: bool) -> list[tuple[str, str]]:
    """(section title, row name) of every row a run must produce."""
    ctx = Context(quick=quick, repeats=1)
    out = []
    for s in all_sections():
        if (s.gpu_only and not cuda) or (s.full_only and quick):
            continue
        out.extend((s.title, n) for n in s.names(ctx))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (< 2 min): fewer repeats, smaller sizes")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write results (default benchmarks/results/latest[-quick].json)")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the machine line, command and table to this Markdown file")
    parser.add_argument("--only", nargs="*", default=None, help="run only these section keys")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per figure (default 5, quick 2)")
    parser.add_argument("--accelerator-dry-run", action="store_true",
                        help="run the GPU section's code on the CPU (tiny sizes) to check it without a GPU")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("PIL").setLevel(logging.WARNING)

    import torch

    ctx = Context(quick=args.quick, repeats=args.repeats or (2 if args.quick else 5))
    cuda = torch.cuda.is_available()
    started = time.perf_counter()
    rows: list[Row] = []
    for section in all_sections():
        if args.only and section.key not in args.only:
            continue
        if section.gpu_only and not cuda and args.accelerator_dry_run:
            section = Section(section.key, section.title, section.names,
                              lambda c: __import__("bench_gpu").accelerator_rows(c, device="cpu"))
        elif (section.gpu_only and not cuda) or (section.full_only and args.quick):
            continue
        rows.extend(_run_section(section, ctx))
    elapsed = time.perf_counter() - started

    shown = [a for a in (sys.argv[1:] if argv is None else argv)]
    command = " ".join(["python benchmarks/run.py", *shown])
    result = {
        "command": command,
        "quick": args.quick,
        "repeats": ctx.repeats,
        "elapsed_s": round(elapsed, 1),
        "machine": machine_info(),
        "peak_gflops_fp32": ctx.peak_gflops,
        "rows": [r.to_dict() for r in rows],
    }
    out = args.json or BENCH_DIR / "results" / ("latest-quick.json" if args.quick else "latest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float) + "\n")

    m = result["machine"]
    text = (f"- Machine: {m['cpu']}, {m['affinity_cpus']} CPU(s) available, {m['memory_gb']} GB, "
            f"torch {m['torch']} ({m['torch_threads']} threads){', GPU ' + m['cuda'] if m['cuda'] else ''}; "
            f"load average {m['load_average']}; "
            f"{m['date_utc']}; commit {m['git_commit']}\n"
            f"- Command: `{command}` ({elapsed:.0f} s, {ctx.repeats} repeats per figure)\n\n"
            + markdown_table(rows) + "\n")
    print(text)
    print(f"JSON: {out}")
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
