"""Hostile peers for the reliability suites (standard library only, Python 3.11).

Complements common.py (which it does not repeat): an upstream that misbehaves on
purpose, a raw HTTP/1.1 client that reads exactly what came back (and notices a
cut stream), and bounded clients for MCP over stdio and over HTTP. Every wait here
has a deadline: a peer that hangs is reported as a timeout, never waited on forever.

HostileUpstream(secret_echo=True)       raw TCP server on 127.0.0.1; the request path's
                                        first segment under the base picks the behaviour
                                        (see BEHAVIOURS); .url, .seen_auth (Counter),
                                        .sent_bytes[behaviour], .count, .stop()
read_response(sock, deadline, keep=...) -> RawResponse
raw_exchange(port, data, timeout, ...)  -> RawResponse (connect, send, read)
McpStdio(home, agent, log_path)         `airlock serve --agent` with a JSON-RPC client
McpHttp(port, token)                    streamable-HTTP MCP client (initialize, call)
leak_forms(secret) -> list[bytes]       the secret in plain, base64, base64url, hex
"""

from __future__ import annotations

import base64
import collections
import http.client
import json
import os
import select
import socket
import struct
import subprocess
import threading
import time

MiB = 1 << 20

# What each path segment makes the upstream do. Every misbehaving answer carries
# the Authorization header it received (the credential airlock injected), so an
# error path that echoes upstream bytes would leak it.
BEHAVIOURS = {
    "ok": "a normal 200 JSON answer (keep-alive)",
    "echo": "200 whose body and a header contain the received Authorization value",
    "garbage": "non-HTTP bytes, then close",
    "close-mid-headers": "half a response head, then close",
    "reset": "a TCP reset instead of an answer",
    "huge-header": "one 1 MiB response header",
    "many-headers": "20,000 small response headers",
    "bad-status": "an unparsable status line",
    "endless-chunked": "200 chunked, chunks forever",
    "endless-close": "200 without framing, bytes until close, forever",
    "huge-length": "200 with Content-Length: 10 TiB",
    "slow-head": "no answer at all until the client gives up",
    "stall-body": "a head and 10 bytes, then nothing",
    "bad-chunked": "200 chunked with a non-hex chunk size",
    "bad-chunked-mid": "200 chunked, one good chunk, then a bad size",
    "short-body": "Content-Length: 1000, 10 bytes, then close",
}


def leak_forms(secret: str) -> list[bytes]:
    s = secret.encode()
    return [
        s,
        base64.b64encode(s),
        base64.urlsafe_b64encode(s).rstrip(b"="),
        s.hex().encode(),
        s.hex().upper().encode(),
    ]


def contains_leak(data: bytes, forms: list[bytes]) -> bool:
    return any(f in data for f in forms)


# ------------------------------------------------------------------ hostile upstream


