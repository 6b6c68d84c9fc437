"""Shared helpers for the reliability suites (standard library only, Python 3.11).

Everything runs against a throwaway AIRLOCK_HOME and a local upstream; nothing
touches ~/.airlock or the network. Every process started through this module is
killed when the script exits (normally, by exception, SIGINT or SIGTERM).

API
---
parse_args(description, defaults={...}) -> argparse.Namespace
    Common flags: --bin PATH (default: $AIRLOCK_BIN or target/debug/airlock),
    --full, --seed N, --keep (keep the temporary home). Extra flags: pass an
    `extra(parser)` callback.

Home(bin, init=True)                       a temporary AIRLOCK_HOME (key-file mode)
    .path / .env                           the directory / the environment for airlock
    .run(*args, input=None, env=None, timeout=60) -> Result(rc, out, err, secs)
    .spawn(*args, stdin=None, env=None) -> subprocess.Popen  (tracked; stdout/err to DEVNULL
                                            unless given; pass stdout=PIPE etc. as kwargs)
    .add_service(name, url, key, auth=None) -> Result     `airlock add NAME --cap --url URL --key-from-env`
    .issue_token(agent, ttl="1h", caps=()) -> str          the printed token (raises on failure)
    .serve(gateway=True, http=False, agent=None) -> Server  `airlock serve --gateway 127.0.0.1:0`
    .logs() -> list[dict]                   `airlock logs --json`, one record per line
    .count_kinds() -> collections.Counter   records per "kind" ("request", "audit_repair", ...)
    .verify() -> Result                     `airlock audit verify` (rc 0 = intact)
    .secrets() -> dict[name, dict]          `airlock secret list --json`
    .listing() -> dict                      `airlock list --json` ({"services": [...], "capabilities": [...]})
    .tokens() -> list[dict]                 `airlock token list --json`
    .stray_files() -> list[str]             leftover temp files (".*.tmp") anywhere in the home
    .cleanup()                              stop its servers, remove the directory (unless keep)

Server (from Home.serve)
    .proc, .pid, .gateway_port, .gateway_url, .http_port, .log_path
    .stop(sig=SIGTERM) / .kill() (SIGKILL) / .alive() / .log() -> str (its stderr so far)

Upstream(delay=0.0)                        ThreadingHTTPServer on 127.0.0.1:<free port>
    .url                                   "http://127.0.0.1:PORT"
    .count                                 requests answered
    .auth_counts                           Counter of Authorization header values received
    Answers every method with JSON {"method", "path", "auth_sha256", "body_len",
    "body_sha256"}: auth_sha256 is the hex SHA-256 of the Authorization header it got
    (airlock scrubs the plain value from answers, a hash passes), so a client can check
    `resp_json["auth_sha256"] == sha256_hex("Bearer " + key)`.
    .stop()

Client(port, token, timeout=10)            keep-alive http.client to the gateway
    .request(method, capability, path, body=None, headers=None) -> (status, headers, body)
    Raises OSError / http.client.HTTPException if the connection fails; the next call
    reconnects. .close()

sha256_hex(str|bytes) -> str
free_port() -> int                         a port that was free a moment ago
proc_mem(pid) -> {"VmHWM": kB, "VmRSS": kB}  from /proc/PID/status
wait_port(port, timeout=10, proc=None) -> None  waits until 127.0.0.1:port accepts
kill_all()                                 kill every tracked process (also run at exit)
fail(msg) / check(cond, msg)               record a failed check (printed at once);
failures()                                 the list of failed checks so far
cleanup_keeping_on_failure(home)           home.cleanup(), keeping it when a check failed
verdict(script)                            "SCRIPT: passed", or "SCRIPT: FAILED (N failed checks)" and exit 1
"""

from __future__ import annotations

import argparse
import atexit
import collections
import hashlib
import http.client
import http.server
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_procs: list[subprocess.Popen] = []
_procs_lock = threading.Lock()
_failures: list[str] = []


# ------------------------------------------------------------------ process tracking


def _track(p: subprocess.Popen) -> subprocess.Popen:
    with _procs_lock:
        # Forget finished processes so long runs do not grow the list.
        _procs[:] = [q for q in _procs if q.poll() is None]
        _procs.append(p)
    return p


def kill_all() -> None:
    with _procs_lock:
        procs = list(_procs)
        _procs.clear()
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
    for p in procs:
        try:
            p.wait(timeout=5)
        except Exception:
            pass


def _on_signal(signum, _frame):
    kill_all()
    sys.exit(128 + signum)


atexit.register(kill_all)
for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    try:
        signal.signal(_s, _on_signal)
    except (ValueError, OSError):  # not the main thread
        pass


# ------------------------------------------------------------------ checks


def fail(msg: str) -> None:
    _failures.append(msg)
    print(f"FAIL: {msg}", flush=True)


def check(cond: bool, msg: str) -> bool:
    if not cond:
        fail(msg)
    return bool(cond)


