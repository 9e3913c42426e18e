#!/usr/bin/env python3
"""`vital embed` benchmark: a LLaVA file with N answers shaped like LLaVA-Med's, imported into a fresh
workspace, then every text embedded into the cache; optionally killed part-way and resumed.

    python tools/embed_bench.py --vital target/release/vital --encoder DIR --answers 10000 --dir /tmp/embench
    python tools/embed_bench.py ... --kill-after 60     # kill the first run after 60 s, then resume

Texts are seeded compositions of biomedical phrases with LLaVA-Med's lengths (questions 8-20 words,
answers 30-110, captions 20-80, inline mentions 15-50), every one distinct, four rounds per figure, so
the encoder sees the token counts and the vocabulary a real release gives it (no real data is copied).
Prints vital's own summary lines (texts embedded, seconds, texts/s) and the wall time of each run;
each run's whole output is kept in the scratch folder.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time

MODALITIES = ["chest radiograph", "axial CT image", "coronal MRI", "ultrasound image",
              "histopathology slide", "fundus photograph", "PET-CT fusion image", "angiogram",
              "dermoscopic image", "sagittal T2-weighted MRI", "echocardiogram", "mammogram"]
FINDINGS = ["a well-circumscribed hypodense lesion", "diffuse ground-glass opacities",
            "a hyperintense signal in the left temporal lobe", "bilateral pleural effusions",
            "an enhancing mass with central necrosis", "thickening of the bowel wall",
            "multiple enlarged mediastinal lymph nodes", "a fracture of the distal radius",
            "cortical thinning with periosteal reaction", "nuclear pleomorphism with frequent mitoses",
            "a filling defect in the right pulmonary artery", "hepatic steatosis",
            "dilated intrahepatic bile ducts", "a cystic lesion with septations",
            "microaneurysms and hard exudates", "consolidation of the right lower lobe"]
ANATOMY = ["liver", "left kidney", "right upper lobe", "pancreatic head", "thyroid gland",
           "spleen", "left ventricle", "cervical spine", "frontal lobe", "gallbladder",
           "abdominal aorta", "retina", "proximal femur", "mediastinum", "urinary bladder"]
CLAUSES = ["which is consistent with {f}", "suggesting {f} in the {a}",
           "without evidence of {f}", "the arrows indicate {f} involving the {a}",
           "compared with the prior study there is {f}", "the {a} appears normal in size and contour",
           "these features favour a benign process", "malignancy cannot be excluded on imaging alone",
           "correlation with clinical history and laboratory findings is recommended",
           "the scale bar represents 50 micrometres", "after contrast administration there is {f}",
           "the surrounding tissue shows {f}", "this pattern is typical of an inflammatory process"]
QUESTIONS = ["What does the {m} show in the {a}?", "What abnormality is visible in the {a} on this {m}?",
             "Which imaging modality was used for this figure and what does it reveal?",
             "What do the arrows point to in the {a}?", "Is there any sign of {f} in this image?",
             "How would you describe the lesion seen in the {a}?",
             "What is the most likely diagnosis based on the findings in the {a}?",
             "What are the key features of the {m} in this case?"]


def sentence(rng, words_min, words_max, salt):
    words = []
    target = rng.randint(words_min, words_max)
    while len(words) < target:
        clause = rng.choice(CLAUSES).format(f=rng.choice(FINDINGS), a=rng.choice(ANATOMY))
        words.extend(clause.split())
    text = " ".join(words[:target])
    # A case number keeps every text distinct, as real texts are, so the cache cannot dedupe them.
    return f"{text[0].upper()}{text[1:]} (case {salt})."


def question(rng, salt):
    q = rng.choice(QUESTIONS).format(m=rng.choice(MODALITIES), a=rng.choice(ANATOMY), f=rng.choice(FINDINGS))
    return f"{q[:-1]} (case {salt})?"


def generate(path, answers, seed):
    rng = random.Random(seed)
    samples = []
    rounds = 4
    for i in range((answers + rounds - 1) // rounds):
        conversations = []
        for r in range(min(rounds, answers - i * rounds)):
            q = question(rng, f"{i}.{r}")
            conversations.append({"from": "human", "value": ("<image>\n" if r == 0 else "") + q})
            conversations.append({"from": "gpt", "value": sentence(rng, 30, 110, f"{i}.{r}")})
        samples.append({
            "id": f"bench-{i:06d}",
            "image": f"bench-{i:06d}.jpg",
            "conversations": conversations,
            "fig_caption": sentence(rng, 20, 80, f"{i}c"),
            "in_text_mention": sentence(rng, 15, 50, f"{i}m"),
        })
    with open(path, "w", encoding="utf-8") as f:
        json.dump(samples, f)
    return len(samples)


def run(cmd, env, log, kill_after=None):
    """Runs `cmd` with its output in the file `log`; prints vital's summary lines and the wall time."""
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as sink:
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.STDOUT, stdout=sink)
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            print(f"  killed after {time.perf_counter() - started:.1f}s")
            return
    with open(log, encoding="utf-8", errors="replace") as f:
        output = f.read()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output}")
    for line in output.splitlines():
        if "embedded" in line or "distinct texts" in line or "records" in line:
            print(f"  {line.strip()}")
    print(f"  wall {time.perf_counter() - started:.1f}s (output in {log})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vital", required=True)
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--answers", type=int, default=10000)
    parser.add_argument("--dir", required=True, help="scratch folder (the file and the workspace)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, help="vital embed --batch-size (default: vital's own)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kill-after", type=float, help="kill the first embed run after this many seconds")
    args = parser.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    data = os.path.join(args.dir, f"release_{args.answers}.json")
    ws = os.path.join(args.dir, "ws")
    if os.path.exists(ws):
        sys.exit(f"{ws} exists: give a fresh --dir")
    n = generate(data, args.answers, args.seed)
    print(f"{data}: {n} samples, {args.answers} answers ({os.path.getsize(data) / 1e6:.1f} MB)")
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    log = lambda name: os.path.join(args.dir, f"{name}.log")  # noqa: E731
    run([args.vital, "-w", ws, "import", data], env, log("import"))
    embed = [args.vital, "-w", ws, "embed", "--encoder", args.encoder]
    if args.batch_size:
        embed += ["--batch-size", str(args.batch_size)]
    if args.kill_after:
        print("first run (to be killed):")
        run(embed, env, log("embed-killed"), kill_after=args.kill_after)
    print("embed run:")
    run(embed, env, log("embed"))
    print("again (everything cached):")
    run(embed, env, log("embed-again"))


if __name__ == "__main__":
    main()
