"""``python -m bench.data prepare <name> [--from PATH] [--root DIR] [--allow-incomplete]``: prepare a
dataset; ``python -m bench.data verify <tag> [--root DIR]``: re-check a prepared copy's checksums.
The root defaults to ``$BENCH_DATA_ROOT`` (else ``data``), the folder ``python -m bench`` reads."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench.data import cache
from bench.data.catalog import DATASETS
from bench.data.prepare import prepare_download, prepare_from
from bench.errors import BenchError, report

DATA_ROOT_ENV = "BENCH_DATA_ROOT"


EXAMPLES = """examples:
  python -m bench.data prepare cifar10 --from ../shared/data/cifar10.tar.xz   # once; runs then reuse data/
  python -m bench.data prepare mnist --from ../shared/data/mnist.tar.xz --root /scratch/data
  python -m bench.data verify cifar10-shared                                  # re-check its checksums"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.data", description=__doc__, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="turn an archive, folder or download into the cached format")
    prepare.add_argument("name", choices=sorted(DATASETS))
    prepare.add_argument("--from", dest="source", type=Path, help="local archive or folder")
    prepare.add_argument("--allow-incomplete", action="store_true",
                         help="accept a copy with non-official sizes (a stand-in; tagged <name>-partial-*)")
    verify = commands.add_parser("verify", help="re-check the SHA-256 of a prepared copy's files")
    verify.add_argument("tag", help="prepared folder name, e.g. cifar10-shared")
    for command in (prepare, verify):
        command.add_argument("--root", type=Path, default=Path(os.environ.get(DATA_ROOT_ENV) or "data"),
                             help=f"prepared-data root (default: ${DATA_ROOT_ENV}, else data)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "verify":
            folder = args.root / args.tag
            if not cache.is_prepared(folder):
                raise BenchError(f"{folder} is not a complete prepared dataset; run python -m bench.data prepare")
            bad = cache.verify_checksums(folder)
            if bad:
                raise BenchError(f"{folder}: checksum mismatch in {', '.join(bad)}; prepare the dataset again")
            print(f"{folder}: all checksums match")
            return 0
        if args.source is not None:
            folder = prepare_from(args.name, args.source, args.root, args.allow_incomplete)
        else:
            folder = prepare_download(args.name, args.root)
    except BenchError as error:
        report(error)
        return error.exit_code
    print(f"prepared {args.name} in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
