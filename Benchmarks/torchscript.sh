#!/usr/bin/env bash
# The TorchScript path's figures (docs/TORCHSCRIPT.md): ESPNet from the released checkpoints
# through the native network and through its scripted and traced exports, and CGNet, the
# shared TorchScript network, under every method, on the CamVid test split.
#
#     bash Benchmarks/torchscript.sh [OUT]      (after swift build -c release; OUT: out/torchscript)
#
# Prints one line per run: model, export, stream, method, frames, mIoU, first step's loss.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/torchscript}
data=../shared/data
segttt=.build/release/segttt
mkdir -p "$out"
/usr/bin/python3 Scripts/export_espnet_torchscript.py "$out/models" "$data" >/dev/null

run() {  # NAME MODEL-ARGS... -- RUN-ARGS...
    local name=$1; shift
    local folder="$out/runs/$name"
    rm -rf "$folder"
    "$segttt" adapt "$@" --dataset "camvid:$data/camvid" --no-predictions --threads 2 --output "$folder" >/dev/null
    /usr/bin/python3 - "$folder" "$name" <<'PY'
import csv, json, sys
folder, name = sys.argv[1], sys.argv[2]
m = json.load(open(f"{folder}/metrics.json"))
rows = list(csv.DictReader(open(f"{folder}/frames.csv")))
loss = rows[0].get("loss", "") if rows else ""
print(f"{name:48s} frames {m['frames']:3d}  mIoU {m['miou']:6.2f}  first loss {loss}")
PY
}

for kind in native scripted traced; do
    for net in espnet_p_2_q_8_camvid espnet_p_2_q_8; do
        if [ $kind = native ]; then
            model=(--model espnet --checkpoint "$data/weights/espnet/$net.pth")
        else
            model=(--model torchscript --checkpoint "$out/models/$net.$kind.pt")
        fi
        run "$net $kind source" "${model[@]}" --method source
        [ $net = espnet_p_2_q_8 ] || continue
        run "$net $kind bn-prior" "${model[@]}" --method bn-prior
        run "$net $kind ocl published mask 0, 50 frames" "${model[@]}" --method ocl --preset published \
            --mask-ratio 0 --limit 50
    done
done

cgnet=(--model torchscript --checkpoint "$data/weights/cgnet/cgnet_camvid.pt" --card cards/cgnet_camvid.yaml)
run "cgnet source" "${cgnet[@]}" --method source
for method in bn-prior tent ocl; do
    run "cgnet $method, 30 frames" "${cgnet[@]}" --method "$method" --limit 30
done
