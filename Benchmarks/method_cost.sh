#!/usr/bin/env bash
# Seconds per frame of whole `segttt adapt` runs (forward, adaptation and metrics; no
# predictions written), methods in turns, ROUNDS rounds: the cost table of docs/BENCHMARKS.md.
#
#     bash Benchmarks/method_cost.sh [METHOD...]   (default: bn-prior bn-select ocl)
#
# Environment: ROUNDS (default 2), THREADS (default 2), STREAM (default cs2camvid-dusk, a
# stream of Benchmarks/sweep.sh). OCL runs with --preset published (the paper's step).
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/sweep.sh
sweep_tool out/method-cost
methods=("$@")
[ ${#methods[@]} -eq 0 ] && methods=(bn-prior bn-select ocl)
stream=${STREAM:-cs2camvid-dusk}
echo "| round | $(printf '%s | ' "${methods[@]}")"
for round in $(seq "${ROUNDS:-2}"); do
  line="| $round |"
  for method in "${methods[@]}"; do
    out=out/method-cost/$method
    rm -rf "$out"
    # shellcheck disable=SC2086
    "$TOOL" adapt ${streams[$stream]} --method "$method" --preset \
      "$([ "$method" = ocl ] && echo published || echo recommended)" --threads "${THREADS:-2}" \
      --no-predictions --output "$out" >/dev/null 2>"$out.log"
    line+=" $(python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["seconds_per_frame"])' "$out/metrics.json") |"
  done
  echo "$line"
done
rm -f "$TOOL"
