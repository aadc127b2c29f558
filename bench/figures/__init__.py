"""Paper figures drawn from run records: ``python -m bench.figures <name> [options]``."""
