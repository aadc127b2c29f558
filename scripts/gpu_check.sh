#!/usr/bin/env bash
# The CUDA check (issue 17), for a machine with a GPU, in under 8 minutes: every workload with
# debug=smoke on CUDA (bf16 autocast on, and fp32 where a preset says so), then one full CIFAR-10
# epoch of a width-64 ResNet-18 timed with SGD, with AdaS, and with SGD in channels_last
# (trainer.channels_last=true), and, if the budget still allows, SGD in channels_last with
# trainer.compile=true (records keep their time accounting and the GPU in `hardware`). Each step's
# time limit comes from what is left of the budget (GPU_CHECK_BUDGET_S, default 470 s); a smoke run
# or a timed epoch the budget cannot fit is reported as skipped. Records go to $OUT/results
# (default: results-gpu/), checkpoints to a temp folder.
#   scripts/gpu_check.sh [path/to/cifar10.tar.xz]
set -euo pipefail
cd "$(dirname "$0")/.."
archive="${1:-../shared/data/cifar10.tar.xz}"
out="${OUT:-results-gpu}"
budget="${GPU_CHECK_BUDGET_S:-470}"   # seconds for the whole script: under 8 minutes
epoch_reserve=210                      # kept for the three timed epochs (70 s each: data preparation included)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
py=".venv/bin/python"
[ -x "$py" ] || py=python3
"$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device: run this on a GPU machine")'
common=(trainer.device=cuda "results_dir=$out/results" "work_dir=$work" "data_root=$work/data" trainer.progress=false)

# limited SECONDS_LEFT CAP LABEL COMMAND...: run COMMAND with a time limit of min(SECONDS_LEFT, CAP);
# under 10 s left it is skipped; a failure or a timeout is reported and the script goes on.
limited() {
  local left="$1" cap="$2" label="$3"
  shift 3
  if (( left < 10 )); then echo "SKIPPED (budget): $label" >&2; return 0; fi
  timeout "$(( left < cap ? left : cap ))" "$@" || echo "FAILED or TIMED OUT: $label" >&2
}

for preset in conf/experiment/*.yaml; do
  name="$(basename "$preset" .yaml)"
  limited $(( budget - epoch_reserve - SECONDS )) 60 "smoke $name" \
    "$py" -m bench "+experiment=$name" debug=smoke "${common[@]}"
done
epoch=(+experiment=cifar10_resnet34 model=resnet18 trainer.epochs=1 trainer.amp=true "dataset.source=$archive")
timed=("optim=sgd" "optim=adas" "optim=sgd trainer.channels_last=true")
for i in "${!timed[@]}"; do
  read -r -a extra <<< "${timed[$i]}"
  runs_left=$(( ${#timed[@]} - i ))
  limited $(( (budget - SECONDS) / runs_left )) 150 "epoch ${timed[$i]}" \
    "$py" -m bench "${epoch[@]}" "${extra[@]}" "${common[@]}"
done
# torch.compile adds its compilation (about a minute for ResNet-18) to the epoch: only if that fits.
if (( budget - SECONDS >= 90 )); then
  limited $(( budget - SECONDS )) 150 "epoch optim=sgd channels_last compile" \
    "$py" -m bench "${epoch[@]}" optim=sgd trainer.channels_last=true trainer.compile=true "${common[@]}"
else
  echo "SKIPPED (budget): epoch optim=sgd channels_last compile" >&2
fi
"$py" - "$out/results" <<'PY'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1], "runs").glob("*.json")):
    r = json.loads(path.read_text())
    t, trainer = r.get("time") or {}, r["config"].get("trainer") or {}
    print(f"{r['run_id']:60s} {r['status']:9s} {r.get('precision')} channels_last={trainer.get('channels_last')} "
          f"compile={trainer.get('compile')}  train {t.get('train_s')} s  eval {t.get('eval_s')} s  "
          f"{t.get('examples_per_s') or t.get('env_steps_per_s')} /s  {r['hardware'].get('gpu', r['hardware'].get('device'))}")
PY
echo "gpu_check: ${SECONDS} s of a ${budget} s budget"
