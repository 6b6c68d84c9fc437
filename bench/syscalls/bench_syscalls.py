"""System calls per MCP `execute` call in steady state. For each home (one per
audit_fsync setting), `airlock serve` runs under `strace -f -c` twice: once for a
short session (start-up, 50 warm-up calls) and once for the same plus N calls;
the difference of the counts, divided by N, is the per-call cost by system call.

Usage: bench_syscalls.py --home LABEL::HOME [--home ...] [--calls N]
Each HOME is created here with a capability `bench` for a local upstream.
Writes the section `syscalls`.
"""

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "mcp"))
import lib  # noqa: E402
import bench_mcp  # noqa: E402

BIN = os.environ["BENCH_BIN"]
WATCH = ["futex", "write", "read", "epoll_wait", "fdatasync", "fsync", "statx", "flock",
         "openat", "sendto", "recvfrom", "writev"]


def counts(home, n):
    """strace -c counts by system call for a session of start-up + 50 + n calls."""
    env = {**os.environ, "AIRLOCK_HOME": home}
    with tempfile.NamedTemporaryFile(suffix=".strace", delete=False) as f:
        out = f.name
    cmd = ["strace", "-f", "-c", "-o", out, BIN, "serve", "--agent", "bench"]
    c = bench_mcp.Client(cmd, env)
    c.start()
    for _ in range(50 + n):
        r = c.call("tools/call", bench_mcp.ARGS)
        if r.get("error") or r["result"].get("isError"):
            raise SystemExit(f"execute failed: {r}")
    c.close()
    got = {}
    with open(out) as f:
        for line in f:
            parts = line.split()
            # % time, seconds, usecs/call, calls, [errors], syscall
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                try:
                    got[parts[-1]] = int(parts[3])
                except ValueError:
                    pass
    os.unlink(out)
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", action="append", required=True, help="LABEL::HOME")
    ap.add_argument("--calls", type=int, default=2000)
    a = ap.parse_args()
    up = bench_mcp.start_upstream()
    rows, summary, data = [], [], {}
    for spec in a.home:
        label, home = spec.split("::", 1)
        env = {**os.environ, "AIRLOCK_HOME": home, "BENCH_KEY": "sk_test_bench_0123456789abcdef"}
        subprocess.run([BIN, "add", "bench", "--cap", "--url", f"http://127.0.0.1:{up}", "--key-from-env", "BENCH_KEY"],
                       env=env, capture_output=True, check=True)
        subprocess.run(["bash", "-c", f". bench/lib.sh && set_fsync {home} {label}"], check=True)
        short, long = counts(home, 0), counts(home, a.calls)
        per = {k: (long.get(k, 0) - short.get(k, 0)) / a.calls for k in set(long) | set(short)}
        per = {k: v for k, v in per.items() if v > 0.005}
        data[label] = {"per_call": per, "short": short, "long": long}
        total = sum(per.values())
        for k in sorted(per, key=lambda k: -per[k]):
            rows.append([label, k, f"{per[k]:.2f}"])
        rows.append([label, "all", f"{total:.1f}"])
        summary.append({"measure": f"system calls per MCP execute, audit_fsync = \"{label}\"",
                        "airlock": f"{total:.1f}",
                        "reference": ", ".join(f"{k} {per.get(k, 0):.1f}" for k in ["futex", "statx", "flock", "fdatasync"]),
                        "ratio": ""})
    tables = [{"title": f"System calls per MCP `execute` call in steady state (strace -f -c, sessions of 50 and {50 + a.calls} calls, difference ÷ {a.calls})",
               "columns": ["audit_fsync", "system call", "per call"], "rows": rows}]
    lib.write_section("syscalls", "System calls per call", 1, summary, tables, data,
                      params={"calls": a.calls, "watch": WATCH})


if __name__ == "__main__":
    main()
