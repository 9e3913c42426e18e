#!/usr/bin/env python3
"""PyTorch side of the open_clip image benchmark in BENCHMARKS.md: open_clip on the same images,
threads and batch size as `vital encode --images`.

    python tools/open_clip_bench.py model --timm vit_base_patch16_224 --out /tmp/vitb
    python tools/open_clip_bench.py images --src ../shared/fixtures/images --count 64 --out images.jsonl
    python tools/open_clip_bench.py run --model /tmp/vitb --threads 2 --batch-size 16 images.jsonl
    vital encode --encoder /tmp/vitb --images --batch-size 16 images.jsonl > /dev/null

`model` writes a randomly initialised open_clip folder of BiomedCLIP's layout with the named timm
image tower (weights do not change the speed); `images` lists image files, repeating the given
ones up to `--count`; `run` prints images/s with model loading excluded and decoding, the eval
transform and the forward pass included, as `vital encode --images` counts them.
"""

import argparse
import json
import os
import sys
import time


def model(args):
    import open_clip
    import torch
    import transformers

    os.makedirs(os.path.join(args.out, "bench", "bert"), exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [chr(c) for c in range(97, 123)]
    with open(os.path.join(args.out, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    transformers.BertTokenizer(vocab=os.path.join(args.out, "vocab.txt")).save_pretrained(args.out)
    bert = {
        "model_type": "bert", "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 512, "max_position_embeddings": 512, "vocab_size": len(vocab),
        "type_vocab_size": 2, "pad_token_id": 0,
    }
    with open(os.path.join(args.out, "bench", "bert", "config.json"), "w") as f:
        json.dump(bert, f)
    config = {
        "model_cfg": {
            "embed_dim": 512,
            "vision_cfg": {"timm_model_name": args.timm, "timm_pool": "", "timm_proj": "linear",
                           "image_size": 224},
            "text_cfg": {"hf_model_name": "bench/bert", "hf_tokenizer_name": "bench/bert",
                         "hf_proj_type": "mlp", "hf_pooler_type": "cls_last_hidden_state_pooler",
                         "context_length": 256},
        },
        "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                           "std": [0.26862954, 0.26130258, 0.27577711]},
    }
    with open(os.path.join(args.out, "open_clip_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    os.chdir(args.out)
    cfg = json.loads(json.dumps(config["model_cfg"]))
    cfg["text_cfg"]["hf_model_pretrained"] = False
    clip = open_clip.CustomTextCLIP(**cfg)
    torch.save(clip.state_dict(), "open_clip_pytorch_model.bin")
    print(f"wrote {args.out}", file=sys.stderr)


def images(args):
    files = sorted(os.path.join(args.src, n) for n in os.listdir(args.src))
    with open(args.out, "w") as f:
        for i in range(args.count):
            f.write(json.dumps(os.path.abspath(files[i % len(files)])) + "\n")
    print(f"wrote {args.count} image paths to {args.out}", file=sys.stderr)


def run(args):
    import open_clip
    import torch
    from PIL import Image

    torch.set_num_threads(args.threads)
    here = os.getcwd()
    with open(args.file) as f:
        paths = [os.path.join(here, json.loads(line)) for line in f if line.strip()]
    os.chdir(args.model)
    clip, preprocess = open_clip.create_model_from_pretrained("local-dir:.", device=args.device)
    clip.eval()
    # One warm-up batch, then the timed run.
    with torch.no_grad():
        clip.encode_image(torch.stack([preprocess(Image.open(paths[0]))]).to(args.device))
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(paths), args.batch_size):
            batch = torch.stack([preprocess(Image.open(p)) for p in paths[i : i + args.batch_size]])
            out = clip.encode_image(batch.to(args.device), normalize=True)
            out.cpu()
    secs = time.perf_counter() - start
    print(
        f"open_clip {torch.__version__} {args.device} threads={args.threads} "
        f"batch={args.batch_size}: {len(paths)} images in {secs:.2f}s = {len(paths) / secs:.2f} images/s"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("model")
    p.add_argument("--timm", default="vit_base_patch16_224")
    p.add_argument("--out", required=True)
    p = sub.add_parser("images")
    p.add_argument("--src", required=True)
    p.add_argument("--count", type=int, default=64)
    p.add_argument("--out", required=True)
    p = sub.add_parser("run")
    p.add_argument("--model", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("file")
    args = parser.parse_args()
    {"model": model, "images": images, "run": run}[args.command](args)


if __name__ == "__main__":
    main()
