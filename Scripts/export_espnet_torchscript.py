"""Exports SegTTT's PyTorch definition of ESPNet (Scripts/fixtures/espnet.py), with the
released checkpoints, to TorchScript, scripted and traced, each with its model card: the
proof that a network SegTTT also builds natively adapts the same through the TorchScript path.

Run with Debian's python3-torch:
    /usr/bin/python3 Scripts/export_espnet_torchscript.py OUT [DATA] [CHECKPOINT ...]
DATA defaults to ../shared/data; CHECKPOINT names files of DATA/weights/espnet (default:
espnet_p_2_q_8.pth and espnet_p_2_q_8_camvid.pth). Writes OUT/NAME.scripted.pt,
OUT/NAME.traced.pt and a card beside each (NAME.scripted.yaml, NAME.traced.yaml).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
import espnet  # noqa: E402
from common import ROOT  # noqa: E402

CITYSCAPES = ["road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
              "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
              "bicycle"]
CAMVID = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
          "Bicyclist"]
# The authors' normalisation (BGR, on 0..255, then divided by 255), as SegTTT's native cards.
CARDS = {
    20: dict(classes=CITYSCAPES, extra=["background"], mean=[72.3923111, 82.90893555, 73.15840149],
             std=[45.3192215, 46.15289307, 44.91483307]),
    12: dict(classes=CAMVID, extra=["void"], mean=[110.3, 108.4, 105.0], std=[72.1, 72.7, 69.9]),
}


def card(name, outputs):
    facts = CARDS[outputs]
    quote = lambda names: "[" + ", ".join(f'"{n}"' for n in names) + "]"
    return "\n".join([
        f"name: {name}",
        f"classes: {quote(facts['classes'])}",
        f"no_class_outputs: {quote(facts['extra'])}",
        "input:",
        "  channel_order: BGR",
        f"  scale: {1 / 255!r}",
        f"  mean: {facts['mean']}",
        f"  std: {facts['std']}",
        "output: tensor",
        "logits_resolution: input",
        "head: [classifier]",
        "side_multiple: 8",
        "",
    ])


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    data = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "..", "shared", "data")
    names = sys.argv[3:] or ["espnet_p_2_q_8.pth", "espnet_p_2_q_8_camvid.pth"]
    os.makedirs(out, exist_ok=True)
    for name in names:
        model = espnet.load(os.path.join(data, "weights", "espnet", name))
        outputs = model.classifier.weight.shape[1]
        stem = os.path.join(out, name[: -len(".pth")])
        example = torch.zeros(1, 3, 360, 480)
        with torch.no_grad():
            exports = {"scripted": torch.jit.script(model), "traced": torch.jit.trace(model, example)}
        for kind, module in exports.items():
            module.save(f"{stem}.{kind}.pt")
            with open(f"{stem}.{kind}.yaml", "w") as f:
                f.write(card(f"espnet {name[:-4]} ({kind})", outputs))
            print(f"{stem}.{kind}.pt")


if __name__ == "__main__":
    main()
