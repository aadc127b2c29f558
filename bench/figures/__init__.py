"""Figures from run records: ``python -m bench.figures <name> <record.json> ... --out fig.png``.

Each figure is its own module in this package exposing ``main(argv: list[str]) -> None``; the
dispatcher (``__main__``) finds them by module name, so adding a figure is adding a module.
"""
