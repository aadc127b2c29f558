"""Regenerate Markdown and CSV tables from the results store (``python -m bench.tables``)."""
