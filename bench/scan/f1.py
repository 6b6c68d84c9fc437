"""F1 of airlock-scan and ripsecrets on airlock's labelled corpus, file by file:
a file with a planted secret counts as found if the tool reports anything in it;
a decoy file counts as a false positive if the tool reports anything in it.
Usage: f1.py CORPUS_DIR AIRLOCK_SCAN_BIN RIPSECRETS_BIN"""
import json, os, subprocess, sys

corpus, airlock, rip = sys.argv[1:4]
labels = json.load(open(os.path.join(corpus, "labels.json")))

def hits_airlock():
    out = subprocess.run([airlock, corpus, "--format", "json"], capture_output=True, text=True).stdout
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
    return tp, fn, fp, p, r, f1

pos = sum(1 for r in labels.values() if r)
print(f"corpus: {pos} files with a planted secret, {len(labels) - pos} decoy files")
print("| tool | found | missed | false positives | precision | recall | F1 |")
print("|---|---|---|---|---|---|---|")
for name, hits in [("airlock", hits_airlock()), ("ripsecrets", hits_rip())]:
    tp, fn, fp, p, r, f1 = score(hits)
    print(f"| {name} | {tp} | {fn} | {fp} | {p:.3f} | {r:.3f} | {f1:.3f} |")
