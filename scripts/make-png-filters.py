"""Offline: writes PNGs that exercise every row filter for the direct PNG decoder,
Tests/MassImageTests/images/filters-rgb.png and filters-rgba.png.

Rows cycle through the five filter types (None, Sub, Up, Average, Paeth) and the image data is split over
three IDAT chunks. Pixels come from a fixture photo. The test needs no expected output: the direct decoder
must give libpng's bytes. Run with any Python that has Pillow:

  python3 scripts/make-png-filters.py ../shared/fixtures/image/chelsea.png
"""
import struct
import sys
import zlib
from pathlib import Path

from PIL import Image


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def write(path, image, color, bpp):
    w, h = image.size
    pixels = image.tobytes()
    stride = w * bpp
    prior = bytes(stride)
    raw = bytearray()
    for y in range(h):
        row = pixels[y * stride:(y + 1) * stride]
        kind = y % 5
        out = bytearray()
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prior[i]
            c = prior[i - bpp] if i >= bpp else 0
            predictor = [0, a, b, (a + b) >> 1, paeth(a, b, c)][kind]
            out.append((x - predictor) & 0xFF)
        raw += bytes([kind]) + out
        prior = row
    stream = zlib.compress(bytes(raw), 9)
    third = len(stream) // 3
    parts = [stream[:third], stream[third:2 * third], stream[2 * third:]]
    header = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"tEXt", b"Comment\x00filters")
    data += b"".join(chunk(b"IDAT", p) for p in parts) + chunk(b"IEND", b"")
    path.write_bytes(data)
    print(path.name, len(data), "bytes")


out = Path(__file__).resolve().parents[1] / "Tests" / "MassImageTests" / "images"
photo = Image.open(sys.argv[1]).convert("RGB").crop((100, 60, 161, 101))  # 61 x 41
write(out / "filters-rgb.png", photo, 2, 3)
rgba = photo.copy()
rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
write(out / "filters-rgba.png", rgba, 6, 4)
