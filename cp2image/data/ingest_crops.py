"""Moved to `cp2image.data.ingest` (issue 18). Kept only for `tests/features/test_real_cells.py`,
which imports from here; delete once it imports `cp2image.data.ingest`."""
from cp2image.data.ingest import *  # noqa: F401,F403
from cp2image.data.ingest import __all__  # noqa: F401
