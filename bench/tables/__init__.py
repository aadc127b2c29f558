"""Tables from the results store: ``python -m bench.tables`` (generic and spec-driven) and
per-paper metric modules (e.g. ``bench.tables.adalip``)."""
