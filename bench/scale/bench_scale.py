"""How cost grows: the gateway (16 connections) with 10, 100 and 1,000 services,
secrets and capabilities of 10, 100 and 1,000 rules each (and, to tell the two
apart, 1,000 services of 10 rules and 10 services of 1,000 rules, and 1,000
services with every request on one capability), and `airlock scan` over 1×, 10×
and 100× copies of a tree; every figure also as a ratio to 1×.

Usage: bench_scale.py --upstream PORT [--runs R] [--duration 10s]   (section `scale`)

Each run prepares fresh homes, starts the six gateways (their start-up time is
measured), then for each: one request to each capability in turn, twice, over one
connection (the first request to a capability opens its session), one unmeasured
second of wrk, the measured wrk run; then reads their peak RSS and stops them.
The vaults (k secrets, set with `airlock secret set NAME --stdin`) are built once
and kept in $BENCH_CACHE; airlock.toml is written for each run. Requests rotate
over the capabilities (a wrk Lua script); each capability's allow list holds
k - 1 rules that do not match and, last, the one that does. audit_fsync = "batch",
so that the figures show the cost of the configuration's size, not of the disk.
"""

import argparse
import http.client
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "scan"))
import bench_scan  # noqa: E402
import lib  # noqa: E402

BIN = os.environ["BENCH_BIN"]
CACHE = os.environ["BENCH_CACHE"]
WORK = os.environ["BENCH_WORK"]
# (services, rules per capability, capabilities the requests rotate over): the
# series 1×, 10×, 100×, then 100× of one dimension alone, to tell which of the two
# a cost follows, and 1,000 services with every request on the same capability.
CONFIGS = ((10, 10, 10), (100, 100, 100), (1000, 1000, 1000), (1000, 10, 1000), (10, 1000, 10), (1000, 10, 1))
SCALES = CONFIGS[:3]

LUA = """local n = tonumber(os.getenv("BENCH_CAPS"))
local i = 0
request = function()
  i = i % n + 1
  return wrk.format(nil, string.format("/c%04d/v1/items", i))
end
"""


def vault_home(k):
    """A cached home whose vault holds secrets s0001..s<k>."""
    home = os.path.join(CACHE, f"gateway-home-{k}")
    env = {**os.environ, "AIRLOCK_HOME": home}
    listing = subprocess.run([BIN, "secret", "list", "--json"], env=env, capture_output=True, text=True)
    if listing.returncode == 0 and listing.stdout.count('"name"') == k:
        return home
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run([BIN, "init"], env=env, check=True, capture_output=True)
    for i in range(1, k + 1):
        subprocess.run([BIN, "secret", "set", f"s{i:04}", "--stdin"], env=env, check=True, capture_output=True,
                       input=f"sk_test_scale_{i:04}_{'x' * 24}".encode())
    return home


def config(k, nrules, port):
    out = ['[server]\naudit_fsync = "batch"\n']
    for i in range(1, k + 1):
        out.append(f'[services.s{i:04}]\nurl = "http://127.0.0.1:{port}/s{i:04}"\nauth = {{ type = "bearer", secret = "s{i:04}" }}\n')
    rules = "".join(f'  "GET /v1/r{j:04}/**",\n' for j in range(nrules - 1)) + '  "GET /v1/items",\n'
    for i in range(1, k + 1):
        out.append(f'[capabilities.c{i:04}]\nservice = "s{i:04}"\nallow = [\n{rules}]\n')
    return "\n".join(out)


