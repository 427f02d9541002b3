#!/usr/bin/env bash
# Seconds per frame of whole `segttt adapt` runs (forward, adaptation and metrics; no
# predictions written), methods in turns, ROUNDS rounds: the cost table of docs/BENCHMARKS.md.
#
#     bash Benchmarks/method_cost.sh [METHOD...]   (default: bn-prior bn-select ocl)
#
# Environment: ROUNDS (default 2), THREADS (default 2), STREAM (the stream's options of
# `segttt adapt`; default Cityscapes -> CamVid dusk, cs2camvid-dusk of Benchmarks/plans/streams.yaml).
# OCL runs with --preset published (the paper's step).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-../shared/data}
stream=${STREAM:-"--model espnet --checkpoint $data/weights/espnet/espnet_p_2_q_8.pth --dataset camvid-dusk:$data/camvid"}
# A copy of the release tool, so that rebuilding while the rounds run changes nothing.
swift build -c release --product segttt >/dev/null
mkdir -p out/method-cost
TOOL=out/method-cost/segttt-$$
cp .build/release/segttt "$TOOL"
methods=("$@")
[ ${#methods[@]} -eq 0 ] && methods=(bn-prior bn-select ocl)
echo "| round | $(printf '%s | ' "${methods[@]}")"
for round in $(seq "${ROUNDS:-2}"); do
  line="| $round |"
  for method in "${methods[@]}"; do
    out=out/method-cost/$method
    rm -rf "$out"
    # shellcheck disable=SC2086
    "$TOOL" adapt $stream --method "$method" --preset \
      "$([ "$method" = ocl ] && echo published || echo recommended)" --threads "${THREADS:-2}" \
      --no-predictions --output "$out" >/dev/null 2>"$out.log"
    line+=" $(python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["seconds_per_frame"])' "$out/metrics.json") |"
  done
  echo "$line"
done
rm -f "$TOOL"
