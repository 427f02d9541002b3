#!/usr/bin/env bash
# Runs prior-probe (Benchmarks/PriorProbe) over the streams of docs/ADAPTATION.md, two at a
# time with one thread each, into out/probe/STREAM.jsonl; then
#     python3 Benchmarks/prior_rules.py out/probe/*.jsonl
# scores the rules. STEP (default 2) keeps every STEPth frame; STREAMS restricts the list
# (the demo's streams: STREAMS="demo-dusk demo-fog demo-night demo-palette demo-texture" STEP=1).
# The held-out streams were kept out of the rule's design and only scored at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data
step=${STEP:-2}
out=${OUT:-out/probe}
mkdir -p "$out"
swift build -c release --product prior-probe >/dev/null
probe=.build/release/prior-probe
cs=(--model espnet --checkpoint $data/weights/espnet/espnet_p_2_q_8.pth)
cv=(--model espnet --checkpoint $data/weights/espnet/espnet_p_2_q_8_camvid.pth)
cg=(--model torchscript --checkpoint $data/weights/cgnet/cgnet_camvid.pt --card cards/cgnet_camvid.yaml)
demo=(--model espnet --checkpoint Sources/SegTTTTool/Resources/synthetic-espnet.safetensors)
declare -A streams=(
    # docs/RESULTS.md's streams
    [cs2camvid-dusk]="${cs[*]} --dataset camvid-dusk:$data/camvid"
    [cs2camvid-day]="${cs[*]} --dataset camvid-day:$data/camvid"
    [cs2camvid-all]="${cs[*]} --dataset camvid:$data/camvid"
    [camvid-noise1]="${cv[*]} --dataset camvid:$data/camvid --corruption gaussian_noise:1"
    [camvid-noise3]="${cv[*]} --dataset camvid:$data/camvid --corruption gaussian_noise:3"
    [camvid-contrast1]="${cv[*]} --dataset camvid:$data/camvid --corruption contrast:1"
    [camvid-contrast3]="${cv[*]} --dataset camvid:$data/camvid --corruption contrast:3"
    # docs/ADAPTATION.md section 3
    [cs2camvid-dusk-q3]="--model espnet --checkpoint $data/weights/espnet/espnet_p_2_q_3.pth --dataset camvid-dusk:$data/camvid"
    [cs2camvid-dusk-q5]="--model espnet --checkpoint $data/weights/espnet/espnet_p_2_q_5.pth --dataset camvid-dusk:$data/camvid"
    [camvid-dusk-fog3]="${cv[*]} --dataset camvid-dusk:$data/camvid --corruption fog:3"
    [camvid-dusk-impulse3]="${cv[*]} --dataset camvid-dusk:$data/camvid --corruption impulse_noise:3"
    [camvid-dusk-night2]="${cv[*]} --dataset camvid-dusk:$data/camvid --corruption night:2"
    [camvid-dusk-jpeg3]="${cv[*]} --dataset camvid-dusk:$data/camvid --corruption jpeg_compression:3"
    [cgnet-camvid]="${cg[*]} --dataset camvid:$data/camvid"
    [cgnet-noise3]="${cg[*]} --dataset camvid:$data/camvid --corruption gaussian_noise:3"
    [cgnet-contrast3]="${cg[*]} --dataset camvid:$data/camvid --corruption contrast:3"
    [cgnet-dusk-fog3]="${cg[*]} --dataset camvid-dusk:$data/camvid --corruption fog:3"
    # held out (streams.yaml: section 4 of docs/ADAPTATION.md)
    [camvid-shot3]="${cv[*]} --dataset camvid:$data/camvid --corruption shot_noise:3"
    [camvid-defocus3]="${cv[*]} --dataset camvid:$data/camvid --corruption defocus_blur:3"
    [camvid-brightness4]="${cv[*]} --dataset camvid:$data/camvid --corruption brightness:4"
    [camvid-jpeg1]="${cv[*]} --dataset camvid:$data/camvid --corruption jpeg_compression:1"
    [cs2camvid-fog2]="${cs[*]} --dataset camvid:$data/camvid --corruption fog:2"
    [cs2camvid-q5-noise1]="--model espnet --checkpoint $data/weights/espnet/espnet_p_2_q_5.pth --dataset camvid:$data/camvid --corruption gaussian_noise:1"
    [cgnet-jpeg3]="${cg[*]} --dataset camvid:$data/camvid --corruption jpeg_compression:3"
    [cgnet-defocus3]="${cg[*]} --dataset camvid:$data/camvid --corruption defocus_blur:3"
    [cgnet-dusk-night2]="${cg[*]} --dataset camvid-dusk:$data/camvid --corruption night:2"
    [cgnet-impulse3]="${cg[*]} --dataset camvid:$data/camvid --corruption impulse_noise:3"
    # held out, second set (streams.yaml)
    [cgnet-fog2]="${cg[*]} --dataset camvid:$data/camvid --corruption fog:2"
    [cgnet-brightness3]="${cg[*]} --dataset camvid:$data/camvid --corruption brightness:3"
    [cgnet-dusk-shot2]="${cg[*]} --dataset camvid-dusk:$data/camvid --corruption shot_noise:2"
    [camvid-night1]="${cv[*]} --dataset camvid:$data/camvid --corruption night:1"
    [camvid-dusk-contrast2]="${cv[*]} --dataset camvid-dusk:$data/camvid --corruption contrast:2"
    [cs2camvid-contrast2]="${cs[*]} --dataset camvid:$data/camvid --corruption contrast:2"
    [cs2camvid-day-night1]="${cs[*]} --dataset camvid-day:$data/camvid --corruption night:1"
    [cs2camvid-q3-jpeg2]="--model espnet --checkpoint $data/weights/espnet/espnet_p_2_q_3.pth --dataset camvid:$data/camvid --corruption jpeg_compression:2"
    # the demo's streams (`segttt demo`: its shipped network, 60 frames of each style)
    [demo-dusk]="${demo[*]} --dataset synthetic:dusk:60:2"
    [demo-fog]="${demo[*]} --dataset synthetic:fog:60:2"
    [demo-night]="${demo[*]} --dataset synthetic:night:60:2"
    [demo-palette]="${demo[*]} --dataset synthetic:palette:60:2"
    [demo-texture]="${demo[*]} --dataset synthetic:texture:60:2"
)
names=${STREAMS:-$(printf '%s\n' "${!streams[@]}" | sort)}
running=0
for name in $names; do
    [ -e "$out/$name.done" ] && continue
    # shellcheck disable=SC2086
    ( $probe ${streams[$name]} --frame-step "$step" --threads 1 --output "$out/$name.jsonl" 2>"$out/$name.log" \
        && touch "$out/$name.done" && echo "$name done" ) &
    running=$((running + 1))
    if [ "$running" -ge 2 ]; then wait -n; running=$((running - 1)); fi
done
wait
