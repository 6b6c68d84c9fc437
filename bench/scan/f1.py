"""F1 of `airlock scan` and ripsecrets on airlock's labelled corpus, file by file:
a file with a planted secret counts as found if the tool reports anything in it;
a decoy file counts as a false positive if the tool reports anything in it.
With INDEPENDENT_JSON (bench/scan/independent/score.py --json), the section
also shows airlock's secret-level F1 on the independent corpus.
Usage: f1.py CORPUS_DIR AIRLOCK_BIN RIPSECRETS_BIN [INDEPENDENT_JSON]   (writes the section `f1`)"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lib  # noqa: E402

corpus, airlock, rip = sys.argv[1:4]
independent = json.load(open(sys.argv[4])) if len(sys.argv) > 4 else None
labels = json.load(open(os.path.join(corpus, "labels.json")))


def hits_airlock():
    out = subprocess.run([airlock, "scan", corpus, "--format", "json"], capture_output=True, text=True).stdout
    files = set()
    for f in json.loads(out or "[]"):
        files.add(os.path.relpath(os.path.join(corpus, f["file"]) if not os.path.isabs(f["file"]) else f["file"], corpus))
    return files


def hits_rip():
    out = subprocess.run([rip, corpus], capture_output=True, text=True, cwd=corpus).stdout
    files = set()
    for line in out.splitlines():
        path = line.split(":", 1)[0]
        if path:
            files.add(os.path.relpath(os.path.join(corpus, path), corpus))
    return files


def score(hits):
    tp = sum(1 for f, rule in labels.items() if rule and f in hits)
    fn = sum(1 for f, rule in labels.items() if rule and f not in hits)
    fp = sum(1 for f, rule in labels.items() if not rule and f in hits)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"found": tp, "missed": fn, "false_positives": fp, "precision": p, "recall": r, "f1": f1}


pos = sum(1 for r in labels.values() if r)
res = {"airlock": score(hits_airlock()), "ripsecrets": score(hits_rip())}
rows = [[t, f"{s['found']:,}", f"{s['missed']:,}", f"{s['false_positives']:,}", f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}"]
        for t, s in res.items()]
a, r = res["airlock"]["f1"], res["ripsecrets"]["f1"]
summary = [{"measure": "scan F1 on airlock's own generated corpus (file level; not real-world accuracy)", "airlock": f"{a:.3f}", "reference": f"ripsecrets {r:.3f}", "ratio": lib.ratio(a, r)}]
tables = [{"title": f"F1 on airlock's generated corpus: {pos:,} files with a planted secret, {len(labels) - pos:,} decoys (deterministic, one run)",
           "columns": ["tool", "found", "missed", "false positives", "precision", "recall", "F1"], "rows": rows}]
data = {**res, "positives": pos, "decoys": len(labels) - pos}
if independent:
    i = independent
    summary.append({"measure": "scan F1 on the independent corpus (secret level; generated from public token formats, not from airlock's rules)",
                    "airlock": f"{i['f1']:.3f}", "reference": "target 0.97 (issue 18)", "ratio": ""})
    tables.append({"title": f"F1 on the independent corpus (bench/scan/independent, seeds 1-4 pooled): {i['secrets']:,} planted secrets, {i['decoys']:,} decoys in {i['files']:,} files",
                   "columns": ["tool", "found", "missed", "false positives", "precision", "recall", "F1"],
                   "rows": [["airlock", f"{i['found']:,}", f"{i['missed']:,}", f"{i['false_positives']:,}", f"{i['precision']:.3f}", f"{i['recall']:.3f}", f"{i['f1']:.3f}"]]})
    data["independent"] = {k: v for k, v in i.items() if not k.endswith("_list")}
    data["independent"]["missed_list"] = i["missed_list"][:50]
    data["independent"]["fp_list"] = i["fp_list"][:50]
lib.write_section("f1", "Scan accuracy (F1: airlock's own generated corpus and an independent one)", 1, summary, tables, data)
