"""Exec overhead: `airlock run -- true` vs `true`, and the MCP `exec` tool vs a
direct spawn of the same program, medians of N runs in one process.
Usage: bench_exec.py AIRLOCK_BIN [N]  (AIRLOCK_HOME must hold capability `t` with
commands = ["true"] and mode = "exec")."""
import json, os, statistics, subprocess, sys, time

bin_, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100
true = subprocess.run(["sh", "-c", "command -v true"], capture_output=True, text=True).stdout.strip()

def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t

direct = [timed([true]) for _ in range(n)]
run = [timed([bin_, "run", "--", true]) for _ in range(n)]

p = subprocess.Popen([bin_, "serve", "--agent", "bench"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
def call(i, method, params):
    p.stdin.write((json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n").encode()); p.stdin.flush()
    while True:
        r = json.loads(p.stdout.readline())
        if r.get("id") == i:
            return r
call(0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "b", "version": "1"}})
p.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n'); p.stdin.flush()
mcp = []
for i in range(1, n + 1):
    t = time.perf_counter()
    r = call(i, "tools/call", {"name": "exec", "arguments": {"capability": "t", "command": ["true"]}})
    mcp.append(time.perf_counter() - t)
    assert not r["result"].get("isError"), r
p.stdin.close(); p.wait()

ms = lambda xs: statistics.median(xs) * 1e3
print("| measure | median ms | added ms |")
print("|---|---|---|")
print(f"| `true` (direct spawn) | {ms(direct):.2f} | |")
print(f"| `airlock run -- true` | {ms(run):.2f} | {ms(run) - ms(direct):.2f} |")
print(f"| MCP `exec` of `true` (one call over stdio) | {ms(mcp):.2f} | {ms(mcp) - ms(direct):.2f} |")
