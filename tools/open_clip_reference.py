#!/usr/bin/env python3
"""Reference embeddings for vital's open_clip (BiomedCLIP-style) tests, computed by open_clip itself.

Not needed in CI: the outputs are committed. Regenerate with

    python -m venv venv && venv/bin/pip install open_clip_torch timm transformers
    venv/bin/python tools/open_clip_reference.py

It writes tests/fixtures/open_clip/:
  * tiny-biomedclip/: a randomly initialised open_clip model of exactly BiomedCLIP's shape, as a hub
    folder: open_clip_config.json (timm vit_tiny_patch16_224, timm_pool "", timm_proj "linear";
    a 2-layer BERT text tower, hf_pooler_type cls_last_hidden_state_pooler, hf_proj_type mlp,
    BiomedCLIP's preprocess_cfg), open_clip_pytorch_model.bin, tokenizer.json + vocab.txt +
    tokenizer_config.json, and the text tower's config.json in the `hf_model_name` subfolder.
    Weights are random multiples of powers of two (exact in float16, stored as float16 to keep the
    folder small); open_clip computes in float32 from exactly those values.
  * images/: synthetic figures written here (RGB JPEG, RGBA PNG, grayscale PNG, CMYK JPEG, a tiny
    PNG that is upscaled), and crops/: the 224x224 RGB image open_clip's eval transform makes of
    each PNG before ToTensor (the Rust preprocessing must reproduce these pixels).
  * reference.json: token ids and open_clip's L2-normalised embeddings of the texts and images;
    and, when ../shared/fixtures/images exists, of those real figures keyed by their SHA-256 (the
    Rust test checks them only when that folder is present).

The model is loaded back through `open_clip.create_model_from_pretrained('local-dir:…')` and
`open_clip.get_tokenizer('local-dir:…')`, as a user would load BiomedCLIP, before any reference is
computed.
"""

import hashlib
import json
import os
import platform
import random

import numpy as np
import open_clip
import timm
import torch
import transformers
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "open_clip")
MODEL = os.path.join(OUT, "tiny-biomedclip")
HF_NAME = "vital-test/tiny-biomedbert"
REAL_IMAGES = os.path.join(ROOT, "..", "shared", "fixtures", "images")

# BiomedCLIP's open_clip_config.json, with the tiny towers.
OPEN_CLIP_CONFIG = {
    "model_cfg": {
        "embed_dim": 512,
        "vision_cfg": {
            "timm_model_name": "vit_tiny_patch16_224",
            "timm_model_pretrained": False,
            "timm_pool": "",
            "timm_proj": "linear",
            "image_size": 224,
        },
        "text_cfg": {
            "hf_model_name": HF_NAME,
            "hf_tokenizer_name": HF_NAME,
            "hf_proj_type": "mlp",
            "hf_pooler_type": "cls_last_hidden_state_pooler",
            "context_length": 256,
        },
    },
    "preprocess_cfg": {
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711],
    },
}

BERT_CONFIG = {
    "architectures": ["BertForMaskedLM"],
    "model_type": "bert",
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,  # = 128 / 64, so the shape-inferred tower is the same model
    "intermediate_size": 512,
    "hidden_act": "gelu",
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "vocab_size": None,  # set from the vocabulary
}

LONG = " ".join(
    f"Figure {i}: the axial CT of lesion {i} shows a hypodense mass with rim enhancement."
    for i in range(30)
)

TEXTS = [
    "An axial CT of the abdomen shows a hypodense liver lesion.",
    "A chest radiograph with a right lower lobe consolidation.",
    "Hematoxylin and eosin staining reveals atypical cells with prominent nucleoli.",
    "  What   abnormality\tis seen\n\nin the left ventricle?  ",
    "MRI T2 &amp; FLAIR: no acute infarct &lt;2 mm&gt;.",
    "Les résultats montrent une hépatomégalie modérée.",
    "Ki-67 (×400) index 35%; CD34+ / CD117+ spindle cells → GIST.",
    "",
    "BILATERAL PLEURAL EFFUSIONS ARE PRESENT.",
    LONG,
]


