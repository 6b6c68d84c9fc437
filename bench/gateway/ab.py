#!/usr/bin/env python3
"""Two airlock binaries on the gateway path, interleaved: A B A B ... on the same
nginx upstream, each with a home of its own (same config), so a change of build
settings (profile, opt-level, features) is judged within one run on a noisy
machine. Reports per binary the median req/s, p50, and the server's CPU time per
request (user + system from /proc, less sensitive to other load than req/s).

Usage: bench/gateway/ab --bin A --bin B [--conns 16] [--rounds 5]
                        [--duration 10s] [--fsync batch]
(the wrapper starts nginx on a free port and passes --upstream). Needs wrk and
nginx (bench/run installs both).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lib  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK_TCK  # utime, stime


def make_home(binary, home, upstream, fsync):
    env = {**os.environ, "AIRLOCK_HOME": home, "BENCH_KEY": "sk_test_bench_0123456789abcdef"}
    subprocess.run([binary, "add", "bench", "--cap", "--url", f"http://127.0.0.1:{upstream}", "--key-from-env", "BENCH_KEY"],
                   env=env, check=True, capture_output=True)
    cfg = os.path.join(home, "airlock.toml")
    lines = [x for x in open(cfg).read().splitlines() if not x.strip().startswith("audit_fsync")]
    if "[server]" in lines:
        lines.insert(lines.index("[server]") + 1, f'audit_fsync = "{fsync}"')
    else:
        lines = ["[server]", f'audit_fsync = "{fsync}"', ""] + lines
    open(cfg, "w").write("\n".join(lines) + "\n")
    token = subprocess.run([binary, "token", "issue", "--agent", "bench", "--ttl", "1d"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    return env, token


def one_run(binary, env, token, conns, duration):
    port = lib.free_port()
    p = subprocess.Popen([binary, "serve", "--gateway", f"127.0.0.1:{port}"], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        lib.wait_port(port, proc=p)
        url = f"http://127.0.0.1:{port}/bench/v1/items"
        lib.wrk(url, conns, "1s", [f"Authorization: Bearer {token}"])  # warm-up
        before = cpu_seconds(p.pid)
        r = lib.wrk(url, conns, duration, [f"Authorization: Bearer {token}"])
        r["cpu_us_per_req"] = (cpu_seconds(p.pid) - before) * 1e6 / max(r["requests"], 1)
        return r
    finally:
        p.terminate()
        p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", action="append", required=True)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", default="10s")
    ap.add_argument("--fsync", default="batch", choices=["batch", "always"])
    ap.add_argument("--upstream", type=int, required=True, help="nginx's port (bench/gateway/ab starts it)")
    a = ap.parse_args()
    if len(a.bin) != 2:
        ap.error("give exactly two --bin")
    up = a.upstream
    runs = [[], []]
    with tempfile.TemporaryDirectory(prefix="airlock-ab-") as work:
        homes = []
        for i, b in enumerate(a.bin):
            home = os.path.join(work, f"home-{i}")
            os.makedirs(home, mode=0o700)
            homes.append(make_home(os.path.abspath(b), home, up, a.fsync))
        for _ in range(a.rounds):
            for i, b in enumerate(a.bin):
                runs[i].append(one_run(os.path.abspath(b), *homes[i], a.conns, a.duration))
    med = [{k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "cpu_us_per_req")} for rs in runs]
    print(f"{a.rounds} rounds, {a.conns} connections, {a.duration} each, audit_fsync {a.fsync}, "
          f"load average {os.getloadavg()[0]:.1f}")
    for i, b in enumerate(a.bin):
        size = os.path.getsize(b)
        print(f"  {chr(65 + i)} {b} ({size:,} bytes): {med[i]['rps']:,.0f} req/s, p50 {med[i]['p50_ms']:.3f} ms, "
              f"server CPU {med[i]['cpu_us_per_req']:.1f} µs/request")
    print(f"  B/A: req/s {med[1]['rps'] / med[0]['rps']:.3f}, p50 {med[1]['p50_ms'] / med[0]['p50_ms']:.3f}, "
          f"CPU per request {med[1]['cpu_us_per_req'] / med[0]['cpu_us_per_req']:.3f}")


if __name__ == "__main__":
    main()