class HostileUpstream:
    """A raw HTTP/1.1 server whose answer depends on the request path.

    The path is `<base>/<behaviour>[/...]`; the behaviour is the first segment that
    names one in BEHAVIOURS (so any base path works)."""

    def __init__(self, secret_echo: bool = True, endless_cap: int = 512 * MiB):
        self.secret_echo = secret_echo
        self.endless_cap = endless_cap  # an "endless" body stops after this much, whatever happens
        self.lock = threading.Lock()
        self.count = 0
        self.seen_auth: collections.Counter = collections.Counter()
        self.sent_bytes: collections.Counter = collections.Counter()
        self.behaviours_seen: collections.Counter = collections.Counter()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self._conns = [c for c in self._conns if c.fileno() >= 0]
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read_head(self, conn: socket.socket, buf: bytearray):
        while b"\r\n\r\n" not in buf:
            if len(buf) > 1 * MiB:
                return None
            chunk = conn.recv(65536)
            if not chunk:
                return None
            buf += chunk
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        buf[:] = rest
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length") or 0)
        while len(buf) < n:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            buf += chunk
        del buf[:n]
        return parts[0], (parts[1] if len(parts) > 1 else "/"), headers

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        buf = bytearray()
        try:
            while not self._stop.is_set():
                req = self._read_head(conn, buf)
                if req is None:
                    return
                method, target, headers = req
                auth = headers.get("authorization", "")
                segs = [s for s in target.split("?")[0].split("/") if s]
                behaviour = next((s for s in segs if s in BEHAVIOURS), "ok")
                with self.lock:
                    self.count += 1
                    self.seen_auth[auth] += 1
                    self.behaviours_seen[behaviour] += 1
                keep = self._answer(conn, behaviour, method, target, auth)
                if not keep:
                    return
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _send(self, conn: socket.socket, behaviour: str, data: bytes) -> None:
        conn.sendall(data)
        with self.lock:
            self.sent_bytes[behaviour] += len(data)

    def _until_hangup(self, conn: socket.socket, seconds: float) -> None:
        """Reads (and drops) until the peer hangs up, the upstream stops or `seconds` pass."""
        conn.settimeout(1)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                if conn.recv(4096) == b"":
                    break
            except socket.timeout:
                continue

    def _answer(self, conn, behaviour, method, target, auth) -> bool:
        echo = auth.encode("latin-1") if self.secret_echo else b"no-echo"
        if behaviour in ("ok", "echo"):
            body = json.dumps({"ok": True, "path": target, "auth_len": len(auth)}).encode()
            extra = b""
            if behaviour == "echo":
                body = b'{"echo":"' + echo + b'","b64":"' + base64.b64encode(echo) + b'"}'
                extra = b"X-Echo: " + echo + b"\r\n"
            self._send(
                conn,
                behaviour,
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + extra
                + b"Content-Length: %d\r\n\r\n" % len(body)
                + body,
            )
            return True
        if behaviour == "garbage":
            self._send(conn, behaviour, b"\x00\x01\xfe\xffSSH-2.0-not-http " + echo + b"\r\n\x7f\x00garbage" * 100)
            return False
        if behaviour == "close-mid-headers":
            self._send(conn, behaviour, b"HTTP/1.1 200 OK\r\nContent-Type: appli")
            return False
        if behaviour == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if behaviour == "huge-header":
            pad = b"h" * (1 * MiB)
            self._send(
                conn,
                behaviour,
                b"HTTP/1.1 200 OK\r\nX-Huge: " + echo + pad + b"\r\nContent-Length: 2\r\n\r\nok",
            )
            return False
        if behaviour == "many-headers":
            hdrs = b"".join(b"X-H%d: %s\r\n" % (i, echo) for i in range(20000))
            self._send(conn, behaviour, b"HTTP/1.1 200 OK\r\n" + hdrs + b"Content-Length: 2\r\n\r\nok")
            return False
        if behaviour == "bad-status":
            self._send(conn, behaviour, b"HTTP/1.1 2x0 " + echo + b"\r\nContent-Length: 2\r\n\r\nok")
            return False
        if behaviour in ("endless-chunked", "endless-close"):
            chunked = behaviour == "endless-chunked"
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            head += b"Transfer-Encoding: chunked\r\n\r\n" if chunked else b"Connection: close\r\n\r\n"
            self._send(conn, behaviour, head)
            block = (echo + b" endless ") * (65536 // (len(echo) + 9) + 1)
            block = block[:65536]
            frame = (b"%x\r\n" % len(block) + block + b"\r\n") if chunked else block
            sent = 0
            while sent < self.endless_cap and not self._stop.is_set():
                self._send(conn, behaviour, frame)  # raises once airlock hangs up
                sent += len(frame)
            return False
        if behaviour == "huge-length":
            self._send(
                conn,
                behaviour,
                b"HTTP/1.1 200 OK\r\nContent-Length: 10995116277760\r\n\r\n" + echo + b"x" * 65536,
            )
            return False
        if behaviour == "slow-head":
            # Say nothing until airlock hangs up (bounded: 60 s).
            self._until_hangup(conn, 60)
            with self.lock:
                self.sent_bytes[behaviour] += 0
            return False
        if behaviour == "stall-body":
            self._send(conn, behaviour, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
            self._until_hangup(conn, 120)
            return False
        bad_chunks = {
            "bad-chunked": b"ZZ" + echo + b"\r\nhello\r\n0\r\n\r\n",
            "bad-chunked-mid": b"5\r\nhello\r\nQQ;" + echo + b"\r\nxx\r\n0\r\n\r\n",
        }
        if behaviour in bad_chunks:
            self._send(conn, behaviour, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + bad_chunks[behaviour])
            return False
        if behaviour == "short-body":
            self._send(conn, behaviour, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + echo[:10])
            return False
        raise AssertionError(behaviour)


# ------------------------------------------------------------------ raw HTTP client


class RawResponse:
    def __init__(self):
        self.status: int | None = None
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.body = b""  # the first `keep` bytes of the (de-chunked) body
        self.body_len = 0  # every body byte received
        self.complete = False  # the framing says the body ended where it should
        self.closed = False  # the peer closed the connection
        self.error: str | None = None  # "timeout", "reset", "parse: ..."
        self.raw = bytearray()  # the first `keep` bytes as received
        self.secs = 0.0

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def message(self) -> str:
        """The first line of airlock's error message (JSON error body) or of the body."""
        try:
            j = json.loads(self.body.decode())
            if isinstance(j, dict):
                e = j.get("error")
                if isinstance(e, dict) and "message" in e:
                    return str(e["message"]).splitlines()[0]
                if "message" in j:
                    return str(j["message"]).splitlines()[0]
        except (ValueError, UnicodeDecodeError):
            pass
        text = self.body.decode("utf-8", "replace").strip()
        return text.splitlines()[0] if text else ""

    def summary(self) -> str:
        if self.status is None:
            return f"no answer ({self.error or ('closed' if self.closed else '?')})"
        s = f"{self.status}"
        if not self.complete:
            # A partial body is not a message: say how much came and how it ended.
            return s + f" + body cut after {self.body_len} B ({self.error or 'connection closed'})"
        msg = self.message()
        if msg:
            s += f" {msg[:150]}"
        elif not self.body_len:
            s += " (empty body)"
        return s


def read_response(sock: socket.socket, deadline: float, keep: int = 1 * MiB, head_only=False) -> RawResponse:
    """Reads one HTTP/1.1 response; never waits past `deadline`."""
    r = RawResponse()
    t0 = time.monotonic()
    buf = bytearray()

    def fill() -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            r.error = "timeout"
            return False
        sock.settimeout(min(left, 5.0))
        try:
            chunk = sock.recv(262144)
        except socket.timeout:
            if time.monotonic() >= deadline:
                r.error = "timeout"
                return False
            return True
        except ConnectionResetError:
            r.error = "connection reset"
            r.closed = True
            return False
        except OSError as e:
            r.error = f"socket error: {e}"
            r.closed = True
            return False
        if not chunk:
            r.closed = True
            return False
        if len(r.raw) < keep:
            r.raw += chunk[: keep - len(r.raw)]
        buf.extend(chunk)
        return True

    def body_bytes(data: bytes) -> None:
        r.body_len += len(data)
        if len(r.body) < keep:
            r.body += data[: keep - len(r.body)]

    try:
        while b"\r\n\r\n" not in buf:
            if not fill():
                r.secs = time.monotonic() - t0
                return r
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        buf[:] = rest
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        try:
            r.status = int(parts[1])
        except (IndexError, ValueError):
            r.error = f"parse: bad status line {lines[0][:80]!r}"
            return r
        r.reason = parts[2] if len(parts) > 2 else ""
        for line in lines[1:]:
            k, _, v = line.partition(":")
            r.headers.append((k.strip(), v.strip()))
        if head_only:
            return r
        te = (r.header("transfer-encoding") or "").lower()
        cl = r.header("content-length")
        if r.status in (204, 304) or 100 <= r.status < 200:
            r.complete = True
        elif "chunked" in te:
            while True:
                while b"\r\n" not in buf:
                    if not fill():
                        return r
                line, _, rest = bytes(buf).partition(b"\r\n")
                buf[:] = rest
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    r.error = f"parse: bad chunk size {line[:40]!r}"
                    return r
                if size == 0:
                    while b"\r\n\r\n" not in b"\r\n" + bytes(buf):
                        if not fill():
                            return r
                    r.complete = True
                    break
                # Count the chunk as it arrives (a huge chunk is never buffered whole).
                remaining = size
                while True:
                    take = min(len(buf), remaining)
                    body_bytes(bytes(buf[:take]))
                    del buf[:take]
                    remaining -= take
                    if remaining == 0:
                        break
                    if not fill():
                        return r
                while len(buf) < 2:
                    if not fill():
                        return r
                if bytes(buf[:2]) != b"\r\n":
                    r.error = "parse: chunk not followed by CRLF"
                    return r
                del buf[:2]
        elif cl is not None:
            n = int(cl)
            while True:
                take = min(len(buf), n - r.body_len)
                body_bytes(bytes(buf[:take]))
                del buf[:take]
                if r.body_len >= n:
                    r.complete = True
                    break
                if not fill():
                    return r
        else:
            while True:
                body_bytes(bytes(buf))
                buf.clear()
                if not fill():
                    r.complete = r.closed and r.error is None
                    return r
        return r
    finally:
        r.secs = time.monotonic() - t0


def raw_exchange(port: int, data: bytes, timeout: float = 10.0, keep: int = 1 * MiB) -> RawResponse:
    """Connects, sends `data` (a whole request, or garbage) and reads one answer."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError as e:
            # The server may answer and close before it read everything.
            r = read_response(s, deadline, keep)
            if r.status is None:
                r.error = f"send failed: {e}; {r.error or ''}"
            return r
        return read_response(s, deadline, keep)


def request_bytes(method: str, target: str, token: str | None, headers: dict | None = None, body: bytes = b"") -> bytes:
    h = {"Host": "127.0.0.1"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    if body:
        h["Content-Length"] = str(len(body))
    if headers:
        h.update(headers)
    out = f"{method} {target} HTTP/1.1\r\n".encode()
    for k, v in h.items():
        out += k.encode("latin-1") + b": " + (v if isinstance(v, bytes) else v.encode("latin-1")) + b"\r\n"
    return out + b"\r\n" + body


# ------------------------------------------------------------------ MCP over stdio


class McpStdio:
    """`airlock serve --agent NAME` on pipes, with deadline-bounded reads."""

    def __init__(self, home, agent: str, log_path: str):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc: subprocess.Popen = home.spawn(
            "serve", "--agent", agent, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log
        )
        self.pid = self.proc.pid
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buf = bytearray()
        self.next_id = 1
        self.all_stdout = bytearray()

    def stderr(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send_raw(self, data: bytes, timeout: float = 30.0) -> str | None:
        """Writes to the server's stdin from a thread; returns an error or None."""
        err: list[str] = []

        def w():
            try:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError) as e:
                err.append(f"write failed: {e}")

        t = threading.Thread(target=w, daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            return f"write of {len(data)} bytes did not complete within {timeout}s"
        return err[0] if err else None

    def send(self, msg: dict) -> str | None:
        return self.send_raw(json.dumps(msg).encode() + b"\n")

    def read_line(self, deadline: float) -> bytes | None:
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], min(left, 1.0))
            if not r:
                continue
            try:
                chunk = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                return None  # EOF
            self.all_stdout += chunk[: max(0, 4 * MiB - len(self.all_stdout))]
            self.buf += chunk
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf[:] = rest
        return line

    def collect_until(self, want_id, deadline: float):
        """Reads messages until the one with id `want_id`; returns (it or None, others)."""
        others = []
        while True:
            line = self.read_line(deadline)
            if line is None:
                return None, others
            try:
                msg = json.loads(line)
            except ValueError:
                others.append({"_not_json": line[:200].decode(errors="replace")})
                continue
            if isinstance(msg, dict) and msg.get("id") == want_id and ("result" in msg or "error" in msg):
                return msg, others
            others.append(msg)

    def request(self, method: str, params: dict | None = None, timeout: float = 15.0):
        i = self.next_id
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": i, "method": method}
        if params is not None:
            msg["params"] = params
        err = self.send(msg)
        if err:
            return None, [{"_write_error": err}]
        return self.collect_until(i, time.monotonic() + timeout)

    def initialize(self) -> dict | None:
        resp, _ = self.request(
            "initialize",
            {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "reliability", "version": "1"}},
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return resp

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def tool_result(resp: dict | None) -> tuple[bool | None, str]:
    """(is_error, text) of a tools/call answer; (None, why) when it is not one."""
    if resp is None:
        return None, "no answer"
    if "error" in resp:
        e = resp["error"]
        return None, f"JSON-RPC error {e.get('code')}: {e.get('message')}"
    r = resp.get("result") or {}
    content = r.get("content") or [{}]
    return bool(r.get("isError")), str(content[0].get("text", ""))


