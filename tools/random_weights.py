#!/usr/bin/env python3
"""A model folder of a real model's shape with random weights, for speed measurements on a machine
the real weights cannot reach (a lent GPU machine takes 64 MiB at most, MiniLM's weights are 87 MiB;
weights do not change the speed).

    python3 tools/random_weights.py template ~/.cache/vital-models/all-MiniLM-L6-v2 gpu-kit/minilm-shape
    python3 tools/random_weights.py fill gpu-kit/minilm-shape /tmp/minilm-random

`template` copies every small file of the folder (config, tokenizer, pooling) and writes
`weights.json`, the safetensors header of its weights (names, dtypes, shapes: a few KB). `fill`
writes `model.safetensors` with those tensors, float32, drawn from N(0, 0.02²) (LayerNorm weights 1,
biases 0), plus the small files. Standard library only.
"""

import argparse
import array
import json
import os
import random
import shutil
import struct
import sys

WEIGHTS = "model.safetensors"
HEADER = "weights.json"


def template(args):
    with open(os.path.join(args.src, WEIGHTS), "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    shapes = {name: info["shape"] for name, info in header.items()}
    os.makedirs(args.out, exist_ok=True)
    for root, _, files in os.walk(args.src):
        for name in files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, args.src)
            if rel == WEIGHTS or os.path.getsize(path) > 4 << 20:
                continue
            os.makedirs(os.path.dirname(os.path.join(args.out, rel)), exist_ok=True)
            shutil.copyfile(path, os.path.join(args.out, rel))
    with open(os.path.join(args.out, HEADER), "w") as f:
        json.dump(shapes, f, indent=1, sort_keys=True)
    print(f"{args.out}: {len(shapes)} tensors, {sum(count(s) for s in shapes.values()):,} weights")


def count(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def fill(args):
    with open(os.path.join(args.template, HEADER)) as f:
        shapes = json.load(f)
    rng = random.Random(7)
    # One block of draws, repeated: fast in plain Python, and plenty random for a timing.
    block = array.array("f", (rng.gauss(0.0, 0.02) for _ in range(1 << 20)))
    header, offset, names = {}, 0, sorted(shapes)
    for name in names:
        n = count(shapes[name])
        header[name] = {"dtype": "F32", "shape": shapes[name], "data_offsets": [offset, offset + 4 * n]}
        offset += 4 * n
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    os.makedirs(args.out, exist_ok=True)
    for root, _, files in os.walk(args.template):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), args.template)
            if rel != HEADER:
                os.makedirs(os.path.dirname(os.path.join(args.out, rel)), exist_ok=True)
                shutil.copyfile(os.path.join(root, name), os.path.join(args.out, rel))
    with open(os.path.join(args.out, WEIGHTS), "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for name in names:
            n = count(shapes[name])
            if "LayerNorm.weight" in name or name.endswith("ln.weight"):
                f.write(array.array("f", [1.0]) * n)
            elif name.endswith("bias"):
                f.write(array.array("f", [0.0]) * n)
            else:
                whole, rest = divmod(n, len(block))
                for _ in range(whole):
                    f.write(block)
                f.write(block[:rest])
    print(f"{args.out}: {len(names)} tensors, {offset / 2**20:.0f} MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("template")
    t.add_argument("src")
    t.add_argument("out")
    f = sub.add_parser("fill")
    f.add_argument("template")
    f.add_argument("out")
    args = parser.parse_args()
    {"template": template, "fill": fill}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
