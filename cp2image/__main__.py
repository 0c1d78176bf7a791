"""`python -m cp2image` is the same as the `cp2image` command."""
from cp2image.cli import main

raise SystemExit(main())
