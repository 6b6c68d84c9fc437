"""Interop: stock HTTPS clients, unchanged, under `airlock run --proxy`.

Python `requests`, `urllib`, `httpx` (the `httpx2` the OpenAI SDK ships on) and the
official OpenAI SDK, Node 20's `fetch` through undici's `EnvHttpProxyAgent`, and
git over smart HTTP(S) with its askpass flow each run as the program of
`airlock run --proxy`, holding only the placeholder airlock gives them. The
upstream is a local HTTPS server with its own CA, which airlock trusts for that
service only (`ca_file`); the clients trust the session CA through the variables
the run sets (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`,
`GIT_SSL_CAINFO`).

Checked for every client: its request arrives with the real key and never the
placeholder, it reads the answer (the echoed key redacted), the program's
environment never held the key. Then a client that puts its placeholder in another
header trips the wire: refused, the run's next request refused too, on record.

Usage: python run_proxy_clients.py PATH/TO/airlock [PATH/TO/node_modules]
Exits non-zero on the first failed check; prints "N passed, 0 failed" at the end.
"""

import base64
import datetime
import http.server
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading

for name in list(os.environ):
    if name.startswith("OPENAI_") or name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        del os.environ[name]

from common import AIRLOCK, airlock, arm_watchdog, check, send_json, summary  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

KEY = "sk-proj-runproxy" + os.urandom(16).hex()
WS_KEY = "sk-ws-runproxy" + os.urandom(16).hex()
NODE_MODULES = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None


