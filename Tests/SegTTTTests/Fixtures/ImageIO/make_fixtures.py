#!/usr/bin/python3
"""Writes the PNG and JPEG fixtures of ImageIOTests with PIL (Debian's python3-pil, which
links the same libpng and libjpeg-turbo as CImageIO) and a minimal hand-written PNG encoder
for what PIL cannot write (16-bit RGB, Adam7 interlacing).

Run from anywhere: /usr/bin/python3 Tests/SegTTTTests/Fixtures/ImageIO/make_fixtures.py

Every image is W x H = 7 x 5 (JPEGs 16 x 12) so that width and height cannot be confused.
Pixel values follow formulas the Swift tests recompute:
  rgb(y, x, c)   = (37 x + 11 y + 85 c) % 256
  gray(y, x)     = (37 x + 11 y) % 256
  gray16(y, x)   = (4099 x + 9157 y + 12345) % 65536   (values above 32767 included)
  index(y, x)    = (x + 2 y) % 5                      (palette indices; colours PALETTE)
  bit(y, x)      = (x + y) % 2                        (1-bit gray)
For JPEGs, PIL's own decoding is stored next to the file as raw RGB bytes (*.rgb).
"""
import os
import struct
import zlib

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
W, H = 7, 5
PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30), (200, 100, 50)]


def rgb(y, x, c):
    return (37 * x + 11 * y + 85 * c) % 256


def gray(y, x):
    return (37 * x + 11 * y) % 256


def gray16(y, x):
    return (4099 * x + 9157 * y + 12345) % 65536


def path(name):
    return os.path.join(HERE, name)


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def write_png(name, width, height, color_type, bit_depth, rows, interlace=0):
    """rows: list of raw scanline bytes (no filter byte); Adam7 handled for interlace=1."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    bpp = channels * bit_depth // 8
    raw = b""
    if interlace == 0:
        for row in rows:
            raw += b"\x00" + row
    else:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        for x0, y0, dx, dy in passes:
            xs = list(range(x0, width, dx))
            if not xs:
                continue
            for y in range(y0, height, dy):
                raw += b"\x00" + b"".join(rows[y][x * bpp:(x + 1) * bpp] for x in xs)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    with open(path(name), "wb") as f:
        f.write(data)


def main():
    rgb_image = Image.new("RGB", (W, H))
    rgb_image.putdata([tuple(rgb(y, x, c) for c in range(3)) for y in range(H) for x in range(W)])
    rgb_image.save(path("rgb.png"))

    rgba = Image.new("RGBA", (W, H))
    rgba.putdata([tuple(rgb(y, x, c) for c in range(3)) + ((x * 40) % 256,) for y in range(H) for x in range(W)])
    rgba.save(path("rgba.png"))

    gray_image = Image.new("L", (W, H))
    gray_image.putdata([gray(y, x) for y in range(H) for x in range(W)])
    gray_image.save(path("gray.png"))

    gray_alpha = Image.new("LA", (W, H))
    gray_alpha.putdata([(gray(y, x), 255 - 30 * y) for y in range(H) for x in range(W)])
    gray_alpha.save(path("gray_alpha.png"))

    # 16-bit gray, written by hand (PIL's I;16 writing varies between versions).
    write_png(
        "gray16.png", W, H, 0, 16,
        [b"".join(struct.pack(">H", gray16(y, x)) for x in range(W)) for y in range(H)])

    bits = Image.new("1", (W, H))
    bits.putdata([255 * ((x + y) % 2) for y in range(H) for x in range(W)])
    bits.save(path("gray1.png"))

    palette = Image.new("P", (W, H))
    palette.putpalette([v for colour in PALETTE for v in colour])
    palette.putdata([(x + 2 * y) % 5 for y in range(H) for x in range(W)])
    palette.save(path("palette.png"))  # PIL writes 4-bit indices for a 5-colour palette
    palette.save(path("palette8.png"), bits=8)

    # 16-bit RGB (value * 257 scales back to the 8-bit pattern exactly) and Adam7 interlaced RGB.
    write_png(
        "rgb16.png", W, H, 2, 16,
        [b"".join(struct.pack(">H", rgb(y, x, c) * 257) for x in range(W) for c in range(3)) for y in range(H)])
    write_png(
        "interlaced.png", W, H, 2, 8,
        [bytes(rgb(y, x, c) for x in range(W) for c in range(3)) for y in range(H)], interlace=1)

    # JPEGs of a smooth 16 x 12 image, with PIL's decoding of each as raw RGB.
    jw, jh = 16, 12
    smooth = Image.new("RGB", (jw, jh))
    smooth.putdata([(10 * x + 40, 12 * y + 30, 200 - 5 * x - 4 * y) for y in range(jh) for x in range(jw)])
    smooth.save(path("photo.jpg"), quality=90)
    smooth.save(path("progressive.jpg"), quality=90, progressive=True)
    smooth.convert("L").save(path("gray.jpg"), quality=90)
    smooth.convert("CMYK").save(path("cmyk.jpg"), quality=90)
    for name in ["photo", "progressive", "gray", "cmyk"]:
        with Image.open(path(name + ".jpg")) as decoded:
            with open(path(name + ".rgb"), "wb") as f:
                f.write(decoded.convert("RGB").tobytes())


if __name__ == "__main__":
    main()
