#!/usr/bin/env bash
# The experiments of docs/STABILITY.md: OCL at its published settings and with each
# safeguard, against bn-prior (the same forward without the step), on short real streams,
# with per-frame diagnostics. Every run is a `segttt adapt` into out/stability/STREAM/VARIANT;
# Benchmarks/stability_summary.py turns them into the tables.
#
#     bash Benchmarks/stability.sh [FRAMES] [VARIANT...]      (default: 60 frames, every variant)
#
# STREAMS="cs2camvid-dusk camvid-noise3" picks streams; THREADS (default 1) sets libtorch's threads.
# Runs that finished already are kept (delete out/stability to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
frames=${1:-60}
shift || true
data=../shared/data
tool=.build/release/segttt
swift build -c release --product segttt >/dev/null

declare -A streams=(
  [cs2camvid-dusk]="--checkpoint $data/weights/espnet/espnet_p_2_q_8.pth --dataset camvid-dusk:$data/camvid"
  [camvid-noise1]="--checkpoint $data/weights/espnet/espnet_p_2_q_8_camvid.pth --dataset camvid:$data/camvid --corruption gaussian_noise:1"
  [camvid-noise3]="--checkpoint $data/weights/espnet/espnet_p_2_q_8_camvid.pth --dataset camvid:$data/camvid --corruption gaussian_noise:3"
)
declare -A variants=(
  [bn-prior]="--method bn-prior"
  [ocl]="--method ocl"
  [ocl-task-outputs]="--method ocl --task-outputs-only"
  [ocl-clip]="--method ocl --max-grad-norm 10"
  [ocl-bn-affine]="--method ocl --parameters bn-affine"
  [ocl-bn-momentum]="--method ocl --bn-momentum 0.1"
  [ocl-reset]="--method ocl --reset-threshold 0.2"
  [ocl-teacher]="--method ocl --teacher-momentum 0.99"
  [ocl-clip-reset]="--method ocl --max-grad-norm 10 --reset-threshold 0.2"
)
chosen=("$@")
[ ${#chosen[@]} -eq 0 ] && chosen=(bn-prior ocl ocl-task-outputs ocl-clip ocl-bn-affine ocl-bn-momentum ocl-reset ocl-teacher ocl-clip-reset)
for stream in ${STREAMS:-cs2camvid-dusk camvid-noise1 camvid-noise3}; do
  for variant in "${chosen[@]}"; do
    out=out/stability/$stream/$variant
    [ -f "$out/metrics.json" ] && continue
    rm -rf "$out"
    # shellcheck disable=SC2086
    $tool adapt --model espnet ${streams[$stream]} ${variants[$variant]} --limit "$frames" \
      --threads "${THREADS:-1}" --diagnostics --no-predictions --output "$out" >/dev/null 2>&1
    echo "$stream $variant: $(grep '"miou"' "$out/metrics.json")"
  done
done
