#!/usr/bin/env python3
"""PyTorch side of the encoder benchmark in BENCHMARKS.md: sentence-transformers on the same texts
and threads as `vital encode`.

    python tools/encoder_bench.py texts --qa50 ../shared/fixtures/llava_med_qa50.jsonl --out texts.jsonl
    python tools/encoder_bench.py run --encoder DIR --threads 2 --batch-size 32 texts.jsonl

`texts` writes every distinct question, answer and caption of a LLaVA-Med file as JSON Lines
(vital encode's input). `run` prints texts/s and tokens/s (tokens: [CLS] and [SEP] included,
after truncation, as vital counts them), model loading excluded, tokenization included.
"""

import argparse
import json
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
    args = parser.parse_args()
    {"texts": texts, "run": run}[args.command](args)


if __name__ == "__main__":
    main()
