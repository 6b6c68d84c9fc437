"""Reads criterion's results (CRITERION_HOME/<group>/<bench>/new/) and writes the
section file for the vault, audit or scrub benches.
Usage: collect.py vault|audit|scrub CRITERION_HOME"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lib  # noqa: E402


def load(home):
    """{full_id: {"median_ns", "low_ns", "high_ns", "samples", "throughput"}}"""
    out = {}
    for d, _, files in os.walk(home):
        if os.path.basename(d) != "new" or "benchmark.json" not in files:
            continue
        b = json.load(open(os.path.join(d, "benchmark.json")))
        e = json.load(open(os.path.join(d, "estimates.json")))["median"]
        s = json.load(open(os.path.join(d, "sample.json")))
        out[b["full_id"]] = {
            "median_ns": e["point_estimate"],
            "low_ns": e["confidence_interval"]["lower_bound"],
            "high_ns": e["confidence_interval"]["upper_bound"],
            "samples": len(s["iters"]),
            "iterations": int(sum(s["iters"])),
            "throughput": b.get("throughput"),
        }
    return out


def t(ns):
    if ns >= 1e6:
        return f"{lib.num(ns / 1e6)} ms"
    if ns >= 1e3:
        return f"{lib.num(ns / 1e3)} µs"
    return f"{lib.num(ns)} ns"


def row(r, label, extra=""):
    return [label, t(r["median_ns"]), f"{t(r['low_ns'])} – {t(r['high_ns'])}", f"{r['samples']} ({r['iterations']:,} iterations)", extra]


COLS = ["benchmark", "median", "95% interval of the median", "samples", "note"]


def vault(res):
    a, b = res["open/1000 secrets (key file) + read one"], res["open/100000 secrets (key file) + read one"]
    dec = res["decrypt all 1000 secrets (unlocked)"]
    k1, k2 = res["argon2id unlock/default 64MiB t=3 p=1"], res["argon2id unlock/floor 19MiB t=2 p=1"]
    rows = [
        row(a, "open a 1,000-secret vault (key file: read, parse, unwrap data key), read one secret"),
        row(b, "the same with 100,000 secrets", f"{lib.ratio(b['median_ns'], a['median_ns'])} the 1,000-secret open"),
        row(dec, "decrypt all 1,000 secrets of an unlocked vault", f"{t(dec['median_ns'] / 1000)} per secret"),
        row(k1, "Argon2id unlock, default parameters (64 MiB, t = 3, p = 1)"),
        row(k2, "Argon2id unlock, OWASP floor (19 MiB, t = 2, p = 1)", f"default is {lib.ratio(k1['median_ns'], k2['median_ns'])} this"),
    ]
    summary = [
        {"measure": "open vault + read one secret, 1,000 secrets", "airlock": t(a["median_ns"]), "reference": "", "ratio": ""},
        {"measure": "open vault + read one secret, 100,000 secrets", "airlock": t(b["median_ns"]),
         "reference": f"1,000 secrets {t(a['median_ns'])}", "ratio": lib.ratio(b["median_ns"], a["median_ns"])},
        {"measure": "Argon2id unlock (passphrase vaults only)", "airlock": t(k1["median_ns"]), "reference": "", "ratio": ""},
    ]
    return "Vault", summary, rows


def audit(res):
    al, ba, un = res["append/always"], res["append/batch"], res["append/unsynced"]
    rps = {k: 1e9 / r["median_ns"] for k, r in (("always", al), ("batch", ba), ("unsynced", un))}
    rows = [
        row(al, "append, fsync every record (`audit_fsync = \"always\"`)", f"{lib.num(rps['always'])} records/s"),
        row(ba, "append, fsync every 1,000 records or 100 ms (`\"batch\"`)", f"{lib.num(rps['batch'])} records/s"),
        row(un, "append, never synced (in-process cost alone)", f"{lib.num(rps['unsynced'])} records/s"),
    ]
    summary = [
        {"measure": "audit append rate, fsync always (one writer)", "airlock": f"{lib.num(rps['always'])} records/s",
         "reference": f"batch {lib.num(rps['batch'])}/s", "ratio": lib.ratio(rps["always"], rps["batch"])},
    ]
    return "Audit log append", summary, rows


def scrub(res):
    rows, summary = [], []
    for k in sorted(res):
        r = res[k]
        nbytes = (r["throughput"] or {}).get("Bytes", 0)
        mbs = nbytes / (r["median_ns"] / 1e9) / 1e6 if nbytes else None
        rows.append(row(r, k.replace("scrub/", ""), f"{lib.num(mbs)} MB/s" if mbs else ""))
        if k == "scrub/stream_16k_chunks_10_secrets_clean":
            summary.append({"measure": "response scrubbing (stream, 10 secrets, 1 MiB clean)", "airlock": f"{lib.num(mbs)} MB/s", "reference": "", "ratio": ""})
    return "Response scrubber", summary, rows


def main():
    name, home = sys.argv[1], sys.argv[2]
    res = load(home)
    title, summary, rows = {"vault": vault, "audit": audit, "scrub": scrub}[name](res)
    runs = min(r["samples"] for r in res.values())
    table = {"title": f"{title}: criterion, median time per iteration over its samples (each sample many iterations)",
             "columns": COLS, "rows": rows}
    lib.write_section(name, title, runs, summary, [table], res)


if __name__ == "__main__":
    main()
