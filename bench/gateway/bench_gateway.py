"""HTTP gateway under load: wrk against nginx directly and through `airlock serve
--gateway` (one server per airlock home, e.g. one per audit_fsync setting), at
several connection counts; each run measures every target in turn. Afterwards the
audit log of each home must hold a request record for every request wrk counted,
and `airlock audit verify` must pass.

Usage: bench_gateway.py --upstream PORT --home LABEL::HOME [--home ...]
                        [--conns 1,16,64] [--runs R] [--duration 10s]
Each HOME holds a capability `bench` for the upstream. Writes the section `gateway`.
"""

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lib  # noqa: E402

BIN = os.environ["BENCH_BIN"]


def start_gateway(home):
    env = {**os.environ, "AIRLOCK_HOME": home}
    token = subprocess.run([BIN, "token", "issue", "--agent", "bench", "--ttl", "1d"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    port = lib.free_port()
    log = open(os.path.join(home, "serve.log"), "w")
    p = subprocess.Popen([BIN, "serve", "--gateway", f"127.0.0.1:{port}"], env=env,
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    lib.wait_port(port, proc=p)
    return p, port, token


def audit_check(home):
    env = {**os.environ, "AIRLOCK_HOME": home}
    logs = subprocess.run([BIN, "logs", "--json", "--capability", "bench"], env=env,
                          capture_output=True, text=True, check=True).stdout
    records = logs.count('"kind":"request"')
    verify = subprocess.run([BIN, "audit", "verify"], env=env, capture_output=True, text=True)
    return records, verify.returncode == 0, (verify.stdout + verify.stderr).strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--home", action="append", required=True, help="LABEL::HOME")
    ap.add_argument("--conns", default="1,16,64")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", default="10s")
    a = ap.parse_args()
    conns = [int(c) for c in a.conns.split(",")]

    targets = [("direct (nginx)", f"http://127.0.0.1:{a.upstream}/v1/items", "Bearer x", None)]
    procs = []
    try:
        for spec in a.home:
            label, home = spec.split("::", 1)
            p, port, token = start_gateway(home)
            procs.append(p)
            targets.append((label, f"http://127.0.0.1:{port}/bench/v1/items", f"Bearer {token}", home))

        runs = {(c, t[0]): [] for c in conns for t in targets}
        counted = {t[0]: 0 for t in targets}
        for c in conns:
            for _ in range(a.runs):
                for label, url, auth, _home in targets:
                    r = lib.wrk(url, c, a.duration, [f"Authorization: {auth}"])
                    runs[(c, label)].append(r)
                    counted[label] += r["requests"]
        audit = {}
        for label, _, _, home in targets:
            if home:
                records, ok, msg = audit_check(home)
                audit[label] = {"requests_counted_by_wrk": counted[label], "request_records": records,
                                "verify_ok": ok, "verify_output": msg}
    finally:
        for p in procs:
            p.terminate()
            p.wait()

    rows, summary, data = [], [], {"runs": {}, "audit": audit}
    direct = targets[0][0]
    for c in conns:
        d = lib.medians(runs[(c, direct)])
        for label, *_ in targets:
            m, row = lib.load_row(c, label, runs[(c, label)], None if label == direct else d["rps"], data)
            rows.append(row)
            if label != direct and c in (1, 16, 64):
                summary.append({"measure": f"gateway req/s at {c} conn., {label}", "airlock": lib.num(m["rps"]),
                                "reference": f"nginx {lib.num(d['rps'])}", "ratio": lib.ratio(m["rps"], d["rps"])})
                if c == 1:
                    summary.append({"measure": f"gateway p50 at 1 conn., {label}", "airlock": f"{lib.num(m['p50_ms'])} ms",
                                    "reference": f"nginx {lib.num(d['p50_ms'])} ms", "ratio": lib.ratio(m["p50_ms"], d["p50_ms"])})
    audit_rows = []
    for label, x in audit.items():
        slack = x["request_records"] - x["requests_counted_by_wrk"]
        ok = x["verify_ok"] and 0 <= slack <= sum(conns) * a.runs
        x["ok"] = ok
        audit_rows.append([label, f"{x['requests_counted_by_wrk']:,}", f"{x['request_records']:,}", f"{slack:+,}",
                           "intact" if x["verify_ok"] else "FAILED"])
        summary.append({"measure": f"gateway audit records = requests, {label}",
                        "airlock": f"{x['request_records']:,} records", "reference": f"{x['requests_counted_by_wrk']:,} requests",
                        "ratio": "ok" if ok else "MISMATCH"})
    tables = [
        {"title": f"Gateway under load: wrk ({a.duration} per run, 2 threads, 1 at 1 connection) against nginx on loopback, medians of {a.runs} runs",
         "columns": ["connections", "target", "req/s", "p50 ms", "p99 ms", "req/s ÷ direct", "errors"], "rows": rows},
        {"title": "Audit: request records against requests wrk counted (records may exceed by requests in flight when wrk stopped counting)",
         "columns": ["server", "requests (wrk)", "request records", "difference", "audit verify"], "rows": audit_rows},
    ]
    lib.write_section("gateway", "HTTP gateway under load", a.runs, summary, tables, data,
                      params={"conns": conns, "runs": a.runs, "duration": a.duration})
    if not all(x["ok"] for x in audit.values()):
        raise SystemExit("audit check failed: " + repr(audit))


if __name__ == "__main__":
    main()
