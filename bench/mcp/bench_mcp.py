"""MCP `execute` over stdio: latency, throughput, memory and cold start, next to
the same calls made directly to the same local upstream, in the same run.

Usage: bench_mcp.py --server "CMD ..." [--calls N] [--runs R] [--json OUT]
The server command must speak MCP on stdio with a tool `execute` and a capability
named `bench` pointing at the upstream; bench/mcp/run sets that up for airlock.
"""

import argparse
import asyncio
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time

BODY = b'{"ok":true,"items":[1,2,3]}'


def start_upstream():
    """A minimal keep-alive HTTP/1.1 server on 127.0.0.1 (asyncio, one thread)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port_box = []

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if length:
                    await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main():
        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_box.append(srv.sockets[0].getsockname()[1])
        ready.set()
        await srv.serve_forever()

    threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True).start()
    ready.wait()
    return port_box[0]


def direct(port, n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = b"GET /v1/items HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer x\r\n\r\n"
    lat = []
    buf = b""
    for _ in range(n):
        t = time.perf_counter()
        s.sendall(req)
        while True:
            buf += s.recv(65536)
            i = buf.find(b"\r\n\r\n")
            if i >= 0 and len(buf) >= i + 4 + len(BODY):
                buf = buf[i + 4 + len(BODY):]
                break
        lat.append(time.perf_counter() - t)
    s.close()
    return lat


def peak_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None


class Client:
    def __init__(self, cmd, env):
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.id = 0

    def call(self, method, params=None):
        self.id += 1
        msg = {"jsonrpc": "2.0", "id": self.id, "method": method}
        if params is not None:
            msg["params"] = params
        self.p.stdin.write(json.dumps(msg).encode() + b"\n")
        self.p.stdin.flush()
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise SystemExit("server closed stdout")
            r = json.loads(line)
            if r.get("id") == self.id:
                return r

    def notify(self, method):
        self.p.stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}).encode() + b"\n")
        self.p.stdin.flush()

    def close(self):
        rss = peak_rss_kib(self.p.pid)
        self.p.stdin.close()
        self.p.wait()
        return rss


def via_mcp(cmd, env, n):
    c = Client(cmd, env)
    c.call("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}})
    c.notify("notifications/initialized")
    c.call("tools/list")
    cold = time.perf_counter() - c.t0
    args = {"name": "execute", "arguments": {"capability": "bench", "method": "GET", "path": "/v1/items"}}
    for _ in range(min(50, n)):  # warm the connection pool
        c.call("tools/call", args)
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        r = c.call("tools/call", args)
        lat.append(time.perf_counter() - t)
        if r["result"].get("isError"):
            raise SystemExit(f"execute failed: {r}")
    rss = c.close()
    return lat, cold, rss


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="server command; {port} is replaced by the upstream port")
    ap.add_argument("--setup", help="command run once with {port} before measuring (configures the server)")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--label", default="airlock")
    ap.add_argument("--json")
    a = ap.parse_args()
    port = start_upstream()
    env = dict(os.environ)
    if a.setup:
        subprocess.run(a.setup.replace("{port}", str(port)), shell=True, check=True, env=env)
    cmd = shlex.split(a.server.replace("{port}", str(port)))
    runs = []
    for _ in range(a.runs):
        d = direct(port, a.calls)
        m, cold, rss = via_mcp(cmd, env, a.calls)
        runs.append({
            "direct_p50_ms": statistics.median(d) * 1e3,
            "direct_p99_ms": pct(d, 0.99) * 1e3,
            "mcp_p50_ms": statistics.median(m) * 1e3,
            "mcp_p99_ms": pct(m, 0.99) * 1e3,
            "calls_per_s": len(m) / sum(m),
            "cold_start_ms": cold * 1e3,
            "peak_rss_mib": (rss or 0) / 1024,
        })
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    med["added_p50_ms"] = med["mcp_p50_ms"] - med["direct_p50_ms"]
    med["label"] = a.label
    med["calls"] = a.calls
    med["runs"] = a.runs
    print(f"| {a.label} | {med['mcp_p50_ms']:.3f} | {med['mcp_p99_ms']:.3f} | {med['direct_p50_ms']:.3f} | {med['added_p50_ms']:.3f} | {med['calls_per_s']:.0f} | {med['peak_rss_mib']:.1f} | {med['cold_start_ms']:.1f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(med, f, indent=2)


if __name__ == "__main__":
    main()
