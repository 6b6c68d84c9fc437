"""The egress proxy under load: wrk sends absolute-form `GET http://UPSTREAM/...`
requests to `airlock proxy` (agent token in Proxy-Authorization), and the same
request through `airlock serve --gateway` and straight to nginx, taking turns, at
several connection counts. The proxy's and the gateway's audit logs must verify.

Usage: bench_proxy.py --upstream PORT --home HOME [--conns 1,16] [--runs R] [--duration 10s]
HOME holds a capability `bench` for the upstream. Writes the section `proxy`.
"""

import argparse
import base64
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lib  # noqa: E402

BIN = os.environ["BENCH_BIN"]

# wrk sends wrk.path as the request target: an absolute URL makes it a proxy request.
SCRIPT = """
wrk.path = os.getenv("PROXY_TARGET")
wrk.headers["Proxy-Authorization"] = os.getenv("PROXY_AUTH")
"""


def start(home, args, token_env):
    env = {**os.environ, "AIRLOCK_HOME": home}
    port = lib.free_port()
    log = open(os.path.join(home, f"{args[0]}.log"), "w")
    p = subprocess.Popen([BIN, *args, f"127.0.0.1:{port}"], env=env,
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    lib.wait_port(port, proc=p)
    return p, port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--home", required=True)
    ap.add_argument("--conns", default="1,16")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", default="10s")
    a = ap.parse_args()
    conns = [int(c) for c in a.conns.split(",")]
    env = {**os.environ, "AIRLOCK_HOME": a.home}
    token = subprocess.run([BIN, "token", "issue", "--agent", "bench", "--ttl", "1d"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    script = os.path.join(a.home, "proxy.lua")
    with open(script, "w") as f:
        f.write(SCRIPT)
    procs = []
    try:
        gw, gw_port = start(a.home, ["serve", "--gateway"], None)
        procs.append(gw)
        px, px_port = start(a.home, ["serve", "--proxy"], None)
        procs.append(px)
        auth = "Basic " + base64.b64encode(f"airlock:{token}".encode()).decode()
        proxy_env = {**os.environ, "PROXY_TARGET": f"http://127.0.0.1:{a.upstream}/v1/items",
                     "PROXY_AUTH": auth}
        targets = [
            ("direct (nginx)", lambda c: lib.wrk(f"http://127.0.0.1:{a.upstream}/v1/items", c, a.duration,
                                                 ["Authorization: Bearer x"])),
            ("gateway", lambda c: lib.wrk(f"http://127.0.0.1:{gw_port}/bench/v1/items", c, a.duration,
                                          [f"Authorization: Bearer {token}"])),
            ("proxy (absolute-form http)", lambda c: lib.wrk(f"http://127.0.0.1:{px_port}/", c, a.duration,
                                                             script=script, env=proxy_env)),
        ]
        runs = {(c, t[0]): [] for c in conns for t in targets}
        for c in conns:
            for _ in range(a.runs):
                for label, run in targets:
                    runs[(c, label)].append(run(c))
    finally:
        for p in procs:
            p.terminate()
            p.wait()
    verify = subprocess.run([BIN, "audit", "verify"], env=env, capture_output=True, text=True)

    rows, summary, data = [], [], {"runs": {}}
    direct, gateway = targets[0][0], targets[1][0]
    for c in conns:
        d = lib.medians(runs[(c, direct)])
        g = lib.medians(runs[(c, gateway)])
        for label, _ in targets:
            m, row = lib.load_row(c, label, runs[(c, label)], None if label == direct else d["rps"], data)
            rows.append(row)
            if label.startswith("proxy"):
                summary.append({"measure": f"proxy req/s at {c} conn. (plain http, batch)", "airlock": lib.num(m["rps"]),
                                "reference": f"gateway {lib.num(g['rps'])}", "ratio": lib.ratio(m["rps"], g["rps"])})
                if c == 1:
                    summary.append({"measure": "proxy added p50 at 1 conn. (plain http, batch)",
                                    "airlock": f"{lib.num(m['p50_ms'] - d['p50_ms'])} ms",
                                    "reference": f"gateway {lib.num(g['p50_ms'] - d['p50_ms'])} ms", "ratio": ""})
    tables = [{"title": f"Egress proxy under load: wrk ({a.duration} per run) through the proxy, the gateway and straight to nginx, audit_fsync \"batch\", medians of {a.runs} runs",
               "columns": ["connections", "target", "req/s", "p50 ms", "p99 ms", "req/s ÷ direct", "errors"], "rows": rows}]
    lib.write_section("proxy", "Egress proxy under load", a.runs, summary, tables, data,
                      params={"conns": conns, "runs": a.runs, "duration": a.duration})
    if verify.returncode != 0:
        raise SystemExit("audit verify failed: " + verify.stdout + verify.stderr)
    if any(r["errors"] or r["non2xx"] for rs in runs.values() for r in rs):
        raise SystemExit("errors or non-2xx answers under load")


if __name__ == "__main__":
    main()
