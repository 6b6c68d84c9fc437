#!/usr/bin/env python3
"""Scores `airlock scan --format json` against independent corpora (gen.py).

Secret level: a labelled secret is found when a finding is in its file on a
line it spans; a finding on no secret's line (and on no "either" line) is a
false positive; several findings on one secret count once. Several corpora
are pooled (their counts added) before precision, recall and F1.

Usage: score.py CORPUS_DIR FINDINGS_JSON [CORPUS_DIR FINDINGS_JSON ...]
                [--min-f1 X] [--verbose] [--json OUT]
Findings' paths are absolute or relative to their corpus (scan run from
inside it). Exit 1 when the pooled F1 is below --min-f1.
"""
import argparse
import collections
import json
import os
import sys


def score_one(corpus, findings):
    labels = json.load(open(os.path.join(corpus, "labels.json")))["labels"]
    by_file = collections.defaultdict(list)
    for lab in labels:
        by_file[lab["file"]].append(lab)
    found, fps = set(), []
    for f in findings:
        path = f["file"]
        rel = os.path.relpath(path, corpus) if os.path.isabs(path) else os.path.normpath(path)
        labs = [lab for lab in by_file.get(rel, []) if lab["line"] <= f["line"] <= lab["end"]]
        secrets = [lab for lab in labs if lab["label"] == "secret"]
        if secrets:
            found.update((rel, lab["line"]) for lab in secrets)
        elif not any(lab["label"] == "either" for lab in labs):
            fps.append({"corpus": corpus, "file": rel, "line": f["line"], "rule": f["rule_id"], "decoy": [lab["kind"] for lab in labs]})
    secrets = [lab for lab in labels if lab["label"] == "secret"]
    missed = [{"corpus": corpus, "file": m["file"], "line": m["line"], "kind": m["kind"]} for m in secrets if (m["file"], m["line"]) not in found]
    return {"secrets": len(secrets), "decoys": sum(1 for lab in labels if lab["label"] == "decoy"), "files": len(by_file),
            "missed_list": missed, "fp_list": fps}


def pooled(results):
    secrets = sum(r["secrets"] for r in results)
    missed = [m for r in results for m in r["missed_list"]]
    fps = [x for r in results for x in r["fp_list"]]
    tp, fn, fp = secrets - len(missed), len(missed), len(fps)
    p = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * rec / (p + rec) if p + rec else 0.0
    return {"corpora": len(results), "files": sum(r["files"] for r in results), "secrets": secrets,
            "decoys": sum(r["decoys"] for r in results), "found": tp, "missed": fn, "false_positives": fp,
            "precision": p, "recall": rec, "f1": f1, "missed_list": missed, "fp_list": fps}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs", nargs="+", metavar="CORPUS_DIR FINDINGS_JSON")
    ap.add_argument("--min-f1", type=float)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    if len(a.pairs) % 2:
        ap.error("give CORPUS_DIR FINDINGS_JSON pairs")
    res = pooled([score_one(c, json.load(open(f))) for c, f in zip(a.pairs[::2], a.pairs[1::2])])
    if a.json:
        json.dump(res, open(a.json, "w"), indent=1)
    if a.verbose:
        for m in res["missed_list"]:
            print(f"missed  {m['kind']:26} {m['corpus']}/{m['file']}:{m['line']}")
        for x in res["fp_list"]:
            print(f"false+  {x['rule']:26} {x['corpus']}/{x['file']}:{x['line']} {','.join(x['decoy']) or '(no label)'}")
    print(f"{res['corpora']} corpora, {res['secrets']} secrets, {res['decoys']} decoys: found {res['found']}, missed {res['missed']}, "
          f"false positives {res['false_positives']}; precision {res['precision']:.3f} recall {res['recall']:.3f} F1 {res['f1']:.3f}")
    if a.min_f1 is not None and res["f1"] < a.min_f1:
        print(f"F1 {res['f1']:.3f} on the independent corpus is below the threshold {a.min_f1}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
