"""The measurements of Benchmarks/Forward/main.swift in PyTorch eager, with the networks
defined in the fixture scripts. Run with Debian's python3-torch:

    /usr/bin/python3 Benchmarks/forward.py [--threads N] [--repeats N]
"""
import argparse
import os
import sys

import torch

from timing import median_ms  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Scripts", "fixtures"))
from deeplab import DeepLabMulti  # noqa: E402
from espnet import ESPNet  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads\t{torch.get_num_threads()}")
    torch.manual_seed(0)
    cases = [
        ("espnet_480x360_ms", ESPNet(20, 2, 8, 16), 360, 480),
        ("deeplabv2_r101_512x256_ms", DeepLabMulti("resnet101", 19), 256, 512),
    ]
    cases.append(("deeplabv2_r101_1024x512_ms", cases[1][1], 512, 1024))
    with torch.no_grad():
        for name, model, h, w in cases:
            model.eval()
            x = torch.randn(1, 3, h, w)
            print(f"{name}\t{median_ms(lambda: model(x), args.repeats):.1f}")


if __name__ == "__main__":
    main()
