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
data=../shared/data
swift build -c release --product segttt >/dev/null
mkdir -p out/stability/bin
tool=out/stability/bin/segttt-$$
cp .build/release/segttt "$tool"

weights=$data/weights/espnet
cityscapes="--checkpoint $weights/espnet_p_2_q_8.pth"
camvid="--checkpoint $weights/espnet_p_2_q_8_camvid.pth --dataset camvid:$data/camvid"
declare -A streams=(
  # The streams of docs/RESULTS.md.
  [cs2camvid-dusk]="$cityscapes --dataset camvid-dusk:$data/camvid"
  [cs2camvid-day]="$cityscapes --dataset camvid-day:$data/camvid"
  [cs2camvid-all]="$cityscapes --dataset camvid:$data/camvid"
  [camvid-noise1]="$camvid --corruption gaussian_noise:1"
  [camvid-noise3]="$camvid --corruption gaussian_noise:3"
  [camvid-contrast1]="$camvid --corruption contrast:1"
  [camvid-contrast3]="$camvid --corruption contrast:3"
  # Streams outside that table: other networks, other corruptions, a stream seen at half rate.
  [cs2camvid-dusk-q3]="--checkpoint $weights/espnet_p_2_q_3.pth --dataset camvid-dusk:$data/camvid"
  [cs2camvid-dusk-q5]="--checkpoint $weights/espnet_p_2_q_5.pth --dataset camvid-dusk:$data/camvid"
  [camvid-dusk-fog3]="--checkpoint $weights/espnet_p_2_q_8_camvid.pth --dataset camvid-dusk:$data/camvid --corruption fog:3"
  [camvid-dusk-impulse3]="--checkpoint $weights/espnet_p_2_q_8_camvid.pth --dataset camvid-dusk:$data/camvid --corruption impulse_noise:3"
  [camvid-dusk-night2]="--checkpoint $weights/espnet_p_2_q_8_camvid.pth --dataset camvid-dusk:$data/camvid --corruption night:2"
  [camvid-dusk-jpeg3]="--checkpoint $weights/espnet_p_2_q_8_camvid.pth --dataset camvid-dusk:$data/camvid --corruption jpeg_compression:3"
  [cs2camvid-all-half-rate]="$cityscapes --dataset camvid:$data/camvid --frame-step 2"
  [camvid-noise1-half-rate]="$camvid --corruption gaussian_noise:1 --frame-step 2"
)
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

run_one() {
  local out=$1
  shift
  rm -rf "$out"
  mkdir -p "$(dirname "$out")"
  if "$TOOL" adapt --model espnet "$@" --threads "${THREADS:-1}" --diagnostics --no-predictions \
      --output "$out" >"$out.log" 2>&1; then
    echo "$out: $(grep '"miou"' "$out/metrics.json")"
  else
    echo "$out: failed, see $out.log"
  fi
}
export -f run_one
export TOOL=$tool THREADS
sed -i 's/[[:space:]]*$//' "$queue"  # xargs -L would join a line that ends in a blank to the next
# shellcheck disable=SC2016
xargs -P "${JOBS:-1}" -L 1 bash -c 'run_one "$@"' _ <"$queue"
rm -f "$queue" "$tool"