def make_ca_and_leaf(dir):
    """A test CA and a leaf for 127.0.0.1 it signed; returns (ca.pem, leaf.pem, leaf.key)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "interop test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = [os.path.join(dir, n) for n in ("upstream-ca.pem", "leaf.pem", "leaf.key")]
    with open(paths[0], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as f:
        f.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(paths[2], "wb") as f:
        f.write(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


class Upstream(http.server.BaseHTTPRequestHandler):
    """Answers every request with what it got: the client, the Authorization header."""

    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *args):
        pass

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rec = {
            "method": self.command,
            "path": self.path,
            "headers": [(k.lower(), v) for k, v in self.headers.items()],
            "body": body.decode(errors="replace"),
        }
        self.seen.append(rec)
        if self.path.startswith("/v1/models"):
            out = {"object": "list", "data": [{"id": "m-1", "object": "model", "created": 0, "owned_by": self.headers.get("Authorization", "")}]}
        else:
            out = {"client": self.headers.get("X-Client", ""), "authorization": self.headers.get("Authorization", "")}
        send_json(self, 200, out)

    do_GET = answer
    do_POST = answer


class GitServer(http.server.BaseHTTPRequestHandler):
    """git's smart HTTP through `git http-backend` (CGI), behind Basic auth:
    user `x-access-token`, the key as the password."""

    protocol_version = "HTTP/1.0"
    root = ""
    seen = []

    def log_message(self, *args):
        pass

    def serve(self):
        self.seen.append([(k.lower(), v) for k, v in self.headers.items()])
        want = "Basic " + base64.b64encode(f"x-access-token:{KEY}".encode()).decode()
        if self.headers.get("Authorization") != want:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = dict(
            os.environ,
            GIT_PROJECT_ROOT=self.root,
            GIT_HTTP_EXPORT_ALL="1",
            PATH_INFO=path,
            QUERY_STRING=query,
            REQUEST_METHOD=self.command,
            CONTENT_TYPE=self.headers.get("Content-Type", ""),
            CONTENT_LENGTH=str(len(body)),
            REMOTE_USER="x-access-token",
        )
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = serve
    do_POST = serve


def start_upstream(leaf, key, handler=None):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler or Upstream)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(leaf, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


PY_CLIENT = r'''
import json, os, sys, urllib.request
import requests, httpx2, openai
base = sys.argv[1]
key = os.environ["OPENAI_API_KEY"]
out = {"key_prefix": key[:11], "held": key}
r = requests.get(base + "/v1/echo", headers={"Authorization": "Bearer " + key, "X-Client": "requests"}, timeout=20)
out["requests"] = [r.status_code, r.json()]
req = urllib.request.Request(base + "/v1/echo", headers={"Authorization": "Bearer " + key, "X-Client": "urllib"})
with urllib.request.urlopen(req, timeout=20) as resp:
    out["urllib"] = [resp.status, json.loads(resp.read())]
with httpx2.Client(timeout=20) as c:
    r = c.post(base + "/v1/echo", headers={"Authorization": "Bearer " + key, "X-Client": "httpx"}, json={"q": 1})
    out["httpx"] = [r.status_code, r.json()]
client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=20)
models = client.models.list()
out["openai"] = [200, models.data[0].owned_by]
print(json.dumps(out))
'''

NODE_CLIENT = r'''
const { EnvHttpProxyAgent, setGlobalDispatcher } = require("undici");
setGlobalDispatcher(new EnvHttpProxyAgent());
(async () => {
  const r = await fetch(process.argv[1] + "/v1/echo", {
    headers: { authorization: "Bearer " + process.env.OPENAI_API_KEY, "x-client": "undici" },
  });
  console.log(JSON.stringify([r.status, await r.json()]));
})().catch((e) => { console.error(String(e && e.cause || e)); process.exit(1); });
'''

LEAKY_CLIENT = r'''
import os, sys, requests
base = sys.argv[1]
key = os.environ["OPENAI_API_KEY"]
r = requests.get(base + "/v1/echo", headers={"X-Debug": key}, timeout=20)
print("LEAK", r.status_code)
try:
    r = requests.get(base + "/v1/echo", timeout=20)
    print("AFTER", r.status_code)
except requests.exceptions.ProxyError as e:
    # A new tunnel: its CONNECT is refused.
    print("AFTER", "403" if "403" in str(e) else e)
'''


WS_CLIENT = r'''
import json, os, sys
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
token = os.environ["WS_TOKEN"]
out = {"key_prefix": token[:11]}
with connect(sys.argv[1], additional_headers={"Authorization": "Bearer " + token}, open_timeout=20) as ws:
    ws.send("hello")
    out["hello"] = ws.recv(timeout=20)
    ws.send("echo-key")
    out["echo"] = ws.recv(timeout=20)
    ws.send("leak " + token)
    try:
        out["leak"] = ws.recv(timeout=20)
    except ConnectionClosed as e:
        out["leak"] = ["closed", e.rcvd.code if e.rcvd else None]
print(json.dumps(out))
'''


def start_ws_upstream(leaf, leaf_key, seen):
    """A TLS WebSocket server (the websockets library): "got MSG" for each text
    message, the key itself for "echo-key"; records handshakes and messages."""
    from websockets.sync.server import serve

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(leaf, leaf_key)

    def handler(ws):
        seen.append({"headers": [(k.lower(), v) for k, v in ws.request.headers.raw_items()], "messages": []})
        for msg in ws:
            seen[-1]["messages"].append(msg)
            ws.send("key=" + WS_KEY if msg == "echo-key" else "got " + msg)

    server = serve(handler, "127.0.0.1", 0, ssl=ctx)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.socket.getsockname()[1]


def main():
    arm_watchdog("run --proxy clients", 240)
    with tempfile.TemporaryDirectory() as tmp:
        home = os.path.join(tmp, "home")
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        ca, leaf, leaf_key = make_ca_and_leaf(tmp)
        port = start_upstream(leaf, leaf_key)
        base = f"https://127.0.0.1:{port}"
        airlock(home, "add", "openai", "--url", base, "--key-from-env", "KEY", "--no-cap", env={"KEY": KEY})
        toml = os.path.join(home, "airlock.toml")
        with open(toml) as f:
            text = f.read()
        text = text.replace("[services.openai]\n", f'[services.openai]\nca_file = "{ca}"\n', 1)
        with open(toml, "w") as f:
            f.write(text)
        python = sys.executable
        commands = ["--command", python, "--command", "node", "--command", "git"]
        airlock(home, "cap", "add", "clients", "--service", "openai", "--mode", "exec", *commands, "--env", "OPENAI_API_KEY={{secret}}")

        def run(*cmd, env=None):
            e = dict(os.environ, AIRLOCK_HOME=home, **(env or {}))
            return subprocess.run([AIRLOCK, "run", "--proxy", "--cap", "clients", "--", *cmd], env=e, cwd=work, capture_output=True, text=True, timeout=120)

        def upstream_got_key_only(since, what):
            recs = Upstream.seen[since:]
            check(len(recs) > 0, f"{what}: the upstream got the requests")
            for r in recs:
                auths = [v for k, v in r["headers"] if k == "authorization"]
                check(auths == [f"Bearer {KEY}"], f"{what}: {r['method']} {r['path']} carried the real key, once")
                check("airlock_ph_" not in json.dumps(r), f"{what}: {r['method']} {r['path']} carried no placeholder")

        # Python: requests, urllib, httpx, the OpenAI SDK.
        seen = len(Upstream.seen)
        p = run(python, "-c", PY_CLIENT, base)
        check(p.returncode == 0, f"python clients ran: {p.stderr[-2000:]}")
        out = json.loads(p.stdout)
        check(out["key_prefix"] == "airlock_ph_", "the program held a placeholder")
        check(KEY not in p.stdout and KEY not in p.stderr, "the key is in none of the program's output")
        for client in ("requests", "urllib", "httpx"):
            status, body = out[client]
            check(status == 200 and body["client"] == client, f"{client} reached the service through the proxy")
            check(body["authorization"] == "Bearer [REDACTED:openai]", f"{client}: the echoed key came back redacted")
        check(out["openai"] == [200, "Bearer [REDACTED:openai]"], "the OpenAI SDK listed models through the proxy")
        upstream_got_key_only(seen, "python clients")

        # Node 20: fetch through undici's EnvHttpProxyAgent.
        if NODE_MODULES:
            seen = len(Upstream.seen)
            p = run("node", "-e", NODE_CLIENT, base, env={"NODE_PATH": NODE_MODULES})
            check(p.returncode == 0, f"node fetch ran: {p.stderr[-2000:]}")
            status, body = json.loads(p.stdout)
            check(status == 200 and body["client"] == "undici", "Node's fetch (undici EnvHttpProxyAgent) reached the service")
            check(body["authorization"] == "Bearer [REDACTED:openai]", "undici: the echoed key came back redacted")
            upstream_got_key_only(seen, "node")

        # git over smart HTTPS: the askpass flow answers with the placeholder,
        # the proxy puts the key in its place.
        repos = os.path.join(tmp, "repos")
        os.makedirs(repos)
        src = os.path.join(tmp, "src")
        git_env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
        for args in (["init", "-q", "-b", "main", src], ["-C", src, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "--allow-empty", "-m", "hello from the server"], ["clone", "-q", "--bare", src, os.path.join(repos, "repo.git")]):
            subprocess.run(["git", *args], env=git_env, check=True, capture_output=True)
        GitServer.root = repos
        git_port = start_upstream(leaf, leaf_key, GitServer)
        git_url = f"https://127.0.0.1:{git_port}"
        airlock(home, "add", "gitsrv", "--url", git_url, "--auth", "basic", "--username", "x-access-token", "--key-from-env", "KEY", "--no-cap", env={"KEY": KEY})
        with open(toml) as f:
            text = f.read()
        with open(toml, "w") as f:
            f.write(text.replace("[services.gitsrv]\n", f'[services.gitsrv]\nca_file = "{ca}"\n', 1))
        airlock(home, "cap", "add", "gitcap", "--service", "gitsrv", "--mode", "exec", "--command", "git", "--env", "GH_TOKEN={{secret}}")
        e = dict(git_env, AIRLOCK_HOME=home)
        p = subprocess.run([AIRLOCK, "run", "--proxy", "--", "git", "clone", "-q", f"{git_url}/repo.git", "cloned"], env=e, cwd=work, capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, f"git clone through the proxy: {p.stderr[-2000:]}")
        log = subprocess.run(["git", "-C", os.path.join(work, "cloned"), "log", "--format=%s"], capture_output=True, text=True).stdout
        check(log.strip() == "hello from the server", "git cloned the repository")
        want = "Basic " + base64.b64encode(f"x-access-token:{KEY}".encode()).decode()
        for heads in GitServer.seen:
            check(dict(heads).get("authorization") == want, "git's request reached the server with the real key")
            check("airlock_ph_" not in json.dumps(heads), "and no placeholder")

        # A WebSocket client (the websockets library, through HTTPS_PROXY):
        # the handshake gets the key in the placeholder's place, messages are
        # relayed and scrubbed, and a message carrying the placeholder is
        # refused (1008) and trips the wire.
        ws_seen = []
        ws_port = start_ws_upstream(leaf, leaf_key, ws_seen)
        airlock(home, "add", "wsapi", "--url", f"https://127.0.0.1:{ws_port}", "--key-from-env", "KEY", "--no-cap", env={"KEY": WS_KEY})
        with open(toml) as f:
            text = f.read()
        with open(toml, "w") as f:
            f.write(text.replace("[services.wsapi]\n", f'[services.wsapi]\nca_file = "{ca}"\n', 1))
        airlock(home, "cap", "add", "wscap", "--service", "wsapi", "--mode", "exec", "--command", python, "--env", "WS_TOKEN={{secret}}")
        e = dict(os.environ, AIRLOCK_HOME=home)
        p = subprocess.run([AIRLOCK, "run", "--proxy", "--cap", "wscap", "--", python, "-c", WS_CLIENT, f"wss://127.0.0.1:{ws_port}/v1/stream"], env=e, cwd=work, capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, f"the websockets client ran: {p.stderr[-2000:]}")
        out = json.loads(p.stdout)
        check(out["key_prefix"] == "airlock_ph_", "websockets: the program held a placeholder")
        check(out["hello"] == "got hello", "websockets: a message went both ways through the proxy")
        check(out["echo"] == "key=[REDACTED:wsapi]", "websockets: the echoed key came back redacted")
        check(out["leak"] == ["closed", 1008], f"websockets: the message with the placeholder closed the connection (1008): {out['leak']}")
        check(len(ws_seen) == 1, "websockets: one handshake reached the upstream")
        auths = [v for k, v in ws_seen[0]["headers"] if k == "authorization"]
        check(auths == [f"Bearer {WS_KEY}"], "websockets: the handshake carried the real key, once")
        check(ws_seen[0]["messages"] == ["hello", "echo-key"], "websockets: the leaking message never reached the upstream")
        check("airlock_ph_" not in json.dumps(ws_seen), "websockets: no placeholder reached the upstream")
        logs = airlock(home, "logs", "--json").stdout
        check("WebSocket opened" in logs, "airlock logs shows the WebSocket")
        check("a WebSocket message: placeholder trip wire" in logs, "airlock logs shows the trip in a message")
        check(WS_KEY not in logs and WS_KEY not in p.stdout + p.stderr, "websockets: the key is in no log or output")

        # A program that puts its placeholder in another header trips the wire.
        seen = len(Upstream.seen)
        p = run(python, "-c", LEAKY_CLIENT, base)
        check("LEAK 403" in p.stdout, f"the leaking request was refused: {p.stdout} {p.stderr[-1000:]}")
        check("AFTER 403" in p.stdout, "the run's next request was refused too (session revoked)")
        check("placeholder trip wire" in p.stderr, "the run said so on stderr")
        check(len(Upstream.seen) == seen, "the upstream saw nothing of it")
        logs = airlock(home, "logs", "--json").stdout
        check('placeholder trip wire' in logs and 'header \\"x-debug\\"' in logs, "airlock logs shows the trip")
        check(KEY not in logs, "the key is not in the log")
        airlock(home, "audit", "verify")
        check(True, "the audit chain verifies")
    summary()


if __name__ == "__main__":
    main()
