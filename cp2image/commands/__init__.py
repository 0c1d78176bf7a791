"""Subcommands of the `cp2image` CLI, one module each."""
