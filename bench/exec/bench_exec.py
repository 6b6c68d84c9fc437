"""Exec overhead: `airlock run -- true` vs `true`, and the MCP `exec` tool vs a
direct spawn of the same program, medians of N runs each (interleaved).
Usage: bench_exec.py N   (AIRLOCK_HOME must hold capability `t` with
commands = ["true"] and mode = "exec"; BENCH_BIN is the airlock binary).
Writes the section `exec`."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lib  # noqa: E402

bin_, n = os.environ["BENCH_BIN"], int(sys.argv[1])
true = subprocess.run(["sh", "-c", "command -v true"], capture_output=True, text=True).stdout.strip()


def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


p = subprocess.Popen([bin_, "serve", "--agent", "bench"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def call(i, method, params):
    p.stdin.write((json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n").encode())
    p.stdin.flush()
    while True:
        r = json.loads(p.stdout.readline())
        if r.get("id") == i:
            return r


call(0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "b", "version": "1"}})
p.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
p.stdin.flush()

direct, run, mcp = [], [], []
for i in range(1, n + 1):
    direct.append(timed([true]))
    run.append(timed([bin_, "run", "--", true]))
    t = time.perf_counter()
    r = call(i, "tools/call", {"name": "exec", "arguments": {"capability": "t", "command": ["true"]}})
    mcp.append(time.perf_counter() - t)
    assert not r["result"].get("isError"), r
p.stdin.close()
p.wait()

d, ru, m = (lib.median(x) * 1e3 for x in (direct, run, mcp))
rows = [
    ["`true` (direct spawn)", lib.num(d), "", ""],
    ["`airlock run -- true`", lib.num(ru), lib.num(ru - d), lib.ratio(ru, d)],
    ["MCP `exec` of `true` (one call over stdio)", lib.num(m), lib.num(m - d), lib.ratio(m, d)],
]
summary = [
    {"measure": "`airlock run -- true`", "airlock": f"{lib.num(ru)} ms", "reference": f"`true` {lib.num(d)} ms", "ratio": lib.ratio(ru, d)},
    {"measure": "MCP `exec` of `true`", "airlock": f"{lib.num(m)} ms", "reference": f"`true` {lib.num(d)} ms", "ratio": lib.ratio(m, d)},
]
lib.write_section(
    "exec", "Exec overhead", n, summary,
    [{"title": f"Exec overhead, medians of {n} runs (audit_fsync = \"always\")",
      "columns": ["measure", "median ms", "added ms", "÷ direct"], "rows": rows}],
    {"direct_ms": direct, "run_ms": run, "mcp_exec_ms": mcp, "median_ms": {"direct": d, "run": ru, "mcp_exec": m}},
)
