#!/usr/bin/python3
"""Golden fixtures for the fine-tune's photo preprocessing (main/engine/imaging/training-photos.ts).

LAVIS's BlipDiffusionTargetImageProcessor is torchvision's Resize(R, BICUBIC) + CenterCrop(R) on a PIL
image. torchvision is not in Debian 12, so its two rules are written out here with PIL alone (torchvision
0.15, transforms/functional.py):
  Resize(R):     short side -> R, long side -> int(R * long / short), PIL Image.resize(..., BICUBIC)
  CenterCrop(R): top = int(round((h - R) / 2.0)), left = int(round((w - R) / 2.0)), PIL crop
Each case is written as uint8 [R, R, 3] .npy; manifest.json records inputs, outputs, hashes and versions.

Made with Debian 12's python3-pil 9.4.0 and python3-numpy 1.24.2 (the fine-tune kit's versions):
  apt-get install python3-pil python3-numpy
  /usr/bin/python3 scripts/reference-training-photos.py        # writes test/fixtures/training-photos/
"""
import hashlib
import json
import os
import sys

import numpy as np
import PIL
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test/fixtures/training-photos")

# (input relative to the repo, resolution): square JPEG photos (resize only, integer and fractional
# scales), a portrait whose crop offset is an exact half (75 - 50 = 25 -> round(12.5) = 12), a
# landscape RGBA PNG with a truncated long side (33 * 192 / 160 = 39.6 -> 39) and one with a half
# (35 * 192 / 160 = 42, (42 - 35) / 2 = 3.5 -> 4).
CASES = [
    ("test/fixtures/dreambench/dog/00.jpg", 64),
    ("test/fixtures/dreambench/dog/00.jpg", 50),
    ("test/fixtures/dreambench/cat/01.jpg", 37),
    ("test/fixtures/parity/inputs/control_image.png", 50),
    ("test/fixtures/parity/inputs/reference_image.png", 33),
    ("test/fixtures/parity/inputs/reference_image.png", 35),
]


def square(image, size):
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    new_w, new_h = (size, new_long) if w <= h else (new_long, size)
    resized = image.resize((new_w, new_h), Image.BICUBIC)
    top = int(round((new_h - size) / 2.0))
    left = int(round((new_w - size) / 2.0))
    return resized.crop((left, top, left + size, top + size))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {}
    for source, size in CASES:
        stem = os.path.splitext(os.path.basename(source))[0]
        name = f"{os.path.basename(os.path.dirname(source))}-{stem}-{size}.npy"
        image = Image.open(os.path.join(ROOT, source)).convert("RGB")
        pixels = np.asarray(square(image, size), dtype=np.uint8)
        np.save(os.path.join(OUT, name), pixels)
        files[name] = {
            "source": source,
            "source_sha256": sha256(os.path.join(ROOT, source)),
            "source_size": list(image.size),
            "resolution": size,
            "shape": list(pixels.shape),
            "dtype": "uint8",
            "call": f"square(Image.open(source).convert('RGB'), {size}): Resize({size}, BICUBIC) + CenterCrop({size})",
            "sha256": sha256(os.path.join(OUT, name)),
        }
    manifest = {
        "purpose": "PIL references for the fine-tune's photo preprocessing; made by scripts/reference-training-photos.py",
        "versions": {"python": sys.version.split()[0], "pillow": PIL.__version__, "numpy": np.__version__},
        "files": files,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
