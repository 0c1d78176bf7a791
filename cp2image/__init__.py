"""cp2image: CellProfiler features to single-cell images."""
__version__ = "0.1.0"
