#!/usr/bin/env bash
# The experiments of docs/ADAPTATION.md: where each method's gain comes from, split into the
# BatchNorm statistics, the gradient step and the prediction, on the streams of
# docs/RESULTS.md (and, with STREAMS, the others of Benchmarks/sweep.sh). Every run is a
# `segttt adapt` of the whole stream into out/adaptation/STREAM/VARIANT-seedS;
# Benchmarks/adaptation_summary.py turns them into the tables.
#
#     bash Benchmarks/adaptation.sh [VARIANT...]   (default: every variant)
#
# Environment:
#   STREAMS="..."  the streams (default: the seven of docs/RESULTS.md)
#   SEEDS="0 1 2"  seeds: the method's (--seed) and the corruption's (--corruption-seed); default 0
#   JOBS=2         runs at a time (default 1), each with THREADS libtorch threads (default 1)
# Runs that finished already are kept (delete their folder to run them again).
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/sweep.sh
sweep_tool out/adaptation

# Variants start from the published settings. stats-*: no step, the two flip views, and the
# BatchNorm statistics named (prior P: P * source + (1 - P) * frame; ema M: a moving average
# of the stream's statistics with momentum M; shrink M: `--bn-shrinkage M`). views-1: one view. The step variants name the
# method and, after it, the statistics they normalise with.
bn="--method bn-prior --preset published"
declare -A variants=(
  [stats-prior-1]="$bn --bn-prior 1"
  [stats-prior-0.95]="$bn --bn-prior 0.95"
  [stats-prior-0.85]="$bn --bn-prior 0.85"
  [stats-prior-0.7]="$bn --bn-prior 0.7"
  [stats-prior-0.5]="$bn --bn-prior 0.5"
  [stats-prior-0.3]="$bn --bn-prior 0.3"
  [stats-prior-0]="$bn --bn-prior 0"
  [stats-ema-0.1]="$bn --bn-momentum 0.1"
  [stats-ema-0.02]="$bn --bn-momentum 0.02"
  [stats-shrink-0.1]="$bn --bn-shrinkage 0.1"
  [views-1]="$bn --no-flip"
  [tent-batch]="--method tent --preset published"
  [tent-prior-0.85]="--method tent --preset published --bn-prior 0.85"
  [tent-ema-0.1]="--method tent --preset published --bn-momentum 0.1"
  [pl-batch]="--method pl-reset --preset published --class-reset-threshold none"
  [pl-reset-batch]="--method pl-reset --preset published"
  [pl-reset-prior-0.85]="--method pl-reset --preset published --bn-prior 0.85"
  [pl-reset-ema-0.1]="--method pl-reset --preset published --bn-momentum 0.1"
  [pl-reset-bn-affine]="--method pl-reset --preset published --parameters bn-affine"
  [ocl-prior-0.85]="--method ocl --preset published"
  [ocl-ema-0.1]="--method ocl --preset published --bn-momentum 0.1"
  [bn-select]="--method bn-select"
  [default]="--preset recommended"
)
chosen=("$@")
[ ${#chosen[@]} -eq 0 ] && mapfile -t chosen < <(printf '%s\n' "${!variants[@]}" | sort)

queue=$(mktemp)
for seed in ${SEEDS:-0}; do
  for stream in ${STREAMS:-$results_streams}; do
    for variant in "${chosen[@]}"; do
      out=out/adaptation/$stream/$variant-seed$seed
      [ -f "$out/metrics.json" ] && continue
      echo "$out ${streams[$stream]} ${variants[$variant]} --seed $seed --corruption-seed $seed" >>"$queue"
    done
  done
done
RUN_FLAGS=--diagnostics run_queue "$queue"
