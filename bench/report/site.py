"""Writing the report's folder: only files whose content changed, atomically, and nothing stale.

A report folder carries a marker file; the builder refuses to write into a non-empty folder without
one (it would not know which files are its own to replace or remove).
"""
from __future__ import annotations

import os
from pathlib import Path

from bench.errors import BenchError

MARKER = ".bench-report"


def check_target(out: Path) -> None:
    """Fail, before anything is written, if ``out`` cannot hold a report."""
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file; pass a folder for the report (e.g. --out results/report)")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise BenchError(f"--out {out} is a non-empty folder that is not a bench report; pass a new or "
                         "empty folder, or the folder of an earlier report")


class Site:
    """The files of one build below ``root``; ``finish`` removes what an earlier build left over."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.written: set[Path] = set()
        self.changed = 0

    def write(self, relative: str, content: str | bytes) -> None:
        """Write ``root/relative`` unless it already holds ``content`` (so a rebuild touches nothing)."""
        path = self.root / relative
        data = content.encode() if isinstance(content, str) else content
        self.written.add(path)
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self.changed += 1

    def finish(self, folders: tuple[str, ...]) -> int:
        """Write the marker and remove the files in ``folders`` that this build did not write; returns
        how many were removed."""
        self.write(MARKER, "A bench report (python -m bench.report); rebuilding it replaces these files.\n")
        removed = 0
        for folder in folders:
            for path in sorted((self.root / folder).glob("*")):
                if path.is_file() and path not in self.written:
                    path.unlink()
                    removed += 1
        return removed