def build_vocab():
    """Special tokens, characters (alone and as ##suffixes), then the texts' lower-cased words."""
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789") | set(".,;:!?()[]/+-%&<>→×'\"") )
    tokenizer = transformers.BasicTokenizer(do_lower_case=True)
    words = sorted({w for t in TEXTS for w in tokenizer.tokenize(t)} - set(chars))
    return special + chars + ["##" + c for c in chars if c.isalnum()] + words


def quantised_(tensor, scale, rng):
    """Random multiples of scale/8 in [-scale, scale]: exact in float16."""
    values = rng.integers(-8, 9, size=tuple(tensor.shape)).astype(np.float32) * (scale / 8)
    tensor.copy_(torch.from_numpy(values))


def randomise(model, seed):
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "logit_scale":
                continue
            if p.ndim == 1 and ("norm" in name.lower() and name.endswith("weight")):
                quantised_(p, 0.25, rng)
                p.add_(1.0)
            elif p.ndim == 1:
                quantised_(p, 0.125, rng)
            else:
                fan_in = int(np.prod(p.shape[1:])) if p.ndim > 1 else p.shape[-1]
                if "embeddings" in name or "cls_token" in name:
                    fan_in = 1  # token embeddings are the signal: unit scale
                if "pos_embed" in name or "position_embeddings" in name:
                    fan_in = 64  # small next to the content, so images differ
                scale = 2.0 ** round(np.log2(1.5 / np.sqrt(fan_in)))
                if "attention.self.value" in name:
                    # Untrained, [CLS] would mostly see itself and every text would pool to
                    # nearly the same vector: let what it attends to dominate its residual.
                    scale *= 8
                quantised_(p, scale, rng)


def write_model():
    os.makedirs(os.path.join(MODEL, HF_NAME), exist_ok=True)
    vocab = build_vocab()
    with open(os.path.join(MODEL, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    tok = transformers.BertTokenizer(vocab=os.path.join(MODEL, "vocab.txt"), do_lower_case=True)
    tok.model_max_length = 512
    tok.save_pretrained(MODEL)
    config = dict(BERT_CONFIG, vocab_size=len(vocab))
    with open(os.path.join(MODEL, HF_NAME, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(MODEL, "open_clip_config.json"), "w") as f:
        json.dump(OPEN_CLIP_CONFIG, f, indent=2)

    # Build the towers the way open_clip does (the text config is read from the subfolder).
    cfg = json.loads(json.dumps(OPEN_CLIP_CONFIG["model_cfg"]))
    cfg["text_cfg"]["hf_model_pretrained"] = False
    os.chdir(MODEL)  # hf_model_name is a path relative to the model folder
    model = open_clip.CustomTextCLIP(**cfg)
    randomise(model, seed=12)
    state = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save(state, os.path.join(MODEL, "open_clip_pytorch_model.bin"))
    return vocab


def write_images():
    """Synthetic figures: smooth shapes, stripes and noise, in the modes figures come in."""
    os.makedirs(os.path.join(OUT, "images"), exist_ok=True)
    rng = np.random.default_rng(7)

    def canvas(h, w, channels):
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        out = np.zeros((h, w, channels), np.float32)
        for c in range(channels):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.2, 0.5) * min(h, w)
            disc = ((x - cx) ** 2 + (y - cy) ** 2 < r**2) * rng.uniform(60, 160)
            stripes = (np.sin(x / rng.uniform(3, 12) + y / rng.uniform(5, 20) + c) > 0.6) * 50
            gradient = (x / w * rng.uniform(-80, 80)) + (y / h * rng.uniform(-80, 80))
            out[..., c] = 90 + disc + stripes + gradient + rng.normal(0, 12, (h, w))
        return np.clip(out, 0, 255).astype(np.uint8)

    files = {}
    Image.fromarray(canvas(380, 300, 3)).save(
        os.path.join(OUT, "images", "portrait_rgb.jpg"), quality=92, subsampling=0
    )
    files["portrait_rgb.jpg"] = "RGB JPEG 300x380"
    rgba = canvas(130, 200, 4)
    rgba[..., 3] = np.clip(np.linspace(0, 255, 200)[None, :] + rng.normal(0, 30, (130, 200)), 0, 255)
    rgba[:20, :20, 3] = 0  # fully transparent corner
    Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, "images", "landscape_rgba.png"))
    files["landscape_rgba.png"] = "RGBA PNG 200x130 (upscaled)"
    Image.fromarray(canvas(240, 262, 1)[..., 0], "L").save(os.path.join(OUT, "images", "gray.png"))
    files["gray.png"] = "grayscale PNG 262x240"
    Image.fromarray(canvas(30, 41, 3)).save(os.path.join(OUT, "images", "tiny.png"))
    files["tiny.png"] = "RGB PNG 41x30 (strong upscale)"
    Image.fromarray(canvas(250, 250, 3)).convert("CMYK").save(
        os.path.join(OUT, "images", "cmyk.jpg"), quality=95
    )
    files["cmyk.jpg"] = "CMYK JPEG 250x250"
    return files


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def rounded(v):
    return [float(f"{x:.7g}") for x in v]


