"""Offline: writes the JPEGs that check partial (region) JPEG decoding, Tests/MassImageTests/images/region-*.jpg.

Each is a piece of a fixture photo at an odd size, saved by Pillow with one chroma subsampling (4:2:0, 4:2:2,
4:4:4), baseline or progressive, portrait or landscape. The test needs no expected output: a region decode
must give the bytes of a full decode. Run with any Python that has Pillow:

  python3 scripts/make-jpeg-crops.py ../shared/fixtures/image/coffee.png
"""
import sys
from pathlib import Path

from PIL import Image

out = Path(__file__).resolve().parents[1] / "Tests" / "MassImageTests" / "images"
src = Image.open(sys.argv[1]).convert("RGB")
cases = [
    ("region-420", (301, 203), 2, False),
    ("region-422", (259, 347), 1, False),
    ("region-444", (277, 199), 0, False),
    ("region-420-progressive", (203, 289), 2, True),
]
for name, size, subsampling, progressive in cases:
    im = src.crop((13, 7, 13 + min(size[0], src.width - 13), 7 + min(size[1], src.height - 7))).resize(size)
    im.save(out / f"{name}.jpg", quality=55, subsampling=subsampling, progressive=progressive)
    print(name, (out / f"{name}.jpg").stat().st_size, "bytes")
