"""Exec overhead: `airlock run -- true` vs `true`, and the MCP `exec` tool vs a
direct spawn of the same program, medians of N runs each (interleaved); and the
kernel sandbox's cost: MCP `exec` of `true` confined (capability `t`) vs
unconfined (`tu`, confine = false), `airlock run --confine` vs `airlock run`.
Usage: bench_exec.py N   (AIRLOCK_HOME must hold exec capabilities `t` and `tu`
with commands = ["true"]; BENCH_BIN is the airlock binary).
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

def mcp_exec(i, cap):
    t = time.perf_counter()
    r = call(i, "tools/call", {"name": "exec", "arguments": {"capability": cap, "command": ["true"]}})
    took = time.perf_counter() - t
    assert not r["result"].get("isError"), r
    return took


direct, run, runc, mcp, mcpu = [], [], [], [], []
for i in range(1, n + 1):
    direct.append(timed([true]))
    run.append(timed([bin_, "run", "--", true]))
    runc.append(timed([bin_, "run", "--confine", "--", true]))
    mcp.append(mcp_exec(2 * i, "t"))
    mcpu.append(mcp_exec(2 * i + 1, "tu"))
p.stdin.close()
p.wait()

d, ru, m, rc, mu = (lib.median(x) * 1e3 for x in (direct, run, mcp, runc, mcpu))
rows = [
    ["`true` (direct spawn)", lib.num(d), "", ""],
    ["`airlock run -- true`", lib.num(ru), lib.num(ru - d), lib.ratio(ru, d)],
    ["MCP `exec` of `true` (one call over stdio)", lib.num(m), lib.num(m - d), lib.ratio(m, d)],
    ["MCP `exec` of `true`, confine = false", lib.num(mu), lib.num(mu - d), lib.ratio(mu, d)],
    ["`airlock run --confine -- true`", lib.num(rc), lib.num(rc - d), lib.ratio(rc, d)],
]
sandbox_rows = [
    ["MCP `exec` of `true`", lib.num(mu), lib.num(m), lib.num(m - mu), lib.ratio(m, mu)],
    ["`airlock run -- true`", lib.num(ru), lib.num(rc), lib.num(rc - ru), lib.ratio(rc, ru)],
]
summary = [
    {"measure": "`airlock run -- true`", "airlock": f"{lib.num(ru)} ms", "reference": f"`true` {lib.num(d)} ms", "ratio": lib.ratio(ru, d)},
    {"measure": "MCP `exec` of `true`", "airlock": f"{lib.num(m)} ms", "reference": f"`true` {lib.num(d)} ms", "ratio": lib.ratio(m, d)},
    {"measure": "kernel sandbox, MCP `exec` of `true` (target ≤ +1 ms)", "airlock": f"{lib.num(m)} ms confined",
     "reference": f"{lib.num(mu)} ms unconfined (+{lib.num(m - mu)} ms)", "ratio": lib.ratio(m, mu)},
]
lib.write_section(
    "exec", "Exec overhead", n, summary,
    [{"title": f"Exec overhead, medians of {n} runs (audit_fsync = \"always\")",
      "columns": ["measure", "median ms", "added ms", "÷ direct"], "rows": rows},
     {"title": f"Kernel sandbox (Landlock + seccomp) overhead, medians of {n} runs, same run",
      "columns": ["measure", "unconfined ms", "confined ms", "added ms", "ratio"], "rows": sandbox_rows}],
    {"direct_ms": direct, "run_ms": run, "run_confine_ms": runc, "mcp_exec_ms": mcp, "mcp_exec_unconfined_ms": mcpu,
     "median_ms": {"direct": d, "run": ru, "run_confine": rc, "mcp_exec": m, "mcp_exec_unconfined": mu}},
)
