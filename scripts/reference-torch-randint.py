#!/usr/bin/python3
"""Golden fixtures for the torch-compatible CPU randint (main/engine/random/torch-randn.ts).

Each case is one torch.Generator('cpu').manual_seed(seed) and a list of calls on it, in order, so the
fixtures pin both randint's own draws (32-bit below a range of 2^32, 64-bit from there, negative lows)
and how it interleaves with randn (the vectorised fill, and the scalar path's cached normal, which
randint must leave alone). Each call's result is one .npy; manifest.json lists cases, calls and versions.

Made with Debian 12's python3-torch 1.13.1 (the parity kits' torch) and python3-numpy 1.24.2:
  apt-get install --no-install-recommends python3-torch
  /usr/bin/python3 scripts/reference-torch-randint.py        # writes test/fixtures/torch-randint/
"""
import hashlib
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test/fixtures/torch-randint")

# name -> (seed, [("randint", low, high, shape) | ("randn", shape)])
CASES = {
    "timesteps": (1234, [("randint", 0, 1000, [3]), ("randint", 0, 1000, [3])]),
    "small-range": (0, [("randint", -5, 3, [2, 3])]),
    "range-below-2-32": (7, [("randint", 0, 2**32 - 1, [5])]),
    "range-2-32": (7, [("randint", 0, 2**32, [5])]),
    "wide-negative": (2**33 + 5, [("randint", -(2**62), 2**62, [4]), ("randint", -(2**63), 2**63 - 1, [3])]),
    "interleaved": (
        42,
        [
            ("randn", [3]),
            ("randint", 0, 10, [4]),
            ("randn", [1]),
            ("randn", [2, 10]),
            ("randint", 0, 1000, [3]),
            ("randn", [16]),
            ("randint", 100, 2**40, [2]),
        ],
    ),
}


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    cases = {}
    for name, (seed, calls) in CASES.items():
        generator = torch.Generator("cpu").manual_seed(seed)
        entries = []
        for index, call in enumerate(calls):
            if call[0] == "randint":
                _, low, high, shape = call
                value = torch.randint(low, high, shape, generator=generator)
                text = f"torch.randint({low}, {high}, {tuple(shape)}, generator=g)"
            else:
                _, shape = call
                value = torch.randn(shape, generator=generator)
                text = f"torch.randn({tuple(shape)}, generator=g)"
            file = f"{name}-{index}.npy"
            np.save(os.path.join(OUT, file), value.numpy())
            entries.append({"file": file, "call": text, "dtype": str(value.numpy().dtype), "shape": list(shape), "sha256": sha256(os.path.join(OUT, file))})
        cases[name] = {"seed": seed, "generator": "torch.Generator('cpu').manual_seed(seed)", "calls": entries}
    manifest = {
        "purpose": "torch CPU randint (and randn between) from one generator per case; made by scripts/reference-torch-randint.py",
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__},
        "cases": cases,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
