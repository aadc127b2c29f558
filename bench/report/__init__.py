"""``python -m bench.report``: a static HTML report of the results store (tables, figures, runs)."""
