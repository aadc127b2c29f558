#!/usr/bin/env bash
# Every figure family of the five papers from the records in the store, into results/figures/ (PNG;
# pass another suffix, e.g. `scripts/paper_figures.sh pdf`). A family whose runs are not in the store
# is reported and skipped. Each figure says in its footnote how many of its runs are reduced,
# lossy, synthetic or version-deviating.
#   scripts/paper_figures.sh [png|pdf|svg]
set -uo pipefail
cd "$(dirname "$0")/.."
ext="${1:-png}"
runs="${BENCH_RESULTS_DIR:-results}/runs"
out="${BENCH_RESULTS_DIR:-results}/figures"
mkdir -p "$out"
py=".venv/bin/python"
[ -x "$py" ] || py=python3
failed=0
figure() {  # figure NAME ARGS...: one figure, its failure reported, not fatal
  local name=$1
  shift
  "$py" -m bench.figures "$@" --out "$out/$name.$ext" || { echo "skipped $name" >&2; failed=$((failed + 1)); }
}
figure adas_layers_adas adas_layers --runs "$runs" --experiment cifar10_resnet34 --optim adas                # AdaS Figs. 2-4
figure adas_layers_sgd_probe adas_layers --runs "$runs" --optim sgd --where config.probe.name=lowrank              # AdaS metrics of a baseline
figure rmsgd_quality adas_layers --runs "$runs" --optim rmsgd --panels lr kg q Q                     # RMSGD's Q
figure autodrop_angles autodrop_angles --runs "$runs" --experiment autodrop_cifar10                          # AutoDrop Fig. 2 style
figure autodrop_nqm autodrop_nqm --results results/reference/autodrop_nqm                                    # AutoDrop Figs. 1 and 3
figure adalip_grid_mnist adalip_grid --runs "$runs" --experiment adalip_mnist --where config.trainer.epochs=3 --pairs                         # AdaLip Fig. 2
figure ps_lr_estimates lr_estimates --runs "$runs" --experiment ps_cifar100_resnet32                         # PS Fig. 1
figure ps_cifar100_curves curves --runs "$runs" --experiment ps_cifar100_resnet32 --metric test_acc1 train_loss
figure ps_sac_hopper_curves curves --runs "$runs" --experiment ps_sac_hopper                                 # vs environment step
echo "figures in $out ($failed skipped)"