def main():
    torch.manual_seed(0)
    random.seed(0)
    write_model()
    image_files = write_images()

    # Load it back as a user loads BiomedCLIP (hf_model_name resolves to the subfolder).
    os.chdir(MODEL)
    model, preprocess = open_clip.create_model_from_pretrained("local-dir:.")
    tokenizer = open_clip.get_tokenizer("local-dir:.")
    model.eval()
    print(preprocess)

    ids = tokenizer(TEXTS)
    with torch.no_grad():
        text_vectors = model.encode_text(ids, normalize=True)
    texts = []
    for text, row, vector in zip(TEXTS, ids, text_vectors):
        real = [int(i) for i in row if int(i) != 0]
        texts.append({"text": text, "ids": real, "embedding": rounded(vector.tolist())})

    os.makedirs(os.path.join(OUT, "crops"), exist_ok=True)
    pre_tensor = preprocess.transforms[:-2]  # Resize, CenterCrop, MaybeConvertMode

    def embed(path):
        image = Image.open(path)
        with torch.no_grad():
            v = model.encode_image(preprocess(image).unsqueeze(0), normalize=True)[0]
        return image, rounded(v.tolist())

    images = []
    for name, what in image_files.items():
        path = os.path.join(OUT, "images", name)
        image, vector = embed(path)
        entry = {"file": name, "what": what, "mode": image.mode, "embedding": vector}
        if name.endswith(".png"):
            out = image
            for t in pre_tensor:
                out = t(out)
            crop_name = name.replace(".png", "_crop.png")
            out.save(os.path.join(OUT, "crops", crop_name))
            entry["crop"] = crop_name
        images.append(entry)

    real = []
    if os.path.isdir(REAL_IMAGES):
        for name in sorted(os.listdir(REAL_IMAGES)):
            path = os.path.join(REAL_IMAGES, name)
            image, vector = embed(path)
            real.append({"file": name, "sha256": sha256(path), "mode": image.mode, "embedding": vector})

    # A random model can map every input to nearly the same vector, which would make parity
    # trivial: make sure the references differ.
    all_images = torch.tensor([e["embedding"] for e in images + real])
    sims = all_images @ all_images.T - 2 * torch.eye(len(all_images))
    print("image-image cosines\n", (all_images @ all_images.T).numpy().round(3))
    assert float(sims.max()) < 0.99, "image references too similar"
    # Untrained, the [CLS] state shares a large common part across texts (raw cosines near
    # 0.999); what tells texts apart is the rest, which the Rust test also checks element-wise.
    centred = torch.nn.functional.normalize(text_vectors - text_vectors.mean(0), dim=-1)
    text_m = centred @ centred.T - 2 * torch.eye(len(centred))
    print("text-text cosines after removing the mean\n", (text_m + 2 * torch.eye(len(centred))).numpy().round(3))
    assert float(text_m.max()) < 0.999, "text references too similar"

    reference = {
        "generated_by": "tools/open_clip_reference.py",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "open_clip": open_clip.__version__,
            "timm": timm.__version__,
            "transformers": transformers.__version__,
            "pillow": Image.__version__ if hasattr(Image, "__version__") else __import__("PIL").__version__,
        },
        "context_length": OPEN_CLIP_CONFIG["model_cfg"]["text_cfg"]["context_length"],
        "texts": texts,
        "images": images,
        "real_images": real,
    }
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
