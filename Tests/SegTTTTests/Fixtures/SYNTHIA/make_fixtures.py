#!/usr/bin/python3
"""Writes the SYNTHIA label fixtures of DatasetReaderTests (run from anywhere):

  label16.png  20 x 12, RGB, 16 bits per sample, as SYNTHIA-RAND-CITYSCAPES GT/LABELS:
               R = class id cls16(y, x), G = instance id 1000 + 7 x + y, B = 0xABCD.
  label8.png   20 x 12, RGBA, 8 bits per sample: R = cls8(y, x), G = 200, B = 100, A = 255.

  cls8(y, x)  = (x + 3 y) % 23
  cls16(y, x) = cls8(y, x), except (0, 0) = 300, (0, 1) = 65535, (1, 0) = 259 (low byte 3)

Rows use filter type y % 5 (none, sub, up, average, Paeth) and the image data is split
over two IDAT chunks, so that the decoder's every path is exercised. Only the standard
library (struct, zlib) is used.
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
W, H = 20, 12


def cls8(y, x):
    return (x + 3 * y) % 23


def cls16(y, x):
    return {(0, 0): 300, (0, 1): 65535, (1, 0): 259}.get((y, x), cls8(y, x))


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filtered(rows, bpp):
    out = b""
    previous = bytes(len(rows[0]))
    for y, row in enumerate(rows):
        kind = y % 5
        line = bytearray()
        for i, value in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            predictor = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
            line.append((value - predictor) % 256)
        out += bytes([kind]) + bytes(line)
        previous = row
    return out


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(name, color_type, depth, rows, bpp):
    data = zlib.compress(filtered(rows, bpp), 9)
    half = len(data) // 2
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, depth, color_type, 0, 0, 0))
    png += chunk(b"IDAT", data[:half]) + chunk(b"IDAT", data[half:]) + chunk(b"IEND", b"")
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(png)


def main():
    rows16 = [
        b"".join(struct.pack(">HHH", cls16(y, x), 1000 + 7 * x + y, 0xABCD) for x in range(W)) for y in range(H)
    ]
    write_png("label16.png", 2, 16, rows16, 6)
    rows8 = [bytes(v for x in range(W) for v in (cls8(y, x), 200, 100, 255)) for y in range(H)]
    write_png("label8.png", 6, 8, rows8, 4)


if __name__ == "__main__":
    main()
