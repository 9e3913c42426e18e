#!/usr/bin/env python3
"""PyTorch side of tools/gpu_check.sh's encoder rows: a BERT-family sentence encoder (the model
folder's safetensors, mean pooling, L2 norm: all-MiniLM-L6-v2's recipe) on the same texts and batch
sizes as `vital encode`, on a GPU or the CPU. Needs only torch (no transformers, no tokenizers):

    python3 tools/gpu_bench_torch.py texts --model DIR --count 4096 --out texts.jsonl
    python3 tools/gpu_bench_torch.py encode --model DIR --device cuda --batch-size 64 texts.jsonl

`texts` writes texts made of whole words of the model's vocabulary (each one WordPiece token,
lower case), 40-110 words each, about a LLaVA-Med answer's length, so this script can tokenize them
by lookup exactly as WordPiece would. `encode` prints `texts/s` and the peak GPU memory, loading
excluded, tokenization, the forward pass and the copy back to the host included (as `vital
encode` counts them).
"""

import argparse
import json
import math
import os
import random
import struct
import sys
import time


def vocab(model):
    with open(os.path.join(model, "tokenizer.json"), encoding="utf-8") as f:
        return json.load(f)["model"]["vocab"]


def texts(args):
    words = sorted(w for w in vocab(args.model) if w.isalpha() and w.islower() and len(w) > 2)
    rng = random.Random(11)
    with open(args.out, "w", encoding="utf-8") as f:
        for _ in range(args.count):
            line = " ".join(rng.choice(words) for _ in range(rng.randint(40, 110)))
            f.write(json.dumps(line) + "\n")


def load_weights(model, torch, device):
    path = os.path.join(model, "model.safetensors")
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", f"{name}: {info['dtype']}"
        start, end = info["data_offsets"]
        tensor = torch.frombuffer(bytearray(data[start:end]), dtype=torch.float32)
        out[name.removeprefix("bert.")] = tensor.reshape(info["shape"]).to(device)
    return out


def encode(args):
    import torch
    import torch.nn.functional as F

    config = json.load(open(os.path.join(args.model, "config.json")))
    heads, layers = config["num_attention_heads"], config["num_hidden_layers"]
    eps = config.get("layer_norm_eps", 1e-12)
    device = torch.device(args.device)
    w = load_weights(args.model, torch, device)
    table = vocab(args.model)
    cls, sep = table["[CLS]"], table["[SEP]"]
    lines = [json.loads(l) for l in open(args.texts, encoding="utf-8")]

    def ln(x, p):
        return F.layer_norm(x, x.shape[-1:], w[p + ".weight"], w[p + ".bias"], eps)

    def lin(x, p):
        return F.linear(x, w[p + ".weight"], w[p + ".bias"])

    def forward(ids, mask):
        n, t = ids.shape
        pos = torch.arange(t, device=device).unsqueeze(0)
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][pos]
        x = ln(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
        bias = (1.0 - mask[:, None, None, :]) * torch.finfo(x.dtype).min
        d = x.shape[-1] // heads
        for i in range(layers):
            p = f"encoder.layer.{i}."
            q, k, v = (
                lin(x, p + f"attention.self.{m}").view(n, t, heads, d).transpose(1, 2)
                for m in ("query", "key", "value")
            )
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias, dim=-1) @ v
            x = ln(x + lin(a.transpose(1, 2).reshape(n, t, -1), p + "attention.output.dense"),
                   p + "attention.output.LayerNorm")
            h = F.gelu(lin(x, p + "intermediate.dense"))
            x = ln(x + lin(h, p + "output.dense"), p + "output.LayerNorm")
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return F.normalize(pooled, dim=-1)

    limit = config.get("max_position_embeddings", 512)

    def run(texts):
        done = 0
        # Longest first, as vital batches them.
        order = sorted(texts, key=len, reverse=True)
        for b in range(0, len(order), args.batch_size):
            batch = [[cls] + [table[t] for t in s.split()][: limit - 2] + [sep] for s in order[b : b + args.batch_size]]
            width = max(map(len, batch))
            ids = torch.tensor([s + [0] * (width - len(s)) for s in batch], device=device)
            mask = torch.tensor([[1.0] * len(s) + [0.0] * (width - len(s)) for s in batch], device=device)
            with torch.inference_mode():
                forward(ids, mask).cpu()
            done += len(batch)
        return done

    run(lines[: args.batch_size])  # warm-up: kernels chosen, memory pools filled
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    start = time.perf_counter()
    n = run(lines)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else float("nan")
    print(f"torch {args.device} batch {args.batch_size}: {n} texts in {seconds:.2f}s: {n / seconds:.1f} texts/s, peak {peak:.0f} MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("texts")
    t.add_argument("--model", required=True)
    t.add_argument("--count", type=int, default=4096)
    t.add_argument("--out", required=True)
    e = sub.add_parser("encode")
    e.add_argument("--model", required=True)
    e.add_argument("--device", default="cuda")
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("texts")
    args = parser.parse_args()
    {"texts": texts, "encode": encode}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