def failures() -> list[str]:
    return list(_failures)


def cleanup_keeping_on_failure(home) -> None:
    """Removes `home`, unless a check has failed (then it is kept to look at)."""
    if _failures:
        home.keep = True
    home.cleanup()


def verdict(script: str) -> None:
    """The end of a suite: exits 1 naming the count of failed checks, or says it passed."""
    if _failures:
        print(f"{script}: FAILED ({len(_failures)} failed checks)", flush=True)
        sys.exit(1)
    print(f"{script}: passed", flush=True)


# ------------------------------------------------------------------ arguments


def default_bin() -> str:
    if os.environ.get("AIRLOCK_BIN"):
        return os.environ["AIRLOCK_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    return os.path.join(target, "debug", "airlock")


def parse_args(description: str, extra=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--bin", default=default_bin(), help="the airlock binary")
    ap.add_argument("--full", action="store_true", help="the long form (default: the short CI form)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary home(s)")
    if extra:
        extra(ap)
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    if not os.access(args.bin, os.X_OK):
        ap.error(f"no airlock binary at {args.bin} (build it or pass --bin)")
    if args.seed is None:
        args.seed = random.randrange(1 << 32)
    random.seed(args.seed)
    print(f"[{os.path.basename(sys.argv[0])}] bin={args.bin} seed={args.seed} full={args.full}", flush=True)
    return args


# ------------------------------------------------------------------ small helpers


def sha256_hex(data) -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited ({proc.returncode}) before port {port} opened")
        if time.monotonic() > deadline:
            raise TimeoutError(f"port {port} did not open within {timeout}s")
        time.sleep(0.01)


def proc_mem(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0])
    return out


@dataclass
class Result:
    rc: int
    out: str
    err: str
    secs: float

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def __str__(self) -> str:
        return f"rc={self.rc} out={self.out.strip()[:300]!r} err={self.err.strip()[:300]!r}"


# ------------------------------------------------------------------ the home


class Home:
    def __init__(self, bin: str, init: bool = True, keep: bool = False, env: dict | None = None):
        self.bin = bin
        self.keep = keep
        self.tmp = tempfile.mkdtemp(prefix="airlock-rel-")
        self.path = os.path.join(self.tmp, "home")
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("AIRLOCK_") and k != "AIRLOCK_LOCK_TIMEOUT_MS":
                del self.env[k]
        self.env["AIRLOCK_HOME"] = self.path
        self.env.setdefault("RUST_BACKTRACE", "1")
        if env:
            self.env.update(env)
        self.servers: list[Server] = []
        if init:
            r = self.run("init")
            if not r.ok:
                raise RuntimeError(f"airlock init failed: {r}")

    # -- running commands

    def _env(self, env):
        if not env:
            return self.env
        e = dict(self.env)
        e.update(env)
        return e

    def run(self, *args, input: str | bytes | None = None, env: dict | None = None, timeout: float = 60) -> Result:
        t0 = time.monotonic()
        if isinstance(input, str):
            input = input.encode()
        p = _track(
            subprocess.Popen(
                [self.bin, *args],
                env=self._env(env),
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
        try:
            out, err = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            return Result(-9, out.decode(errors="replace"), err.decode(errors="replace") + f"\n[timed out after {timeout}s]", time.monotonic() - t0)
        return Result(p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), time.monotonic() - t0)

    def spawn(self, *args, env: dict | None = None, **kw) -> subprocess.Popen:
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        return _track(subprocess.Popen([self.bin, *args], env=self._env(env), **kw))

    # -- common commands

    def add_service(self, name: str, url: str, key: str, auth: str | None = None) -> Result:
        args = ["add", name, "--cap", "--url", url, "--key-from-env", "AIRLOCK_REL_KEY"]
        if auth:
            args += ["--auth", auth]
        return self.run(*args, env={"AIRLOCK_REL_KEY": key})

    def issue_token(self, agent: str, ttl: str = "1h", caps=()) -> str:
        args = ["token", "issue", "--agent", agent, "--ttl", ttl]
        for c in caps:
            args += ["--cap", c]
        r = self.run(*args)
        if not r.ok or not r.out.strip():
            raise RuntimeError(f"token issue failed: {r}")
        return r.out.strip().splitlines()[0].strip()

    def serve(self, gateway: bool = True, http: bool = False, agent: str | None = None, timeout: float = 20) -> "Server":
        s = Server(self, gateway=gateway, http=http, agent=agent, timeout=timeout)
        self.servers.append(s)
        return s

    def logs(self) -> list[dict]:
        r = self.run("logs", "--json", timeout=300)
        if not r.ok:
            raise RuntimeError(f"airlock logs --json failed: {r}")
        return [json.loads(line) for line in r.out.splitlines() if line.strip()]

    @staticmethod
    def request_statuses(records: list[dict]) -> list[tuple[dict, int]]:
        """Each `request` record with the status it ended with: its own `status`
        (refusals, records written before the write-ahead audit) or, for a
        write-ahead decision record, the `status` of the `outcome` record whose
        `of` is its `seq`. A request without an outcome yet gets 0."""
        outcome = {r.get("of"): r.get("status") or 0 for r in records if r.get("kind") == "outcome"}
        return [
            (r, r.get("status") or outcome.get(r.get("seq"), 0))
            for r in records
            if r.get("kind") == "request"
        ]

    def count_kinds(self) -> collections.Counter:
        return collections.Counter(rec.get("kind") for rec in self.logs())

    def verify(self) -> Result:
        return self.run("audit", "verify", timeout=300)

    def secrets(self) -> dict:
        r = self.run("secret", "list", "--json")
        if not r.ok:
            raise RuntimeError(f"airlock secret list --json failed: {r}")
        return {s["name"]: s for s in json.loads(r.out)}

    def listing(self) -> dict:
        r = self.run("list", "--json")
        if not r.ok:
            raise RuntimeError(f"airlock list --json failed: {r}")
        return json.loads(r.out)

    def tokens(self) -> list:
        r = self.run("token", "list", "--json")
        if not r.ok:
            raise RuntimeError(f"airlock token list --json failed: {r}")
        return json.loads(r.out)

    def stray_files(self) -> list[str]:
        out = []
        for d, _dirs, files in os.walk(self.path):
            for f in files:
                if f.endswith(".tmp") or ".tmp." in f:
                    out.append(os.path.relpath(os.path.join(d, f), self.path))
        return out

    def cleanup(self) -> None:
        for s in self.servers:
            s.kill()
        self.servers.clear()
        if self.keep:
            print(f"kept home: {self.path}", flush=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


class Server:
    """`airlock serve --gateway 127.0.0.1:0 [--http 127.0.0.1:0]`; ports read from its stderr."""

    _n = 0

    def __init__(self, home: Home, gateway=True, http=False, agent=None, timeout=20):
        Server._n += 1
        self.home = home
        self.log_path = os.path.join(home.tmp, f"serve-{Server._n}.log")
        args = ["serve"]
        if agent:
            args += ["--agent", agent]
        if gateway:
            args += ["--gateway", "127.0.0.1:0"]
        if http:
            args += ["--http", "127.0.0.1:0"]
        self._log = open(self.log_path, "wb")
        self.proc = home.spawn(*args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        self.pid = self.proc.pid
        self.gateway_port = None
        self.http_port = None
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            if gateway and self.gateway_port is None:
                self.gateway_port = _port_after(text, "gateway on http://127.0.0.1:")
            if http and self.http_port is None:
                self.http_port = _port_after(text, "serving MCP on http://127.0.0.1:")
            if (not gateway or self.gateway_port) and (not http or self.http_port):
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"airlock serve exited ({self.proc.returncode}) before listening: {text[-2000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"airlock serve did not listen within {timeout}s: {text[-2000:]}")
            time.sleep(0.005)
        for port in (self.gateway_port, self.http_port):
            if port:
                wait_port(port, timeout=timeout, proc=self.proc)
        self.gateway_url = f"http://127.0.0.1:{self.gateway_port}" if self.gateway_port else None

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout: float = 10) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> int | None:
        return self.stop(signal.SIGKILL)


def _port_after(text: str, marker: str):
    i = text.find(marker)
    if i < 0:
        return None
    j = i + len(marker)
    k = j
    while k < len(text) and text[k].isdigit():
        k += 1
    return int(text[j:k]) if k > j else None


# ------------------------------------------------------------------ the upstream


class _UpstreamHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):  # quiet
        pass

    def _answer(self):
        up: Upstream = self.server.upstream  # type: ignore[attr-defined]
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        auth = self.headers.get("Authorization") or ""
        if up.delay:
            time.sleep(up.delay)
        with up.lock:
            up.count += 1
            up.auth_counts[auth] += 1
        payload = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "auth_sha256": sha256_hex(auth),
                "body_len": len(body),
                "body_sha256": sha256_hex(body),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client (airlock) that hangs up mid-answer is expected when it is killed.
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class Upstream:
    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.lock = threading.Lock()
        self.count = 0
        self.auth_counts: collections.Counter = collections.Counter()
        self.httpd = _QuietServer(("127.0.0.1", 0), _UpstreamHandler)
        self.httpd.upstream = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ------------------------------------------------------------------ the client


class Client:
    def __init__(self, port: int, token: str, timeout: float = 10):
        self.port = port
        self.token = token
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, capability: str, path: str, body: bytes | None = None, headers: dict | None = None):
        h = {"Authorization": f"Bearer {self.token}"}
        if headers:
            h.update(headers)
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            self.conn.request(method, f"/{capability}{path}", body=body, headers=h)
            resp = self.conn.getresponse()
            data = resp.read()
        except Exception:
            self.close()
            raise
        if resp.will_close:
            self.close()
        return resp.status, dict(resp.getheaders()), data

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None
