#!/usr/bin/python3
"""Writes the seed corpora of Benchmarks/fuzz.sh: small real files of each reader, made with
PyTorch and PIL at run time (nothing here is committed).

    /usr/bin/python3 Benchmarks/fuzz_seeds.py OUT

writes OUT/safetensors, OUT/zip, OUT/legacy-pickle, OUT/png and OUT/jpeg.
"""
import io
import json
import os
import struct
import sys

import torch
from PIL import Image

out = sys.argv[1]


def folder(name):
    path = os.path.join(out, name)
    os.makedirs(path, exist_ok=True)
    return path


def state_dicts():
    """A few state dicts covering dtypes, shapes, views and nesting."""
    torch.manual_seed(0)
    base = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    yield "small", {"weight": torch.randn(3, 2), "bias": torch.zeros(3)}
    yield "dtypes", {
        "f64": torch.randn(2, dtype=torch.float64),
        "f16": torch.randn(3).half(),
        "bf16": torch.randn(3).bfloat16(),
        "i64": torch.arange(4),
        "i32": torch.arange(3, dtype=torch.int32),
        "i16": torch.arange(2, dtype=torch.int16),
        "i8": torch.tensor([-1, 2], dtype=torch.int8),
        "u8": torch.tensor([255, 0], dtype=torch.uint8),
        "bool": torch.tensor([True, False]),
        "scalar": torch.tensor(1.5),
        "empty": torch.zeros(0, 3),
    }
    # Views share a storage: a transpose, a slice with an offset, a broadcast (stride 0).
    yield "views", {
        "base": base,
        "transposed": base.transpose(0, 2),
        "slice": base[1, 1:],
        "expanded": torch.ones(1, 3).expand(4, 3),
    }
    yield "training", {"epoch": 3, "state_dict": {"module.conv.weight": torch.randn(2, 1, 3, 3)}, "lr": 0.1}


def safetensors_bytes(tensors):
    dtypes = {
        torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
        torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
        torch.bool: "BOOL",
    }
    header, body = {"__metadata__": {"format": "pt"}}, b""
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            continue
        data = tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        header[name] = {"dtype": dtypes[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


for name, tensors in state_dicts():
    torch.save(tensors, os.path.join(folder("zip"), name + ".pth"))
    torch.save(tensors, os.path.join(folder("legacy-pickle"), name + ".pth"), _use_new_zipfile_serialization=False)
    flat = tensors.get("state_dict", tensors)
    with open(os.path.join(folder("safetensors"), name + ".safetensors"), "wb") as f:
        f.write(safetensors_bytes(flat))

W, H = 13, 7
rgb = Image.frombytes("RGB", (W, H), bytes((37 * i + 11 * (i // 3)) % 256 for i in range(W * H * 3)))
images = {
    "rgb": rgb,
    "rgba": rgb.convert("RGBA"),
    "gray": rgb.convert("L"),
    "gray_alpha": rgb.convert("LA"),
    "bit": rgb.convert("1"),
    "palette": rgb.convert("P", palette=Image.ADAPTIVE, colors=5),
    "gray16": rgb.convert("I").point(lambda v: v * 257).convert("I;16"),
}
for name, image in images.items():
    image.save(os.path.join(folder("png"), name + ".png"))
rgb.save(os.path.join(folder("png"), "rgb_compressed.png"), compress_level=9)
jpegs = {
    "baseline": dict(quality=90),
    "low": dict(quality=10),
    "progressive": dict(quality=75, progressive=True),
    "444": dict(quality=85, subsampling=0),
    "optimized": dict(quality=60, optimize=True),
}
for name, options in jpegs.items():
    rgb.save(os.path.join(folder("jpeg"), name + ".jpg"), **options)
rgb.convert("L").save(os.path.join(folder("jpeg"), "gray.jpg"), quality=80)
rgb.convert("CMYK").save(os.path.join(folder("jpeg"), "cmyk.jpg"), quality=80)
