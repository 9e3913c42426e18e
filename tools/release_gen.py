#!/usr/bin/env python3
"""Writes a synthetic, release-shaped LLaVA instruction file for benchmarks (standard library only).

The shape follows the BioMed-VITAL / LLaVA-Med releases (compare ../shared/fixtures/clinician_demos.json):
one JSON array of `{id, image, domain{5 booleans}, conversations[{from, value}], fig_caption, fig_label,
in_text_mention[{tokens, entities[]}]}`, 3–5 question/answer rounds with multi-sentence answers, a
caption and one or two inline mentions, `<image>` in the first question, some non-ASCII text and
escaped characters. The default 210 000 samples come to about 463 MB, ≈2.2 KB per sample like the
real 210K release. Seeded: the same arguments write the same bytes.

    python3 tools/release_gen.py OUT.json [--samples 210000] [--seed 7] [--images DIR --figures N]

With `--images`, the first N samples refer to N distinct figures `fig-<i>.png` in DIR (written by
`tools/figure_gen.py`); the rest refer to images that are absent, as in a release without its figures.
"""

import argparse
import json
import random

DOMAINS = ["chest_xray", "mri", "ct_scan", "histology", "gross"]
MODALITY = {
    "chest_xray": "chest X-ray",
    "mri": "magnetic resonance imaging (MRI)",
    "ct_scan": "computed tomography (CT)",
    "histology": "histopathology (H&E staining)",
    "gross": "gross photography of the specimen",
}
ORGANS = ["lung", "liver", "kidney", "brain", "pancreas", "spleen", "heart", "colon", "breast",
          "thyroid", "prostate", "spine", "knee", "pelvis", "orbit", "mandible", "adrenal gland"]
SIDES = ["right", "left", "bilateral", "anterior", "posterior", "medial", "lateral", "upper", "lower"]
FINDINGS = ["a well-circumscribed hypodense lesion", "a heterogeneous mass with central necrosis",
            "ground-glass opacities", "a multiloculated cystic lesion", "diffuse wall thickening",
            "an enhancing nodule", "perilesional oedema", "a calcified granuloma", "pleural effusion",
            "dilated ducts", "a fluid–fluid level", "cortical thinning", "lymphocytic infiltrates",
            "atypical mitotic figures", "a spiculated margin", "subfalcine herniation",
            "an extradural collection", "fibrotic septa", "a target sign", "air bronchograms"]
SIZES = ["2.3 cm", "4 × 3 cm", "11 mm", "6.5 cm", "8 mm", "15 × 12 mm", "3.1 cm", "200 μm"]
DIAGNOSES = ["metastatic adenocarcinoma", "hepatocellular carcinoma", "a benign haemangioma",
             "tuberculosis", "sarcoidosis", "glioblastoma", "a meningioma", "renal cell carcinoma",
             "an abscess", "lymphoma", "a hydatid cyst", "pulmonary embolism", "Crohn's disease",
             "a schwannoma", "fibroadenoma", "osteosarcoma", "an arteriovenous malformation"]
QUESTIONS = [
    "What imaging modality was used to acquire this image?",
    "Which organ is primarily shown in the figure?",
    "What abnormality can be seen in the {side} {organ}?",
    "How large is the lesion described in the image?",
    "What does the arrow in the figure point to?",
    "Is there any sign of {finding} in this image?",
    "What is the most likely diagnosis based on these findings?",
    "How would you describe the margins of the lesion?",
    "What staining technique appears to have been used?",
    "Which features distinguish this lesion from {diagnosis}?",
    "What could explain the {finding} seen here?",
    "Where exactly is the lesion located relative to the {organ}?",
    "What follow-up would be appropriate for a patient with these findings?",
    "Can you describe the enhancement pattern after contrast?",
]
OPENERS = ["The image shows", "In this figure, there is", "The figure demonstrates",
           "This {modality} image reveals", "Based on the image, there appears to be",
           "The arrow points to", "Looking at the {side} {organ}, one can see"]
