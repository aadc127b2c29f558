"""Tables from the results store: ``python -m bench.tables`` (the all-runs summary and the paper tables
of results/specs/, built by ``bench.tables.paper``)."""
