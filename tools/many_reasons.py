#!/usr/bin/env python3
"""Adds N decisions in force of one reviewer to a directory workspace, as a reviewer's script
could on a team server (issue 34): N reasons, each in a slot of its own, on the first sample's
first answer. For timing `vital stats` against the decisions in force (BENCHMARKS.md).

usage: tools/many_reasons.py WORKSPACE_DIR N
"""
import sqlite3
import sys

ws, n = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(f"{ws}/vital.db")
rid = db.execute(
    "INSERT INTO reviewers (name, created_at) VALUES ('mallory', '2026-12-07T10:00:00Z') RETURNING id"
).fetchone()[0]
sid = db.execute("SELECT min(id) FROM samples").fetchone()[0]
answer, round_id = db.execute(
    "SELECT a.id, a.round_id FROM answers a JOIN rounds r ON r.id = a.round_id WHERE r.sample_id = ? ORDER BY a.id",
    (sid,),
).fetchone()
db.executemany(
    "INSERT INTO judgments (reviewer_id, sample_id, round_id, answer_id, kind, value, slot, created_at)"
    " VALUES (?, ?, ?, ?, 'reason', ?, ?, '2026-12-07T10:00:00Z')",
    [(rid, sid, round_id, answer, f"why {i}", f"reason:{answer}:{i}") for i in range(n)],
)
db.commit()
