"""``python -m bench.data prepare <name> [--from PATH] [--root DIR]``: prepare a dataset."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.data.catalog import DATASETS
from bench.data.prepare import prepare_download, prepare_from
from bench.errors import BenchError, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="turn an archive, folder or download into the cached format")
    prepare.add_argument("name", choices=sorted(DATASETS))
    prepare.add_argument("--from", dest="source", type=Path, help="local archive or ImageFolder tree")
    prepare.add_argument("--root", type=Path, default=Path("data"), help="prepared-data root (default: data)")
    args = parser.parse_args(argv)
    try:
        if args.source is not None:
            folder = prepare_from(args.name, args.source, args.root)
        else:
            folder = prepare_download(args.name, args.root)
    except BenchError as error:
        report(error)
        return error.exit_code
    print(f"prepared {args.name} in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
