# Shared by the sweeps of docs/STABILITY.md and docs/ADAPTATION.md (sourced, not run): the
# real streams they measure on, and a queue of `segttt adapt` runs.
#
#   sweep_tool DIR        builds the release tool and copies it to DIR/bin (rebuilding while a
#                         queue runs then changes nothing); sets TOOL
#   run_queue FILE        runs each line of FILE, "OUTPUT ARGUMENTS...", as one `segttt adapt`,
#                         JOBS at a time (default 1) with THREADS libtorch threads (default 1);
#                         a run whose OUTPUT/metrics.json exists is not queued by the callers
# Every run adds --no-predictions and the extra arguments in RUN_FLAGS (e.g. --diagnostics).
data=${DATA:-../shared/data}
weights=$data/weights/espnet
cityscapes="--model espnet --checkpoint $weights/espnet_p_2_q_8.pth"
camvid_net="--model espnet --checkpoint $weights/espnet_p_2_q_8_camvid.pth"
camvid="$camvid_net --dataset camvid:$data/camvid"
cgnet="--model torchscript --checkpoint $data/weights/cgnet/cgnet_camvid.pt --card cards/cgnet_camvid.yaml"
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
  [cs2camvid-dusk-q3]="--model espnet --checkpoint $weights/espnet_p_2_q_3.pth --dataset camvid-dusk:$data/camvid"
  [cs2camvid-dusk-q5]="--model espnet --checkpoint $weights/espnet_p_2_q_5.pth --dataset camvid-dusk:$data/camvid"
  [camvid-dusk-fog3]="$camvid_net --dataset camvid-dusk:$data/camvid --corruption fog:3"
  [camvid-dusk-impulse3]="$camvid_net --dataset camvid-dusk:$data/camvid --corruption impulse_noise:3"
  [camvid-dusk-night2]="$camvid_net --dataset camvid-dusk:$data/camvid --corruption night:2"
  [camvid-dusk-jpeg3]="$camvid_net --dataset camvid-dusk:$data/camvid --corruption jpeg_compression:3"
  [cs2camvid-all-half-rate]="$cityscapes --dataset camvid:$data/camvid --frame-step 2"
  [camvid-noise1-half-rate]="$camvid --corruption gaussian_noise:1 --frame-step 2"
  # Another network, loaded from TorchScript: CGNet trained on CamVid (../shared/data/weights/cgnet).
  [cgnet-camvid]="$cgnet --dataset camvid:$data/camvid"
  [cgnet-noise3]="$cgnet --dataset camvid:$data/camvid --corruption gaussian_noise:3"
  [cgnet-contrast3]="$cgnet --dataset camvid:$data/camvid --corruption contrast:3"
  [cgnet-dusk-fog3]="$cgnet --dataset camvid-dusk:$data/camvid --corruption fog:3"
)
results_streams="cs2camvid-dusk cs2camvid-day cs2camvid-all camvid-noise1 camvid-noise3 camvid-contrast1 camvid-contrast3"

sweep_tool() {
  swift build -c release --product segttt >/dev/null
  mkdir -p "$1/bin"
  TOOL=$1/bin/segttt-$$
  cp .build/release/segttt "$TOOL"
}

run_one() {
  local out=$1
  shift
  rm -rf "$out"
  mkdir -p "$(dirname "$out")"
  # shellcheck disable=SC2086
  if "$TOOL" adapt "$@" --threads "${THREADS:-1}" --no-predictions $RUN_FLAGS \
      --output "$out" >"$out.log" 2>&1; then
    echo "$out: $(grep '"miou"' "$out/metrics.json")"
  else
    echo "$out: failed, see $out.log"
  fi
}

run_queue() {
  export -f run_one
  export TOOL THREADS RUN_FLAGS
  sed -i 's/[[:space:]]*$//' "$1"  # xargs -L would join a line that ends in a blank to the next
  # shellcheck disable=SC2016
  xargs -P "${JOBS:-1}" -L 1 bash -c 'run_one "$@"' _ <"$1"
  rm -f "$1" "$TOOL"
}