# ------------------------------------------------------------------ MCP over HTTP


class McpHttp:
    """A minimal streamable-HTTP MCP client (POST /mcp, SSE or JSON answers)."""

    def __init__(self, port: int, token: str, timeout: float = 15.0):
        self.port = port
        self.token = token
        self.timeout = timeout
        self.session: str | None = None
        self.next_id = 1

    def post_raw(self, body: bytes, headers: dict | None = None, want_id=None):
        """POSTs `body`; returns (status, headers, message-or-None, text)."""
        h = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        if self.session:
            h["Mcp-Session-Id"] = self.session
        if headers:
            h.update(headers)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request("POST", "/mcp", body=body, headers={k: v for k, v in h.items() if v is not None})
            resp = conn.getresponse()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            ctype = hdrs.get("content-type", "")
            if "text/event-stream" in ctype:
                # Read events until the answer to want_id (the stream may stay open).
                text = []
                while True:
                    line = resp.readline(1 << 20)
                    if not line:
                        break
                    line = line.decode(errors="replace").rstrip("\r\n")
                    text.append(line)
                    if line.startswith("data:"):
                        try:
                            msg = json.loads(line[5:].strip())
                        except ValueError:
                            continue
                        if want_id is None or msg.get("id") == want_id:
                            return resp.status, hdrs, msg, "\n".join(text)
                return resp.status, hdrs, None, "\n".join(text)
            data = resp.read(4 * MiB)
            try:
                msg = json.loads(data)
            except ValueError:
                msg = None
            return resp.status, hdrs, msg, data.decode(errors="replace")
        finally:
            conn.close()

    def call(self, method: str, params: dict | None = None):
        i = self.next_id
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": i, "method": method}
        if params is not None:
            msg["params"] = params
        return self.post_raw(json.dumps(msg).encode(), want_id=i)

    def initialize(self):
        st, hdrs, msg, text = self.call(
            "initialize",
            {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "reliability", "version": "1"}},
        )
        self.session = hdrs.get("mcp-session-id")
        self.post_raw(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode())
        return st, msg, text
