"""Interop: the official MCP Python SDK drives `airlock serve` over stdio and over
streamable HTTP — initialize, tools/list, execute against a local upstream.

Usage: python mcp_sdk_client.py PATH/TO/airlock
Exits non-zero on the first failed check; prints "N passed, 0 failed" at the end.
"""

import asyncio
import http.server
import json
import os
import re
import subprocess
import tempfile
import threading

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from common import AIRLOCK, airlock, check, send_json, summary

SECRET = "sk_test_interop_" + os.urandom(8).hex()


class Upstream(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_GET(self):
        Upstream.seen.append((self.path, self.headers.get("Authorization")))
        send_json(self, 200, {"path": self.path, "echo": self.headers.get("Authorization")})

    def log_message(self, *args):
        pass


def tool_text(result):
    return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def exercise(session, label):
    init = await session.initialize()
    check(init.server_info.name == "airlock", f"{label}: initialize names the server airlock")
    tools = {t.name: t for t in (await session.list_tools()).tools}
    check({"list_services", "execute", "whoami", "explain_access"} <= set(tools), f"{label}: tools/list has the four tools")
    check("capability" in json.dumps(tools["execute"].input_schema), f"{label}: execute has a JSON schema")
    listed = json.loads(tool_text(await session.call_tool("list_services", {})))
    check(any(c["capability"] == "echo" for c in listed["capabilities"]), f"{label}: list_services shows the capability")
    before = len(Upstream.seen)
    res = await session.call_tool("execute", {"capability": "echo", "method": "GET", "path": "/v1/items", "query": {"limit": 2}})
    check(not res.is_error, f"{label}: execute succeeds")
    out = json.loads(tool_text(res))
    check(out["status"] == 200, f"{label}: upstream status comes back")
    check(Upstream.seen[before:] == [("/api/v1/items?limit=2", f"Bearer {SECRET}")], f"{label}: upstream got the injected credential at the normalized path")
    check(SECRET not in json.dumps(out) and "[REDACTED:echo]" in out["body"], f"{label}: the echoed key is redacted")
    res = await session.call_tool("execute", {"capability": "echo", "method": "GET", "path": "/v1/../../etc"})
    check(res.is_error and "refused by the path check" in tool_text(res), f"{label}: a path escaping the root is a tool error naming the check")


async def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    home = tempfile.mkdtemp(prefix="airlock-interop-")
    airlock(home, "add", "echo", "--cap", "--url", f"http://127.0.0.1:{port}/api", "--key-from-env", "K", env={"K": SECRET})

    # stdio
    params = StdioServerParameters(command=AIRLOCK, args=["serve", "--agent", "python-sdk"], env={"AIRLOCK_HOME": home, "PATH": os.environ.get("PATH", "")})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await exercise(session, "stdio")
            who = json.loads(tool_text(await session.call_tool("whoami", {})))
            check(who["agent"] == "python-sdk" and who["trusted"], "stdio: whoami reports the trusted --agent identity")

    # streamable HTTP with an agent token
    token = json.loads(airlock(home, "token", "issue", "--agent", "http-sdk", "--json").stdout)["token"]
    proc = subprocess.Popen([AIRLOCK, "serve", "--http", "127.0.0.1:0"], env=dict(os.environ, AIRLOCK_HOME=home), stderr=subprocess.PIPE, text=True)
    try:
        addr = None
        for _ in range(10):
            m = re.search(r"http://([0-9.]+:\d+)/mcp", proc.stderr.readline())
            if m:
                addr = m.group(1)
                break
        check(addr is not None, "http: the server prints its address")
        client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with client:
            async with streamable_http_client(f"http://{addr}/mcp", http_client=client) as (read, write):
                async with ClientSession(read, write) as session:
                    await exercise(session, "http")
                    who = json.loads(tool_text(await session.call_tool("whoami", {})))
                    check(who["agent"] == "http-sdk" and who["trusted"], "http: whoami reports the token's agent")
    finally:
        proc.terminate()
        proc.wait()
    server.shutdown()

    # everything was audited, and the chain verifies
    logs = [json.loads(line) for line in airlock(home, "logs", "--json").stdout.splitlines()]
    check(sum(1 for r in logs if r["kind"] == "request") == 4, "every execute is in the audit log")
    check("intact" in airlock(home, "audit", "verify").stdout, "audit verify: intact")
    summary()


asyncio.run(main())
