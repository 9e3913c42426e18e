#!/usr/bin/env python3
"""PyTorch side of the encoder benchmark in BENCHMARKS.md: sentence-transformers on the same texts
and threads as `vital encode`.

    python tools/encoder_bench.py texts --qa50 ../shared/fixtures/llava_med_qa50.jsonl --out texts.jsonl
    python tools/encoder_bench.py run --encoder DIR --threads 2 --batch-size 32 texts.jsonl
    python tools/encoder_bench.py compare --vital target/release/vital --encoder DIR --rounds 3 texts.jsonl

`texts` writes every distinct question, answer and caption of a LLaVA-Med file as JSON Lines
(vital encode's input). `run` prints texts/s and tokens/s (tokens: [CLS] and [SEP] included,
after truncation, as vital counts them), model loading excluded, tokenization included.
`compare` alternates `vital encode` and PyTorch on the same texts and threads, round by round, so
both see the same machine load, and reports wall and CPU seconds of each (CPU: all threads of the
process; on a shared machine it is the steadier of the two) and the medians' ratios.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time


def texts(args):
    seen, out = set(), []
    with open(args.qa50, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            for text in (
                record.get("text", "").replace("<image>", "").strip(),
                record.get("gpt4_answer", ""),
                record.get("fig_caption", ""),
            ):
                if text and text not in seen:
                    seen.add(text)
                    out.append(text)
    with open(args.out, "w", encoding="utf-8") as f:
        for text in out:
            f.write(json.dumps(text, ensure_ascii=False) + "\n")
    print(f"wrote {len(out)} texts to {args.out}", file=sys.stderr)


def run(args):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    with open(args.file, encoding="utf-8") as f:
        data = [json.loads(line) for line in f]
    model = SentenceTransformer(args.encoder, device=args.device)
    tokens = sum(len(model.tokenize([t])["input_ids"][0]) for t in data)
    model.encode(data[: args.batch_size], batch_size=args.batch_size)  # warm-up
    if args.device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    model.encode(data, batch_size=args.batch_size, convert_to_numpy=True)
    if args.device == "cuda":
        torch.cuda.synchronize()
    secs = time.perf_counter() - started
    print(
        f"pytorch {torch.__version__} ({args.device}, {args.threads} threads): {len(data)} texts "
        f"({tokens} tokens) in {secs:.2f}s: {len(data) / secs:.1f} texts/s, {tokens / secs:.0f} tokens/s"
    )


def torch_encode(model, data, batch_size, device):
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    model.encode(data, batch_size=batch_size, convert_to_numpy=True)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def vital_encode(args):
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    done = subprocess.run(
        [args.vital, "encode", "--encoder", args.encoder, "--batch-size", str(args.batch_size),
         "--backend", args.backend, args.file],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True,
    )
    found = re.search(r"in ([0-9.]+)s \(CPU ([0-9.]+)s\)", done.stderr)
    if not found:
        sys.exit(f"no timing line in vital's output:\n{done.stderr}")
    return float(found.group(1)), float(found.group(2))


def compare(args):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    with open(args.file, encoding="utf-8") as f:
        data = [json.loads(line) for line in f]
    model = SentenceTransformer(args.encoder, device=args.device)
    tokens = sum(len(model.tokenize([t])["input_ids"][0]) for t in data)
    model.encode(data[: args.batch_size], batch_size=args.batch_size)  # warm-up
    runs = {"vital": [], "torch": []}
    for r in range(args.rounds):
        runs["vital"].append(vital_encode(args))
        runs["torch"].append(torch_encode(model, data, args.batch_size, args.device))
        print(f"round {r + 1}: vital {runs['vital'][-1]}, torch {runs['torch'][-1]} (wall, CPU s)",
              file=sys.stderr)
    print(f"{len(data)} texts, {tokens} tokens, batch {args.batch_size}, {args.threads} threads, "
          f"{args.rounds} rounds alternating; medians:")
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in runs.items()}
    for name, (wall, cpu) in med.items():
        print(f"  {name:5}: wall {wall:.2f}s ({len(data) / wall:.1f} texts/s), CPU {cpu:.2f}s "
              f"({len(data) / cpu:.1f} texts per CPU-s)")
    print(f"  vital / torch speed: wall {med['torch'][0] / med['vital'][0]:.2f}x, "
          f"CPU {med['torch'][1] / med['vital'][1]:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("texts")
    t.add_argument("--qa50", required=True)
    t.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--encoder", required=True)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--batch-size", type=int, default=32)
    r.add_argument("--device", default="cpu")
    r.add_argument("file")
    c = sub.add_parser("compare")
    c.add_argument("--vital", required=True, help="the vital binary (a release build)")
    c.add_argument("--encoder", required=True)
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--batch-size", type=int, default=32)
    c.add_argument("--rounds", type=int, default=3)
    c.add_argument("--device", default="cpu")
    c.add_argument("--backend", default="cpu", help="vital's --backend")
    c.add_argument("file")
    args = parser.parse_args()
    {"texts": texts, "run": run, "compare": compare}[args.command](args)


if __name__ == "__main__":
    main()
