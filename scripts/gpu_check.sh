#!/usr/bin/env bash
# The CUDA check (issue 17), for a machine with a GPU, in under 8 minutes: every workload with
# debug=smoke on CUDA (bf16 autocast on, and fp32 where a preset says so), then one full CIFAR-10
# epoch of a width-64 ResNet-18 with SGD and with AdaS (records keep their time accounting and the
# GPU in `hardware`). Records go to $OUT/results (default: results-gpu/), checkpoints to a temp folder.
#   scripts/gpu_check.sh [path/to/cifar10.tar.xz]
set -euo pipefail
cd "$(dirname "$0")/.."
archive="${1:-../shared/data/cifar10.tar.xz}"
out="${OUT:-results-gpu}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
py=".venv/bin/python"
[ -x "$py" ] || py=python3
"$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device: run this on a GPU machine")'
common=(trainer.device=cuda "results_dir=$out/results" "work_dir=$work" "data_root=$work/data" trainer.progress=false)
for preset in conf/experiment/*.yaml; do
  name="$(basename "$preset" .yaml)"
  timeout 120 "$py" -m bench "+experiment=$name" debug=smoke "${common[@]}" || echo "SMOKE FAILED: $name" >&2
done
for optim in sgd adas; do
  timeout 150 "$py" -m bench +experiment=cifar10_resnet34 model=resnet18 "optim=$optim" trainer.epochs=1 \
    trainer.amp=true "dataset.source=$archive" "${common[@]}" || echo "EPOCH FAILED: $optim" >&2
done
"$py" - "$out/results" <<'PY'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1], "runs").glob("*.json")):
    r = json.loads(path.read_text())
    t = r.get("time") or {}
    print(f"{r['run_id']:60s} {r['status']:9s} train {t.get('train_s')} s  eval {t.get('eval_s')} s  "
          f"{t.get('examples_per_s') or t.get('env_steps_per_s')} /s  {r['hardware'].get('gpu', r['hardware'].get('device'))}")
PY
