#!/usr/bin/env bash
# Create the project's virtual environment (.venv, or $BENCH_VENV) and install bench with every
# dependency at the versions pinned in requirements/constraints.txt. Safe to re-run: it does
# nothing when the pins and pyproject.toml have not changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${BENCH_VENV:-.venv}"
stamp="$venv/.bench-installed"
want="$(cat pyproject.toml requirements/constraints.txt | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -c requirements/constraints.txt -e ".[test]"
echo "$want" > "$stamp"
echo "installed bench into $venv" >&2