def prepare(cfg, upstream, run):
    """A fresh home for one run (no sessions yet): (home, token, airlock.toml bytes)."""
    k, nrules, used = cfg
    home = os.path.join(WORK, f"home-{k}-{nrules}-{used}-run{run}")
    shutil.copytree(vault_home(k), home, symlinks=True)
    path = os.path.join(home, "airlock.toml")
    with open(path, "w") as f:
        f.write(config(k, nrules, upstream))
    os.chmod(path, 0o600)
    env = {**os.environ, "AIRLOCK_HOME": home}
    token = subprocess.run([BIN, "token", "issue", "--agent", "bench", "--ttl", "1d"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    return home, token, os.path.getsize(path)


def one_pass(port, token, caps):
    """One request to each capability in turn over one connection: latencies (s)."""
    c = http.client.HTTPConnection("127.0.0.1", port)
    lat = []
    for i in range(1, caps + 1):
        t = time.perf_counter()
        c.request("GET", f"/c{i:04}/v1/items", headers={"Authorization": f"Bearer {token}"})
        r = c.getresponse()
        r.read()
        lat.append(time.perf_counter() - t)
        if r.status != 200:
            raise SystemExit(f"capability c{i:04}: HTTP {r.status}")
    c.close()
    return lat


def gateway(a):
    script = os.path.join(WORK, "rotate.lua")
    with open(script, "w") as f:
        f.write(LUA)
    runs = {c: [] for c in CONFIGS}
    for run in range(a.runs):
        homes = {c: prepare(c, a.upstream, run) for c in CONFIGS}
        procs = {}
        try:
            for k in CONFIGS:
                home = homes[k][0]
                port = lib.free_port()
                log = open(os.path.join(home, "serve.log"), "a")
                p = subprocess.Popen([BIN, "serve", "--gateway", f"127.0.0.1:{port}"], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, env={**os.environ, "AIRLOCK_HOME": home})
                startup = lib.wait_port(port, timeout=300, proc=p)
                procs[k] = (p, port, startup)
            for k in CONFIGS:
                p, port, startup = procs[k]
                token = homes[k][1]
                # The first request to a capability opens its session; the next does not.
                first = one_pass(port, token, k[2])
                second = one_pass(port, token, k[2])
                # One more second unmeasured, then wrk.
                lib.wrk(f"http://127.0.0.1:{port}/", 16, "1s", [f"Authorization: Bearer {token}"],
                        script=script, env={**os.environ, "BENCH_CAPS": str(k[2])})
                r = lib.wrk(f"http://127.0.0.1:{port}/", 16, a.duration, [f"Authorization: Bearer {token}"],
                            script=script, env={**os.environ, "BENCH_CAPS": str(k[2])})
                if r["errors"] or r["non2xx"]:
                    raise SystemExit(f"gateway with {k} (services, rules): {r['errors']} socket errors, {r['non2xx']} non-2xx answers")
                runs[k].append({**r, "startup_ms": startup * 1e3, "peak_rss_mib": (lib.peak_rss_kib(p.pid) or 0) / 1024,
                                "first_use_p50_ms": lib.median(first) * 1e3, "first_use_total_s": sum(first),
                                "next_p50_ms": lib.median(second) * 1e3})
        finally:
            for p, *_ in procs.values():
                p.terminate()
                p.wait()
    return {"config_bytes": {c: homes[c][2] for c in CONFIGS}, "runs": runs,
            "median": {k: lib.medians(r) for k, r in runs.items()}}


def key(cfg):
    return f"{cfg[0]} services x {cfg[1]} rules, {cfg[2]} used"


def linearity(factors):
    """Where cost stops growing in proportion to the work: [(work, cost ratio)] -> text."""
    out = []
    for work, r in factors:
        if r > work * 1.25:
            out.append(f"{work}× the work costs {r:.1f}× (worse than linear)")
        elif r < work * 0.8:
            out.append(f"{work}× the work costs {r:.1f}× (better than linear: fixed costs amortized)")
        else:
            out.append(f"{work}× the work costs {r:.1f}× (linear)")
    return "; ".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", default="10s")
    a = ap.parse_args()

    gw = gateway(a)
    sc = bench_scan.scale(a.runs)

    g1 = gw["median"][SCALES[0]]
    grows = []
    for c in CONFIGS:
        k, nr, used = c
        m = gw["median"][c]
        label = (f"{k // 10}×" if k == nr else f"{nr // 10}× rules only" if nr > k else
                 f"{k // 10}× services only" if used == k else f"{k // 10}× services, 1 capability used")
        grows.append([label, f"{k:,}", f"{nr:,}", f"{k * nr:,}", f"{used:,}", f"{gw['config_bytes'][c] / 1024:,.0f}",
                      lib.num(m["rps"]), lib.num(m["p50_ms"]), lib.num(m["p99_ms"]),
                      lib.ratio(g1["rps"], m["rps"]), lib.num(m["startup_ms"]), lib.ratio(m["startup_ms"], g1["startup_ms"]),
                      lib.num(m["peak_rss_mib"], 1), lib.ratio(m["peak_rss_mib"], g1["peak_rss_mib"])])
    fu = []
    for c in CONFIGS:
        if c[2] < 10:
            continue
        m = gw["median"][c]
        fu.append([f"{c[0]:,} services × {c[1]:,} rules", f"{c[2]:,}", lib.num(m["first_use_p50_ms"]), lib.num(m["next_p50_ms"]),
                   lib.ratio(m["first_use_p50_ms"], m["next_p50_ms"]), lib.num(m["first_use_total_s"]),
                   lib.ratio(m["first_use_p50_ms"], g1["first_use_p50_ms"])])
    s1 = sc["median"][1]
    srows = []
    for k in (1, 10, 100):
        m = sc["median"][k]
        files, size = sc["sizes"][k]
        srows.append([f"{k}×", f"{files:,}", f"{size / 2**20:,.0f}", lib.num(m["wall_s"]), lib.ratio(m["wall_s"], s1["wall_s"]),
                      lib.num(m["mb_per_s"]), lib.num(m["files_per_s"]), lib.num(m["peak_rss_mib"], 1)])

    per_req = [(c, g1["rps"] / gw["median"][c]["rps"]) for c in CONFIGS[1:]]
    startup = [(c, gw["median"][c]["startup_ms"] / g1["startup_ms"]) for c in CONFIGS[1:]]
    scan = [(k, sc["median"][k]["wall_s"] / s1["wall_s"]) for k in (10, 100)]
    notes = [
        "Gateway, time per request (1 ÷ req/s) against 1× (10 services × 10 rules) — ideally flat, a request "
        "touches one capability: " + "; ".join(f"{c[0]:,} services × {c[1]:,} rules{'' if c[2] == c[0] else ', one capability used,'} {r:.2f}×" for c, r in per_req) + ".",
        "Gateway start-up (spawn to listening: vault, config, policy) against 1×: "
        + "; ".join(f"{c[0]:,} × {c[1]:,} ({c[0] * c[1] // 100:,}× the rules) {r:.1f}×" for c, r in startup[:4]) + ".",
        f"Scan wall time against the tree size: {linearity(scan)}.",
    ]
    big = SCALES[-1]
    summary = [
        {"measure": f"gateway req/s at 16 conn., {c[0]:,} services × {c[1]:,} rules{'' if c[2] == c[0] else ', one capability used'}", "airlock": lib.num(gw["median"][c]["rps"]),
         "reference": f"10 × 10: {lib.num(g1['rps'])}", "ratio": lib.ratio(gw["median"][c]["rps"], g1["rps"])}
        for c in CONFIGS[1:]
    ] + [
        {"measure": f"gateway first request per capability (opens a session), {big[0]:,} capabilities",
         "airlock": f"{lib.num(gw['median'][big]['first_use_p50_ms'])} ms",
         "reference": f"10: {lib.num(g1['first_use_p50_ms'])} ms", "ratio": lib.ratio(gw["median"][big]["first_use_p50_ms"], g1["first_use_p50_ms"])},
        {"measure": f"gateway start-up, {big[0]:,} services × {big[1]:,} rules", "airlock": f"{lib.num(gw['median'][big]['startup_ms'])} ms",
         "reference": f"10 × 10: {lib.num(g1['startup_ms'])} ms", "ratio": lib.ratio(gw["median"][big]["startup_ms"], g1["startup_ms"])},
        {"measure": f"gateway peak RSS, {big[0]:,} services × {big[1]:,} rules", "airlock": f"{lib.num(gw['median'][big]['peak_rss_mib'], 1)} MiB",
         "reference": f"10 × 10: {lib.num(g1['peak_rss_mib'], 1)} MiB", "ratio": lib.ratio(gw["median"][big]["peak_rss_mib"], g1["peak_rss_mib"])},
    ] + [
        {"measure": f"scan wall time, {k}× the tree", "airlock": f"{lib.num(sc['median'][k]['wall_s'])} s",
         "reference": f"1×: {lib.num(s1['wall_s'])} s", "ratio": lib.ratio(sc["median"][k]["wall_s"], s1["wall_s"])}
        for k in (10, 100)
    ]
    f1, b1 = sc["sizes"][1]
    tables = [
        {"title": f"Gateway at 16 connections ({a.duration} per run, requests rotate over every capability), "
                  f"audit_fsync = \"batch\", medians of {a.runs} runs",
         "columns": ["scale", "services = secrets = capabilities", "rules each", "rules in all", "capabilities used", "airlock.toml KiB", "req/s", "p50 ms", "p99 ms",
                     "time per request ÷ 1×", "start-up ms", "start-up ÷ 1×", "peak RSS MiB", "RSS ÷ 1×"],
         "rows": grows},
        {"title": "First request to each capability (opens its session) against the next one: one connection, one request "
                  f"per capability in turn, on a fresh home; medians of {a.runs} runs",
         "columns": ["configuration", "capabilities", "first request p50 ms", "next request p50 ms", "first ÷ next",
                     "first pass, total s", "first p50 ÷ 1×"],
         "rows": fu},
        {"title": f"`airlock scan` over K copies (hard links) of a {f1:,}-file, {b1 / 2**20:,.1f} MiB tree, warm cache, medians of {a.runs} runs",
         "columns": ["scale", "files", "MiB", "wall s", "wall ÷ 1×", "MB/s", "files/s", "peak RSS MiB"],
         "rows": srows},
    ]
    gw = {part: {key(c): v for c, v in gw[part].items()} for part in gw}  # JSON keys
    lib.write_section("scale", "How cost grows", a.runs, summary, tables, {"gateway": gw, "scan": sc}, notes,
                      params={"runs": a.runs, "duration": a.duration, "configs": CONFIGS, "scan_tree": sc["tree"]})


if __name__ == "__main__":
    main()
