#!/usr/bin/env python3
"""Derives benches/data/vicuna_gpt4_reviews.jsonl from FastChat's Vicuna-bench tables.

Source: https://github.com/lm-sys/FastChat at commit 69d085eadab8e9fcf831a97e17e132658c3d2272
(the last commit before `fastchat/eval` was removed, PR #1811), Apache License 2.0 (the repository's
LICENSE). Read from `fastchat/eval/table/`:
  question.jsonl                                   80 questions with their category
  answer/answer_{alpaca-13b,bard,gpt35,llama-13b,vicuna-13b}.jsonl   five assistants' answers
  review/vicuna-13b_20230322-clean-lang/review_{alpaca-13b,bard,gpt35,llama-13b}_vicuna-13b.jsonl
                                                   GPT-4's reviews of each assistant against
                                                   vicuna-13b: two 0-10 scores per review

Writes one line per question: {question_id, category, question, answers: [{model, text}] (the five
in the order above), reviews: [{answer1, answer2, scores: [s1, s2], reviewer}]} with answer1/2
0-based indices into `answers`. Nothing else is changed: texts and scores are as published.

Run: python3 derive_vicuna_reviews.py /path/to/FastChat > vicuna_gpt4_reviews.jsonl
"""
import json
import subprocess
import sys

COMMIT = "69d085eadab8e9fcf831a97e17e132658c3d2272"
MODELS = ["alpaca-13b", "bard", "gpt35", "llama-13b", "vicuna-13b"]
REVIEWS = "fastchat/eval/table/review/vicuna-13b_20230322-clean-lang/review_{}_vicuna-13b.jsonl"


def lines(repo, path):
    text = subprocess.run(
        ["git", "-C", repo, "show", f"{COMMIT}:{path}"], check=True, capture_output=True, text=True
    ).stdout
    return [json.loads(l) for l in text.splitlines() if l.strip()]


def main():
    repo = sys.argv[1]
    questions = lines(repo, "fastchat/eval/table/question.jsonl")
    answers = {m: {a["question_id"]: a for a in lines(repo, f"fastchat/eval/table/answer/answer_{m}.jsonl")} for m in MODELS}
    by_id = {}
    for m in MODELS:
        for qid, a in answers[m].items():
            by_id[a["answer_id"]] = (qid, MODELS.index(m))
    reviews = {}
    for m in MODELS[:-1]:
        for r in lines(repo, REVIEWS.format(m)):
            q1, a1 = by_id[r["answer1_id"]]
            q2, a2 = by_id[r["answer2_id"]]
            assert q1 == q2 == r["question_id"], r["review_id"]
            reviews.setdefault(r["question_id"], []).append(
                {"answer1": a1, "answer2": a2, "scores": r["score"], "reviewer": r["reviewer_id"]}
            )
    for q in questions:
        qid = q["question_id"]
        out = {
            "question_id": qid,
            "category": q["category"],
            "question": q["text"],
            "answers": [{"model": m, "text": answers[m][qid]["text"]} for m in MODELS],
            "reviews": reviews.get(qid, []),
        }
        print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
