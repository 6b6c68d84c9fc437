"""The egress proxy under load: wrk sends absolute-form `GET http://UPSTREAM/...`
requests to `airlock proxy` (agent token in Proxy-Authorization), and the same
request through `airlock serve --gateway` and straight to nginx, taking turns, at
several connection counts. Then HTTPS: `connect_load` (crates/airlock-proxy/
examples) through CONNECT and straight to nginx over TLS, keep-alive HTTP/1.1;
and the first request to each of ten new hosts (CONNECT, leaf minted, TLS
handshake, one GET). The audit logs must verify.

Usage: bench_proxy.py --upstream PORT --home HOME --tls-port PORT --tls-ca CA.pem
       --load PATH --hosts H1,H2,... [--conns 1,16] [--runs R] [--duration 10s]
HOME holds a capability `bench` for the upstream and `tlsN` for https://HN:TLS_PORT.
Writes the section `proxy`.
"""

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import time

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
    log = open(os.path.join(home, "-".join(a.strip("-") for a in args) + ".log"), "w")
    p = subprocess.Popen([BIN, *args, f"127.0.0.1:{port}"], env=env,
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    lib.wait_port(port, proc=p)
    return p, port


def session_ca(home):
    """The session CA's file, from the proxy's start-up line."""
    for _ in range(50):
        with open(os.path.join(home, "serve-proxy.log")) as f:
            m = re.search(r"session CA: ([^;]+);", f.read())
        if m:
            return m.group(1)
        time.sleep(0.1)
    raise SystemExit("the proxy did not print its session CA")


def load(tool, args):
    """One connect_load run: {"rps", "p50_ms", "p99_ms", "requests", "errors", "non2xx"}."""
    out = subprocess.run([tool, *args], capture_output=True, text=True, check=True).stdout
    r = json.loads(out)
    r["non2xx"] = 0
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--home", required=True)
    ap.add_argument("--conns", default="1,16,64")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", default="10s")
    ap.add_argument("--tls-port", type=int, required=True)
    ap.add_argument("--tls-ca", required=True)
    ap.add_argument("--load", required=True)
    ap.add_argument("--hosts", required=True)
    a = ap.parse_args()
    seconds = a.duration.rstrip("s")
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
        px_ca = session_ca(a.home)
        via = ["--proxy", f"127.0.0.1:{px_port}", "--auth", base64.b64encode(f"airlock:{token}".encode()).decode()]
        common = ["--port", str(a.tls_port), "--path", "/v1/items", "--host", "127.0.0.1", "--seconds", seconds]
        targets += [
            ("direct (nginx, TLS)", lambda c: load(a.load, [*common, "--ca", a.tls_ca, "--conns", str(c)])),
            ("proxy (CONNECT, TLS)", lambda c: load(a.load, [*common, "--ca", px_ca, "--conns", str(c), *via])),
            ("direct (nginx, TLS, HTTP/2)", lambda c: load(a.load, [*common, "--ca", a.tls_ca, "--conns", str(c), "--h2", "1"])),
            ("proxy (CONNECT, TLS, HTTP/2)", lambda c: load(a.load, [*common, "--ca", px_ca, "--conns", str(c), *via, "--h2", "1"])),
        ]
        runs = {(c, t[0]): [] for c in conns for t in targets}
        for c in conns:
            for _ in range(a.runs):
                for label, run in targets:
                    runs[(c, label)].append(run(c))
        # The first request to a new host: hosts 2..11, each once (a leaf is
        # minted per host); the direct column is the same handshake to nginx.
        fresh = a.hosts.split(",")[1:]
        first = {
            "direct (nginx, TLS)": load(a.load, ["--port", str(a.tls_port), "--path", "/v1/items", "--ca", a.tls_ca, "--first", ",".join(fresh)]),
            "proxy (CONNECT, TLS)": load(a.load, ["--port", str(a.tls_port), "--path", "/v1/items", "--ca", px_ca, "--first", ",".join(fresh), *via]),
        }
        # The same ten hosts again: a new connection each, the leaf and
        # airlock's upstream client already there — what the first time adds.
        first["proxy, same hosts again"] = load(a.load, ["--port", str(a.tls_port), "--path", "/v1/items", "--ca", px_ca, "--first", ",".join(fresh), *via])
    finally:
        for p in procs:
            p.terminate()
            p.wait()
    verify = subprocess.run([BIN, "audit", "verify"], env=env, capture_output=True, text=True)

    rows, summary, data = [], [], {"runs": {}}
    direct, gateway = targets[0][0], targets[1][0]
    tls_direct, h2_direct = "direct (nginx, TLS)", "direct (nginx, TLS, HTTP/2)"
    for c in conns:
        d = lib.medians(runs[(c, direct)])
        g = lib.medians(runs[(c, gateway)])
        td = lib.medians(runs[(c, tls_direct)])
        hd = lib.medians(runs[(c, h2_direct)])
        for label, _ in targets:
            base = (None if label in (direct, tls_direct, h2_direct)
                    else hd["rps"] if "HTTP/2" in label else td["rps"] if "TLS" in label else d["rps"])
            m, row = lib.load_row(c, label, runs[(c, label)], base, data)
            rows.append(row)
            if label == "proxy (CONNECT, TLS, HTTP/2)":
                summary.append({"measure": f"proxy req/s at {c} conn. (HTTPS via CONNECT, HTTP/2, batch)", "airlock": lib.num(m["rps"]),
                                "reference": f"direct TLS HTTP/2 {lib.num(hd['rps'])}", "ratio": lib.ratio(m["rps"], hd["rps"])})
                summary.append({"measure": f"proxy added p50 at {c} conn. (HTTPS via CONNECT, HTTP/2)",
                                "airlock": f"{lib.num(m['p50_ms'] - hd['p50_ms'])} ms", "reference": "", "ratio": ""})
            elif label == "proxy (CONNECT, TLS)":
                summary.append({"measure": f"proxy req/s at {c} conn. (HTTPS via CONNECT, batch)", "airlock": lib.num(m["rps"]),
                                "reference": f"direct TLS {lib.num(td['rps'])}", "ratio": lib.ratio(m["rps"], td["rps"])})
                summary.append({"measure": f"proxy added p50 at {c} conn. (HTTPS via CONNECT)",
                                "airlock": f"{lib.num(m['p50_ms'] - td['p50_ms'])} ms", "reference": "", "ratio": ""})
            elif label.startswith("proxy"):
                summary.append({"measure": f"proxy req/s at {c} conn. (plain http, batch)", "airlock": lib.num(m["rps"]),
                                "reference": f"gateway {lib.num(g['rps'])}", "ratio": lib.ratio(m["rps"], g["rps"])})
                if c == 1:
                    summary.append({"measure": "proxy added p50 at 1 conn. (plain http, batch)",
                                    "airlock": f"{lib.num(m['p50_ms'] - d['p50_ms'])} ms",
                                    "reference": f"gateway {lib.num(g['p50_ms'] - d['p50_ms'])} ms", "ratio": ""})
    fd, fp = first["direct (nginx, TLS)"], first["proxy (CONNECT, TLS)"]
    data["first_request"] = first
    summary.append({"measure": "first request to a new host (CONNECT + leaf minted + TLS + GET), median of 10 hosts",
                    "airlock": f"{lib.num(fp['p50_ms'])} ms", "reference": f"direct TLS {lib.num(fd['p50_ms'])} ms", "ratio": ""})
    first_rows = [[label, lib.num(r["p50_ms"]), lib.num(r["p99_ms"]), "none" if r["errors"] == 0 else r["errors"]] for label, r in first.items()]
    tables = [{"title": f"Egress proxy under load: wrk and connect_load ({a.duration} per run) through the proxy, the gateway and straight to nginx, audit_fsync \"batch\", medians of {a.runs} runs (req/s ÷ direct: against the plain or the TLS direct row)",
               "columns": ["connections", "target", "req/s", "p50 ms", "p99 ms", "req/s ÷ direct", "errors"], "rows": rows},
              {"title": "First request to a new host: a fresh connection, CONNECT, TLS handshake (through the proxy: a leaf minted for the host), one GET; 10 hosts",
               "columns": ["target", "p50 ms", "p99 ms", "errors"], "rows": first_rows}]
    lib.write_section("proxy", "Egress proxy under load", a.runs, summary, tables, data,
                      params={"conns": conns, "runs": a.runs, "duration": a.duration})
    if verify.returncode != 0:
        raise SystemExit("audit verify failed: " + verify.stdout + verify.stderr)
    if any(r["errors"] or r["non2xx"] for rs in runs.values() for r in rs) or fd["errors"] or fp["errors"]:
        raise SystemExit("errors or non-2xx answers under load")


if __name__ == "__main__":
    main()
