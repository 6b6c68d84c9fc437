"""MCP `execute` over stdio: latency, throughput, memory and cold start of one or
more MCP servers, next to the same calls made directly to the same local upstream,
all in one run (each run measures direct, then every server in turn).

Usage: bench_mcp.py --server "LABEL::CMD ..." [--server ...] [--setup "CMD"]...
                    [--calls N] [--runs R] [--cold K]
`{port}` in --setup and --server commands is replaced by the upstream's port. A
server must speak MCP on stdio with a tool `execute` taking {capability, method,
path}, and know a capability named `bench` for the upstream; bench/mcp/run sets
that up for airlock. Writes the section file `mcp` (see bench/lib.py).
"""

import argparse
import asyncio
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lib  # noqa: E402

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

    def start(self):
        """initialize, initialized, tools/list: returns seconds since spawn."""
        self.call("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}})
        self.notify("notifications/initialized")
        self.call("tools/list")
        return time.perf_counter() - self.t0

    def close(self):
        rss = lib.peak_rss_kib(self.p.pid)
        self.parts = lib.rss_parts_kib(self.p.pid) or {}
        self.p.stdin.close()
        self.p.wait()
        return rss


ARGS = {"name": "execute", "arguments": {"capability": "bench", "method": "GET", "path": "/v1/items"}}


def via_mcp(cmd, env, n):
    c = Client(cmd, env)
    c.start()
    for _ in range(min(50, n)):  # warm the upstream connection pool
        c.call("tools/call", ARGS)
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        r = c.call("tools/call", ARGS)
        lat.append(time.perf_counter() - t)
        if r.get("error") or r["result"].get("isError"):
            raise SystemExit(f"execute failed: {r}")
    rss = c.close()
    return lat, rss, c.parts


def cold_start(cmd, env):
    c = Client(cmd, env)
    t = c.start()
    c.close()
    return t


def stats(lat):
    return {
        "p50_ms": lib.median(lat) * 1e3,
        "p99_ms": lib.pct(lat, 0.99) * 1e3,
        "calls_per_s": len(lat) / sum(lat),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", action="append", required=True, help="LABEL::CMD; {port} is the upstream port")
    ap.add_argument("--setup", action="append", default=[], help="command run once before measuring, {port} replaced")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cold", type=int, default=20, help="spawns for the cold-start median")
    a = ap.parse_args()
    port = start_upstream()
    env = dict(os.environ)
    for s in a.setup:
        subprocess.run(s.replace("{port}", str(port)), shell=True, check=True, env=env)
    servers = []
    for s in a.server:
        label, _, cmd = s.partition("::")
        servers.append((label, shlex.split(cmd.replace("{port}", str(port)))))

    runs = {label: [] for label, _ in servers}
    runs["direct"] = []
    for _ in range(a.runs):
        runs["direct"].append(stats(direct(port, a.calls)))
        for label, cmd in servers:
            lat, rss, parts = via_mcp(cmd, env, a.calls)
            runs[label].append({**stats(lat), "peak_rss_mib": (rss or 0) / 1024,
                                "anon_rss_mib": parts.get("anon", 0) / 1024, "file_rss_mib": parts.get("file", 0) / 1024})
    cold = {label: [] for label, _ in servers}
    for _ in range(a.cold):  # interleaved, like the runs
        for label, cmd in servers:
            cold[label].append(cold_start(cmd, env) * 1e3)

    d = lib.medians(runs["direct"])
    data = {"direct": {**d, "runs": runs["direct"]}}
    rows = [["direct (same client, raw HTTP/1.1)", lib.num(d["p50_ms"]), lib.num(d["p99_ms"]), lib.num(d["calls_per_s"]), "", "", "", "", ""]]
    summary = []
    for label, _ in servers:
        m = lib.medians(runs[label])
        m["cold_start_ms"] = lib.median(cold[label])
        m["added_p50_ms"] = m["p50_ms"] - d["p50_ms"]
        data[label] = {**m, "runs": runs[label], "cold_start_samples_ms": cold[label]}
        rows.append([
            label, lib.num(m["p50_ms"]), lib.num(m["p99_ms"]), lib.num(m["calls_per_s"]),
            lib.num(m["added_p50_ms"]), lib.ratio(m["calls_per_s"], d["calls_per_s"]),
            lib.num(m["peak_rss_mib"], 1), f"{lib.num(m['anon_rss_mib'], 1)} / {lib.num(m['file_rss_mib'], 1)}",
            lib.num(m["cold_start_ms"], 1),
        ])
        summary += [
            {"measure": f"MCP execute p50, {label}", "airlock": f"{lib.num(m['p50_ms'])} ms",
             "reference": f"direct {lib.num(d['p50_ms'])} ms", "ratio": lib.ratio(m["p50_ms"], d["p50_ms"])},
            {"measure": f"MCP execute calls/s, {label}", "airlock": lib.num(m["calls_per_s"]),
             "reference": f"direct {lib.num(d['calls_per_s'])}", "ratio": lib.ratio(m["calls_per_s"], d["calls_per_s"])},
        ]
    first = servers[0][0]
    floors = [label for label, _ in servers if label.startswith("bare MCP server")]
    bare = next((label for label in floors if "fdatasync" not in label), None)
    synced = next((label for label in floors if "fdatasync" in label), None)
    for label, _ in servers:
        # The floors: what airlock adds beyond the SDK, stdio and HTTP client it is
        # built on, and, for "always", beyond them plus one fdatasync per call.
        floor = synced if synced and '"always"' in label else bare
        if floor and label.startswith("airlock"):
            own = data[label]["p50_ms"] - data[floor]["p50_ms"]
            data[label]["own_added_p50_ms"] = own
            summary.append({"measure": f"MCP execute p50 added by airlock itself (over the {floor.split(' (')[0]}), {label}",
                            "airlock": f"{lib.num(own)} ms",
                            "reference": f"that floor added {lib.num(data[floor]['added_p50_ms'])} ms over direct", "ratio": ""})
    for label, _ in servers:
        if not label.startswith("airlock") and label not in floors:  # another server (--mcp-server): against airlock too
            o, f = data[label], data[first]
            summary.append({"measure": f"MCP execute p50, {label}", "airlock": f"{lib.num(o['p50_ms'])} ms",
                            "reference": f"{first} {lib.num(f['p50_ms'])} ms", "ratio": lib.ratio(o["p50_ms"], f["p50_ms"])})
    summary += [
        {"measure": f"MCP server peak RSS, {first}", "airlock": f"{lib.num(data[first]['peak_rss_mib'], 1)} MiB",
         "reference": (f"at the end: {lib.num(data[first]['anon_rss_mib'], 1)} MiB allocated, {lib.num(data[first]['file_rss_mib'], 1)} MiB of mapped files"
                       + (f"; bare MCP server peak {lib.num(data[bare]['peak_rss_mib'], 1)} MiB ({lib.num(data[bare]['anon_rss_mib'], 1)} allocated)" if bare else "")),
         "ratio": ""},
        {"measure": f"MCP cold start (spawn → tools/list answered), {first}", "airlock": f"{lib.num(data[first]['cold_start_ms'], 1)} ms", "reference": "", "ratio": ""},
    ]
    table = {
        "title": f"MCP execute over stdio: {a.calls:,} sequential calls per run, medians of {a.runs} runs; cold start median of {a.cold} spawns",
        "columns": ["server", "p50 ms", "p99 ms", "calls/s", "added p50 ms", "calls/s ÷ direct", "peak RSS MiB",
                    "RSS at the end MiB: allocated / mapped files", "cold start ms"],
        "rows": rows,
    }
    lib.write_section("mcp", "MCP execute over stdio", a.runs, summary, [table], data,
                      params={"calls": a.calls, "runs": a.runs, "cold_spawns": a.cold, "servers": [s for s in a.server]})


if __name__ == "__main__":
    main()
