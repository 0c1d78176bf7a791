"""Moved to `cp2image.data.ingest` (issue 18). Kept only for `benchmarks/bench_ingest.py` and
`benchmarks/bench_bbbc021_projection.py`, which import from here; delete once they import
`cp2image.data.ingest`."""
from cp2image.data.ingest import *  # noqa: F401,F403
from cp2image.data.ingest import __all__  # noqa: F401
