#!/usr/bin/env bash
# The experiments of docs/STABILITY.md: OCL at its published settings, with each safeguard
# and with the default configuration, against bn-prior (the same forward without the step),
# on real streams, with per-frame diagnostics. Every run is a `segttt adapt` into
# out/stability/FRAMES/STREAM/VARIANT[-seedS]; Benchmarks/stability_summary.py turns them
# into the tables.
#
#     bash Benchmarks/stability.sh [FRAMES|all] [VARIANT...]   (default: 60 frames, every variant)
#
# Environment:
#   STREAMS="cs2camvid-dusk camvid-noise3"  the streams (default: the three short-stream ones)
#   SEEDS="0 1 2"   seeds of the methods that take a step (bn-prior has no randomness; default 0)
#   JOBS=2          runs at a time (default 1), each with THREADS libtorch threads (default 1)
# Runs that finished already are kept (delete their folder to run them again). The binary is
# copied to out/stability/bin first, so rebuilding while the queue runs changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
frames=${1:-60}
shift || true
source Benchmarks/sweep.sh
sweep_tool out/stability

# OCL variants start from the published settings (`--preset published`); ocl-recommended is
# the default of `segttt adapt --method ocl` (clipping at 10 and the drift monitor at 0.05).
published="--method ocl --preset published"
declare -A variants=(
  [bn-prior]="--method bn-prior"
  [ocl]="$published"
  [ocl-task-outputs]="$published --task-outputs-only"
  [ocl-clip]="$published --max-grad-norm 10"
  [ocl-bn-affine]="$published --parameters bn-affine"
  [ocl-bn-momentum]="$published --bn-momentum 0.1"
  [ocl-reset]="$published --reset-threshold 0.2"
  [ocl-teacher]="$published --teacher-momentum 0.99"
  [ocl-clip-reset]="$published --max-grad-norm 10 --reset-threshold 0.2"
  [ocl-clip-reset-0.1]="$published --max-grad-norm 10 --reset-threshold 0.1"
  [ocl-clip-reset-0.05]="$published --max-grad-norm 10 --reset-threshold 0.05"
  [ocl-recommended]="--method ocl --preset recommended"
)
chosen=("$@")
[ ${#chosen[@]} -eq 0 ] && chosen=(bn-prior ocl ocl-task-outputs ocl-clip ocl-bn-affine ocl-bn-momentum ocl-reset ocl-teacher ocl-clip-reset)
limit=()
[ "$frames" != all ] && limit=(--limit "$frames")

# One line per run: output folder, then the arguments of `segttt adapt`.
queue=$(mktemp)
for seed in ${SEEDS:-0}; do
  for stream in ${STREAMS:-cs2camvid-dusk camvid-noise1 camvid-noise3}; do
    for variant in "${chosen[@]}"; do
      out=out/stability/$frames/$stream/$variant
      seeded=()
      if [ "$variant" != bn-prior ]; then
        out=$out-seed$seed
        seeded=(--seed "$seed")
      elif [ "$seed" != "${SEEDS%% *}" ] && [ -n "${SEEDS:-}" ]; then
        continue  # bn-prior has no randomness: once per stream
      fi
      [ -f "$out/metrics.json" ] && continue
      echo "$out ${streams[$stream]} ${variants[$variant]} ${seeded[*]} ${limit[*]}" >>"$queue"
    done
  done
done

RUN_FLAGS=--diagnostics run_queue "$queue"