FOLLOW = [
    "This finding is consistent with {diagnosis}, although the differential diagnosis also includes "
    "{diagnosis2}.",
    "The lesion measures approximately {size} and shows {finding} at its periphery.",
    "Such an appearance is typical when the {organ} is involved by an inflammatory or neoplastic "
    "process, and clinical correlation is recommended.",
    "Comparison with prior studies would help to determine whether the lesion is growing.",
    "No other abnormality is visible in the surrounding tissue, and the adjacent structures appear "
    "preserved.",
    "It is important to note that the final diagnosis requires histopathological confirmation.",
    "The \"{finding}\" pattern is often described in the literature as a key sign.",
    "A biopsy or a follow-up scan in 3–6 months may be considered depending on the clinical context.",
]
# Sentences after an answer's first one: 1.875 on average, which brings a sample to ≈2.2 KB.
FOLLOW_COUNTS = [1, 2, 3, 1, 2, 3, 2, 1]
CAPTION = [
    "{modality_cap} of the {side} {organ} showing {finding} (arrow) measuring {size}.",
    "{modality_cap} demonstrating {finding} in the {organ}; the lesion was later confirmed as "
    "{diagnosis}.",
    "Representative {modality} image. {finding_cap} is seen in the {side} {organ} (arrowheads). "
    "Scale bar, {size}.",
]
MENTION = [
    "{modality_cap} revealed {finding} in the {side} {organ} ( {label} ) , which raised the suspicion "
    "of {diagnosis} .",
    "As shown in {label} , the {organ} displayed {finding} measuring {size} .",
    "Follow-up imaging ( {label} ) showed persistent {finding} without interval change .",
]


def fill(template, rng, ctx):
    values = dict(ctx)
    values.update(
        side=rng.choice(SIDES),
        organ=rng.choice(ORGANS),
        finding=rng.choice(FINDINGS),
        size=rng.choice(SIZES),
        diagnosis=rng.choice(DIAGNOSES),
        diagnosis2=rng.choice(DIAGNOSES),
    )
    values["finding_cap"] = values["finding"][0].upper() + values["finding"][1:]
    return template.format(**values)


def answer(rng, ctx):
    sentences = [fill(rng.choice(OPENERS), rng, ctx) + " " + fill("{finding} in the {side} {organ}.", rng, ctx)]
    for _ in range(rng.choice(FOLLOW_COUNTS)):
        sentences.append(fill(rng.choice(FOLLOW), rng, ctx))
    return " ".join(sentences)


def record(i, rng, image):
    domain = rng.choice(DOMAINS)
    label = "Figure %d" % rng.randint(1, 8)
    modality = MODALITY[domain]
    ctx = {"modality": modality, "modality_cap": modality[0].upper() + modality[1:], "label": label}
    conversations = []
    for r in range(rng.randint(3, 5)):
        question = fill(rng.choice(QUESTIONS), rng, ctx)
        if r == 0:
            question = "<image>\n" + question if rng.random() < 0.5 else question + "\n<image>"
        conversations.append({"from": "human", "value": question})
        conversations.append({"from": "gpt", "value": answer(rng, ctx)})
    mentions = []
    for _ in range(rng.randint(1, 2)):
        tokens = fill(rng.choice(MENTION), rng, ctx)
        mentions.append({
            "tokens": tokens,
            "entities": [{"type": "figure", "entity_id": label.split()[1], "start_tok": 7, "end_tok": 9}],
        })
    pmc = 1000000 + i
    return {
        "id": "PMC%d_F%d" % (pmc, i % 7 + 1),
        "image": image,
        "domain": {d: d == domain for d in DOMAINS},
        "conversations": conversations,
        "fig_caption": fill(rng.choice(CAPTION), rng, ctx),
        "fig_label": label,
        "in_text_mention": mentions,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--samples", type=int, default=210_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--figures", type=int, default=0,
                        help="the first N samples refer to fig-<i>.png (see tools/figure_gen.py)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write("[\n")
        for i in range(args.samples):
            if i < args.figures:
                image = "fig-%d.png" % i
            else:
                image = "PMC%d/fig-%d.jpg" % (1000000 + i, i % 7 + 1)
            if i:
                out.write(",\n")
            out.write(json.dumps(record(i, rng, image), ensure_ascii=False))
        out.write("\n]\n")


if __name__ == "__main__":
    main()
