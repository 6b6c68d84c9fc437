#!/usr/bin/env python3
"""Bad input: hostile upstreams, hostile agents, malformed MCP — airlock must answer
each with a clear error and keep serving.

One home with a service "svc" whose upstream is hostile.HostileUpstream (the path
picks the misbehaviour; every misbehaving answer carries the credential airlock
injected, so an error path that echoes upstream bytes would leak it). The service
has `timeout = "2s"`, `max_request_bytes = "1MiB"`, `max_response_bytes = "1MiB"`.
One `airlock serve --gateway --http` process serves the gateway and MCP over HTTP;
a second, `airlock serve --agent tester`, serves MCP over stdio.

Groups of cases:
  upstream    through the gateway: garbage, a close mid-headers, a reset, a 1 MiB
              header, 20,000 headers, a bad status line, endless bodies (chunked
              and close-delimited), a 10 TiB Content-Length, an upstream slower than
              the service timeout, invalid chunked encoding, a short body
  upstream/mcp the same upstreams through MCP `execute` (buffered answers)
  agent       hostile gateway clients: slowloris on the gateway and the MCP HTTP
              door, huge headers, endless request bodies, malformed HTTP; a
              connection flood up to the server's descriptor limit
  mcp-stdio   a 20 MiB line, not JSON, wrong types, unknown method and tool,
              missing id, batches, 100k-deep nesting, invalid UTF-8
  mcp-http    a huge and an endless body, malformed JSON, wrong types, nesting,
              invalid UTF-8, wrong content type, no token, unknown method

After EVERY case one normal request goes through the same door (gateway: GET
through the same server; MCP: a `tools/call execute`) and must succeed. A case that
hangs is cut at its deadline and fails. At the end: no response and no server
stderr holds the canary key (plain, base64, hex), no stderr shows a panic, the
upstream only ever saw the injected credential (never the agent token), both
servers are alive, and `airlock audit verify` passes.

Each case also counts the `request` audit records it added: a request airlock
itself answered (an upstream error, its own refusal) must leave exactly one; one
that hyper refused before airlock saw it (malformed HTTP) leaves none. A missing
or extra record fails the case (DESIGN.md §7.5: every decision is audited).

The HTTP doors' own limits (airlock_gateway::listen, docs/gateway.md) are hard
checks: slowloris and idle connections closed within the 10 s header-read timeout
(+ slack), a request body refused at the service's max_request_bytes while it is
read, a malformed request body answered 400, a connection flood up to the
descriptor limit not locking out a normal request.

Two checks are hard failures, not findings: a request with both Content-Length
and Transfer-Encoding whose trailing bytes are served as a second request
(request smuggling), and an MCP stdio line that should get a JSON-RPC error but
gets no answer at all (a dropped line).

Verdicts: PASS; FAIL (fails the run); FINDING (a missing protection worth fixing
that the suite reports without failing). Findings are listed at the end with the
evidence.
"""

from __future__ import annotations

import json
import os
import resource
import select
import socket
import sys
import threading
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import hostile  # noqa: E402
from hostile import MiB  # noqa: E402

SECRET = "sk_live_CANARY_7c1d9e2f4a6b8c0d2e4f6a8b"
CAP = "svc"
SVC_TIMEOUT = 2.0
REQ_LIMIT = 1 * MiB
RESP_LIMIT = 1 * MiB
GATEWAY_MAX_BODY = 32 * MiB  # airlock_gateway::MAX_BODY
# airlock_gateway::listen::HEADER_READ_TIMEOUT: a request head (or, on an idle
# keep-alive connection, the next one) must arrive within it.
HEADER_READ_TIMEOUT = 10.0
# How late after the timeout a connection may be seen closed (scheduling, the
# 1 s trickle period of the slowloris loop, a loaded CI machine).
CLOSE_SLACK = 3.0
MCP_HTTP_MAX_BODY = 1 * MiB  # airlock_mcp::HttpOptions::default().max_body_bytes
# What loopback socket buffers can hold beyond what the server read.
BUFFER_SLACK = 16 * MiB

PASS, FAIL, FINDING = "PASS", "FAIL", "FINDING"


class Outcome:
    def __init__(self, answer: str, ok: bool, note: str = "", finding: str | None = None):
        self.answer = answer
        self.ok = ok
        self.note = note
        self.finding = finding


def audit_requests(home) -> int:
    """`request` records in the home's audit log (read directly: cheap per case)."""
    d = os.path.join(home.path, "audit")
    n = 0
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if name.endswith(".jsonl"):
            with open(os.path.join(d, name), "rb") as f:
                n += sum(1 for line in f if b'"kind":"request"' in line)
    return n


class Suite:
    def __init__(self, args, home):
        self.args = args
        self.home = home
        self.rows: list[dict] = []
        self.outputs: list[bytes] = []  # everything airlock sent back, for the leak check
        self.findings: list[tuple[str, str]] = []
        self.forms = hostile.leak_forms(SECRET)
        # Probes that failed in a row, per door: after 3 the door is dead and its
        # remaining cases are not run (each would wait out its deadline).
        self.dead: dict[str, int] = {}

    def keep(self, data) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        self.outputs.append(bytes(data))

    def run(self, group: str, name: str, fn, probe, timeout: float, audit: int | None = None) -> None:
        """Runs one case (bounded by `timeout`), then the door's normal request.

        `audit`: how many `request` records the case itself must add (None: not
        checked). Every decision is audited (DESIGN.md §7.5); a refusal the
        gateway makes without a record is reported as a finding."""
        door = probe.__name__
        if self.dead.get(door, 0) >= 3:
            self.rows.append(
                {"group": group, "case": name, "answer": "not run: the door stopped serving", "verdict": FAIL,
                 "serving": "NO", "secs": 0.0, "note": "", "audit": 0}
            )
            common.fail(f"{group} / {name}: not run, {door} failed 3 times in a row")
            return
        box: list = []
        t0 = time.monotonic()
        audit_before = audit_requests(self.home)

        def target():
            try:
                box.append(fn())
            except Exception as e:  # the test's own error: a failure, with the trace
                box.append(Outcome(f"test error: {type(e).__name__}: {e}", False, traceback.format_exc(limit=3)))

        t = threading.Thread(target=target, daemon=True)
        t.start()
        t.join(timeout)
        secs = time.monotonic() - t0
        if t.is_alive():
            out = Outcome(f"HUNG: no outcome within {timeout:.0f}s", False)
        else:
            out = box[0]
        time.sleep(0.05)
        audited = audit_requests(self.home) - audit_before
        if audit is not None and audited != audit:
            gap = (
                f"audited {audited} request record(s), expected {audit}"
                + (": a decision airlock made without an audit record (DESIGN.md §7.5: every decision, allowed or denied, is audited)" if audited < audit else "")
            )
            out.ok = False
            out.note = f"{out.note}; {gap}" if out.note else gap
        serving, probe_msg = probe()
        self.dead[door] = 0 if serving else self.dead.get(door, 0) + 1
        if not out.ok or not serving:
            verdict = FAIL
        elif out.finding:
            verdict = FINDING
            self.findings.append((f"{group} / {name}", out.finding))
        else:
            verdict = PASS
        row = {
            "group": group,
            "case": name,
            "answer": out.answer.replace("\n", " "),
            "verdict": verdict,
            "serving": "yes" if serving else f"NO ({probe_msg})",
            "secs": secs,
            "note": out.note,
            "audit": audited,
        }
        self.rows.append(row)
        print(
            f"  {verdict:7} {group:12} {name[:44]:44} {secs:5.1f}s  serving={row['serving']:3}  audit+{audited}  {row['answer'][:150]}",
            flush=True,
        )
        if verdict == FAIL:
            common.fail(f"{group} / {name}: {out.answer}" + (f" ({out.note})" if out.note else "") + ("" if serving else f"; not serving after it: {probe_msg}"))

    def table(self) -> None:
        print()
        print("| group | case | what airlock answered | still serving | audit records | verdict |")
        print("|---|---|---|---|---|---|")
        for r in self.rows:
            ans = r["answer"].replace("|", "\\|")
            if len(ans) > 170:
                ans = ans[:167] + "..."
            print(f"| {r['group']} | {r['case']} | {ans} | {r['serving']} | {r['audit']} | {r['verdict']} |")
        print()


# ------------------------------------------------------------------ helpers


def set_service_limits(home) -> None:
    cfg = os.path.join(home.path, "airlock.toml")
    text = open(cfg).read()
    anchor = f'auth = {{ type = "bearer", secret = "{CAP}" }}'
    if anchor not in text:
        raise RuntimeError(f"cannot find {anchor!r} in airlock.toml:\n{text}")
    text = text.replace(
        anchor,
        anchor + f'\ntimeout = "{SVC_TIMEOUT:.0f}s"\nmax_request_bytes = "1MiB"\nmax_response_bytes = "1MiB"',
    )
    with open(cfg, "w") as f:
        f.write(text)


def stream_request_body(port: int, head: bytes, frame: bytes, max_bytes: int, timeout: float):
    """Sends `head`, then `frame` repeatedly until the server answers, the connection
    fails, or `max_bytes` were sent. Returns (RawResponse, body bytes sent)."""
    deadline = time.monotonic() + timeout
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(head)
        s.setblocking(False)
        sent = 0
        pending = memoryview(frame)
        send_error = None
        while sent < max_bytes and time.monotonic() < deadline:
            r, w, _ = select.select([s], [s], [], 1.0)
            if r:
                break
            if w:
                try:
                    n = s.send(pending)
                except BlockingIOError:
                    continue
                except OSError as e:
                    send_error = e
                    break
                sent += n
                pending = pending[n:]
                if not pending:
                    pending = memoryview(frame)
        s.setblocking(True)
        resp = hostile.read_response(s, max(deadline, time.monotonic() + 5))
        if resp.status is None and send_error:
            resp.error = f"send failed ({send_error}); {resp.error or ''}"
        return resp, sent
    finally:
        s.close()


def mcp_text_json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


# ------------------------------------------------------------------ main


def main() -> int:
    args = common.parse_args(
        "airlock bad-input reliability suite",
        extra=lambda ap: ap.add_argument(
            "--slowloris-seconds",
            type=float,
            default=None,
            help=f"how long at most to hold slowloris connections (default {HEADER_READ_TIMEOUT + CLOSE_SLACK + 2:.0f}: the header-read timeout and slack; 45 with --full)",
        ),
    )
    t_start = time.monotonic()
    hold = args.slowloris_seconds if args.slowloris_seconds is not None else (45.0 if args.full else HEADER_READ_TIMEOUT + CLOSE_SLACK + 2)
    home = common.Home(args.bin, keep=args.keep)
    suite = Suite(args, home)
    up = hostile.HostileUpstream()
    mcp = None
    try:
        r = home.add_service(CAP, up.url + "/base", SECRET)
        if not r.ok:
            raise RuntimeError(f"add service: {r}")
        set_service_limits(home)
        token = home.issue_token("tester", ttl="2h")
        server = home.serve(gateway=True, http=True)
        gport, hport = server.gateway_port, server.http_port
        mcp = hostile.McpStdio(home, "tester", os.path.join(home.tmp, "mcp-stdio.log"))
        init = mcp.initialize()
        if not init or "result" not in init:
            raise RuntimeError(f"MCP stdio initialize failed: {init}; stderr: {mcp.stderr()[-1000:]}")
        mhttp = hostile.McpHttp(hport, token)
        st, msg, text = mhttp.initialize()
        if st != 200 or not msg or "result" not in msg:
            raise RuntimeError(f"MCP HTTP initialize failed: {st} {text[:500]}")
        print(
            f"badinput: gateway :{gport}, MCP HTTP :{hport}, MCP stdio pid {mcp.pid}, upstream {up.url}; "
            f"service timeout {SVC_TIMEOUT:.0f}s, max_request/response_bytes 1 MiB",
            flush=True,
        )

        # ---- the probes: one normal request through the same door
        def gateway_probe():
            if not server.alive():
                return False, f"server exited rc={server.proc.returncode}"
            try:
                st, _, body = common.Client(gport, token, timeout=10).request("GET", CAP, "/ok/probe")
            except Exception as e:
                return False, f"{type(e).__name__}: {e}"
            suite.keep(body)
            j = mcp_text_json(body.decode(errors="replace"))
            if st != 200 or not j or j.get("ok") is not True:
                return False, f"{st} {body[:120]!r}"
            return True, "200"

        def stdio_probe():
            if not mcp.alive():
                return False, f"MCP stdio server exited rc={mcp.proc.returncode}"
            resp, others = mcp.request(
                "tools/call",
                {"name": "execute", "arguments": {"capability": CAP, "method": "GET", "path": "/ok/probe"}},
                timeout=15,
            )
            suite.keep(json.dumps(resp) + json.dumps(others))
            is_err, text = hostile.tool_result(resp)
            j = mcp_text_json(text) if is_err is False else None
            if not j or j.get("status") != 200:
                return False, f"{is_err} {text[:150]}"
            return True, "200"

        def http_probe():
            if not server.alive():
                return False, f"server exited rc={server.proc.returncode}"
            try:
                st, _, msg, text = mhttp.call(
                    "tools/call",
                    {"name": "execute", "arguments": {"capability": CAP, "method": "GET", "path": "/ok/probe"}},
                )
            except Exception as e:
                return False, f"{type(e).__name__}: {e}"
            suite.keep(text)
            is_err, t = hostile.tool_result(msg)
            j = mcp_text_json(t) if is_err is False else None
            if st != 200 or not j or j.get("status") != 200:
                return False, f"{st} {is_err} {t[:150]}"
            return True, "200"

        ok0 = [gateway_probe(), stdio_probe(), http_probe()]
        if not all(o for o, _ in ok0):
            raise RuntimeError(f"a door does not work before any hostile input: {ok0}")

        # ================================================================ upstream (gateway)
        print("upstream (through the gateway):", flush=True)

        def gw_get(behaviour, timeout=20.0):
            rr = hostile.raw_exchange(gport, hostile.request_bytes("GET", f"/{CAP}/{behaviour}", token), timeout=timeout)
            suite.keep(rr.raw)
            return rr

        def expect_status(behaviour, want, timeout=20.0, max_secs=None):
            def case():
                rr = gw_get(behaviour, timeout)
                ok = rr.status == want and bool(rr.message())
                note = ""
                if not rr.message() and rr.status == want:
                    note = "no error message in the body"
                if max_secs is not None and rr.secs > max_secs:
                    ok = False
                    note = f"answered after {rr.secs:.1f}s, more than {max_secs:.1f}s"
                return Outcome(rr.summary() + f" ({rr.secs:.1f}s)", ok, note)

            return case

        for b in ("garbage", "close-mid-headers", "reset", "huge-header", "many-headers", "bad-status", "huge-length"):
            suite.run("upstream", f"{b}: {hostile.BEHAVIOURS[b]}", expect_status(b, 502), gateway_probe, 30, audit=1)
        suite.run(
            "upstream",
            f"slow-head: silent past the {SVC_TIMEOUT:.0f}s timeout",
            expect_status("slow-head", 504, timeout=SVC_TIMEOUT + 15, max_secs=SVC_TIMEOUT + 5),
            gateway_probe,
            SVC_TIMEOUT + 20,
            audit=1,
        )

        def endless(b):
            def case():
                before = up.sent_bytes[b]
                rr = gw_get(b, timeout=30)
                time.sleep(0.5)  # let the upstream thread notice the hang-up
                upstream_sent = up.sent_bytes[b] - before
                cut = rr.status is not None and 200 <= rr.status < 300 and not rr.complete
                ok = (rr.status == 502) or (cut and rr.body_len <= RESP_LIMIT + 64 * 1024)
                note = f"upstream wrote {upstream_sent / MiB:.1f} MiB before airlock hung up"
                if upstream_sent > RESP_LIMIT + BUFFER_SLACK:
                    ok = False
                    note = f"airlock kept reading: the upstream wrote {upstream_sent / MiB:.1f} MiB for a 1 MiB limit"
                return Outcome(rr.summary() + f"; {note}", ok)

            return case

        for b in ("endless-chunked", "endless-close"):
            suite.run("upstream", f"{b}: {hostile.BEHAVIOURS[b]}", endless(b), gateway_probe, 40, audit=1)

        def broken_body(b):
            def case():
                rr = gw_get(b, timeout=20)
                if rr.status is None:
                    return Outcome(
                        rr.summary() + ": the gateway closed the connection without any HTTP answer",
                        False,
                        "expected a 502, or a 2xx whose stream is cut; the audit log records this request as "
                        "status 200 allow (audited when the head arrived), though the agent got no answer",
                    )
                cut = 200 <= rr.status < 300 and not rr.complete
                return Outcome(rr.summary(), rr.status == 502 or cut)

            return case


        for b in ("bad-chunked", "bad-chunked-mid", "short-body"):
            suite.run("upstream", f"{b}: {hostile.BEHAVIOURS[b]}", broken_body(b), gateway_probe, 30, audit=1)

        if args.full:
            # The stream-idle timeout (60 s, not configurable per service) ends a
            # stalled body; only in the long form.
            def stall():
                rr = gw_get("stall-body", timeout=90)
                cut = rr.status is not None and 200 <= rr.status < 300 and not rr.complete
                return Outcome(rr.summary() + f" ({rr.secs:.0f}s)", cut or rr.status in (502, 504))

            suite.run("upstream", "stall-body: head + 10 bytes, then nothing", stall, gateway_probe, 100, audit=1)

        def control_echo():
            rr = gw_get("echo")
            ok = rr.status == 200 and rr.complete and b"[REDACTED:svc]" in rr.raw
            return Outcome(rr.summary()[:120] + " (scrubbed)" if ok else rr.summary(), ok)

        suite.run("upstream", "echo (control): the credential reflected", control_echo, gateway_probe, 20, audit=1)

        # ================================================================ upstream through MCP
        print("upstream (through MCP stdio execute, buffered):", flush=True)

        def mcp_upstream(b, want_status=None):
            def case():
                resp, others = mcp.request(
                    "tools/call",
                    {"name": "execute", "arguments": {"capability": CAP, "method": "GET", "path": f"/{b}"}},
                    timeout=SVC_TIMEOUT + 20,
                )
                suite.keep(json.dumps(resp) + json.dumps(others))
                is_err, text = hostile.tool_result(resp)
                first = text.splitlines()[0] if text else ""
                ok = is_err is True and bool(first)
                return Outcome(f"isError={is_err}: {first[:160]}", ok)

            return case

        for b in (
            "garbage",
            "close-mid-headers",
            "huge-header",
            "endless-chunked",
            "endless-close",
            "huge-length",
            "slow-head",
            "bad-chunked",
            "bad-chunked-mid",
            "short-body",
        ):
            suite.run("upstream/mcp", b, mcp_upstream(b), stdio_probe, SVC_TIMEOUT + 30, audit=1)

        # ================================================================ agent → gateway
        print("agent (hostile gateway clients):", flush=True)

        def slowloris():
            """Slow request heads, silent connections and idle keep-alive connections on
            both HTTP doors: every one must be closed by the header-read timeout (+ slack)
            while normal requests keep working."""
            socks = []  # (kind, socket)
            for port, n in [(gport, 40), (hport, 10)]:
                for _ in range(n):
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    s.sendall(b"GET /" + CAP.encode() + b"/ok HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                    socks.append(("slow", s))
            for port in (gport, hport):
                for _ in range(3):
                    socks.append(("silent", socket.create_connection(("127.0.0.1", port), timeout=5)))
            # Keep-alive connections left idle after one answered request.
            idle_requests = [
                (gport, hostile.request_bytes("GET", f"/{CAP}/ok/idle", token)),
                (hport, b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"),
            ]
            for port, req in idle_requests:
                for _ in range(3):
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    s.sendall(req)
                    rr = hostile.read_response(s, time.monotonic() + 10)
                    suite.keep(rr.raw)
                    if rr.status is None or rr.closed:
                        return Outcome(f"the request before idling got {rr.summary()}", False)
                    socks.append(("idle", s))
            total = len(socks)
            kinds = {k: sum(1 for kk, _ in socks if kk == k) for k in ("slow", "silent", "idle")}
            open_ = {id(s): (k, s) for k, s in socks}
            closed_at = []
            probes = fails = 0
            probe_lat = []
            t0 = time.monotonic()
            try:
                while open_ and time.monotonic() - t0 < hold:
                    for key, (kind, s) in list(open_.items()):
                        gone = False
                        try:
                            r, _, _ = select.select([s], [], [], 0)
                            if r and s.recv(65536) == b"":
                                gone = True
                            elif kind == "slow":
                                s.sendall(b"a")
                        except OSError:
                            gone = True
                        if gone:
                            del open_[key]
                            closed_at.append(time.monotonic() - t0)
                    p0 = time.monotonic()
                    ok, _ = gateway_probe()
                    probe_lat.append(time.monotonic() - p0)
                    probes += 1
                    fails += not ok
                    time.sleep(max(0.0, 1.0 - (time.monotonic() - p0)))
                ok_h, msg_h = http_probe()
            finally:
                for _, s in socks:
                    s.close()
            still = {k: sum(1 for kk, _ in open_.values() if kk == k) for k in kinds}
            n_still = sum(still.values())
            last = max(closed_at) if closed_at else 0.0
            bound = HEADER_READ_TIMEOUT + CLOSE_SLACK
            answer = (
                f"{kinds['slow']} connections trickling 1 header byte/s, {kinds['silent']} silent, {kinds['idle']} idle "
                f"keep-alive (gateway and MCP HTTP): {total - n_still}/{total} closed"
                + (f", the last {last:.1f}s in" if closed_at else "")
                + (f"; still open after {hold:.0f}s: {still}" if n_still else "")
                + f"; {probes - fails}/{probes} probes ok during it (max {max(probe_lat) * 1000:.0f} ms), MCP HTTP probe {'ok' if ok_h else 'FAILED: ' + msg_h}"
            )
            ok = fails == 0 and ok_h and n_still == 0 and last <= bound
            note = ""
            if n_still or last > bound:
                note = (
                    f"every connection without a complete request head must be closed within the {HEADER_READ_TIMEOUT:.0f}s "
                    f"header-read timeout (+{CLOSE_SLACK:.0f}s slack)"
                )
            return Outcome(answer, ok, note)

        suite.run("agent", "slowloris (gateway + MCP HTTP)", slowloris, gateway_probe, hold + 30)

        def gw_raw(data: bytes, want=lambda st: st is not None and 400 <= st < 500, timeout=10.0):
            def case():
                rr = hostile.raw_exchange(gport, data, timeout=timeout)
                suite.keep(rr.raw)
                return Outcome(rr.summary() if rr.status else f"{rr.summary()}", want(rr.status))

            return case

        rb = hostile.request_bytes
        tb = token.encode()
        auth = b"Authorization: Bearer " + tb + b"\r\n"
        suite.run("agent", "1 MiB request header", gw_raw(rb("GET", f"/{CAP}/ok", token, {"X-Big": "a" * MiB})), gateway_probe, 20)
        suite.run("agent", "100 KiB request header", gw_raw(rb("GET", f"/{CAP}/ok", token, {"X-Big": "a" * (100 << 10)})), gateway_probe, 20, audit=1)
        suite.run("agent", "300 request headers", gw_raw(rb("GET", f"/{CAP}/ok", token, {f"X-H{i}": "v" for i in range(300)})), gateway_probe, 20)

        def endless_req(framing: str):
            def case():
                if framing == "chunked":
                    head = rb("POST", f"/{CAP}/ok", token, {"Transfer-Encoding": "chunked"})
                    frame = b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n"
                else:
                    head = rb("POST", f"/{CAP}/ok", token, {"Content-Length": str(1 << 40)})
                    frame = b"x" * 65536
                before = up.count
                rr, sent = stream_request_body(gport, head, frame, GATEWAY_MAX_BODY + 64 * MiB, timeout=60)
                suite.keep(rr.raw)
                reached = up.count - before
                # Refused at the service's max_request_bytes (1 MiB) while reading: what
                # went in is the limit plus what the socket buffers hold, never the
                # gateway's own 32 MiB ceiling.
                names_limit = f"{REQ_LIMIT}-byte limit" in rr.message()
                ok = rr.status == 413 and reached == 0 and sent <= REQ_LIMIT + BUFFER_SLACK and names_limit
                note = f"{sent / MiB:.1f} MiB sent before the answer"
                if sent > REQ_LIMIT + BUFFER_SLACK:
                    note += (
                        f"; more than the service's {REQ_LIMIT // MiB} MiB max_request_bytes + {BUFFER_SLACK // MiB} MiB "
                        "of socket buffers went in: the limit is not applied while the body is read"
                    )
                if rr.status == 413 and not names_limit:
                    note += f"; the 413 does not name the service's {REQ_LIMIT}-byte limit"
                if reached:
                    note += f"; the upstream received {reached} request(s)"
                return Outcome(f"{rr.summary()}; {note}", ok)

            return case

        suite.run("agent", "endless request body (chunked)", endless_req("chunked"), gateway_probe, 90, audit=1)
        suite.run("agent", "endless request body (Content-Length 1 TiB)", endless_req("length"), gateway_probe, 90, audit=1)

        def body_over_service_limit():
            rr = hostile.raw_exchange(gport, rb("POST", f"/{CAP}/ok", token, body=b"x" * (2 * MiB)), timeout=20)
            suite.keep(rr.raw)
            return Outcome(rr.summary(), rr.status == 413 and "limit" in rr.message())

        suite.run("agent", "2 MiB body (service limit 1 MiB)", body_over_service_limit, gateway_probe, 30, audit=1)

        malformed = [
            ("garbage bytes", b"\x00\x01\x02\xff\xfe\x16\x03\x01 not http\r\n\r\n"),
            ("TLS ClientHello on plain HTTP", bytes.fromhex("160301020001000200030312") + os.urandom(64)),
            ("header line without a colon", b"GET /svc/ok HTTP/1.1\r\nHost: x\r\n" + auth + b"this is not a header\r\n\r\n"),
            ("invalid Content-Length", b"POST /svc/ok HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 12abc\r\n\r\nhello"),
            ("two different Content-Lengths", b"POST /svc/ok HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
            ("HTTP/9.9", b"GET /svc/ok HTTP/9.9\r\nHost: x\r\n" + auth + b"\r\n"),
            ("bad method token", b"G(T /svc/ok HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"),
            ("NUL in a header value", b"GET /svc/ok HTTP/1.1\r\nHost: x\r\n" + auth + b"X-A: a\x00b\r\n\r\n"),
            ("absolute-form target", rb("GET", "http://169.254.169.254/latest/meta-data/", token)),
            ("obs-fold header", b"GET /svc/ok HTTP/1.1\r\nHost: x\r\n" + auth + b"X-A: a\r\n folded\r\n\r\n"),
        ]
        for name, data in malformed:
            # hyper refuses most of these before airlock sees them (no decision, no
            # record); the absolute-form target is airlock's own refusal.
            suite.run("agent", f"malformed: {name}", gw_raw(data), gateway_probe, 20, audit=1 if "absolute" in name else None)

        def bad_request_chunk():
            data = b"POST /svc/ok HTTP/1.1\r\nHost: x\r\n" + auth + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
            rr = hostile.raw_exchange(gport, data, timeout=10)
            suite.keep(rr.raw)
            # A framing error is the agent's malformed request (400, saying so), not a
            # body over a limit (413).
            ok = rr.status == 400 and "malformed request body" in rr.message()
            note = "" if ok else "expected 400 \"malformed request body: …\" (a bad chunk size is not a body over the limit)"
            return Outcome(rr.summary(), ok, note)

        suite.run("agent", "malformed: bad chunk size in the request body", bad_request_chunk, gateway_probe, 20, audit=1)

        def cl_te():
            # Both framings. RFC 9112 §6.1: reject, or use Transfer-Encoding and
            # close the connection after answering; the bytes after the chunked
            # body (a second request) must not be served as a request.
            before = up.count
            smuggled = b"GET /svc/smuggled HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
            data = (
                b"POST /svc/ok HTTP/1.1\r\nHost: x\r\n" + auth
                + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (5 + len(smuggled))
                + smuggled
            )
            with socket.create_connection(("127.0.0.1", gport), timeout=10) as c:
                c.sendall(data)
                rr = hostile.read_response(c, time.monotonic() + 10)
                second = hostile.read_response(c, time.monotonic() + 1.5)
            suite.keep(rr.raw)
            suite.keep(second.raw)
            reached = up.count - before
            answer = f"{rr.summary()[:100]}; then " + (
                f"a second answer {second.status} to the bytes after the body" if second.status else
                ("connection closed" if second.closed else "connection left open")
            ) + f"; upstream got {reached} request(s)"
            # Refused (400, nothing sent), or served once by its chunked framing
            # (200, one upstream request) with the connection closed after the
            # answer. The bytes after the chunked body served as a second request
            # (request smuggling: a front proxy framing by Content-Length would see
            # one request where airlock serves two) FAIL the run.
            smuggled_served = second.status is not None
            ok = not smuggled_served and (
                (rr.status == 400 and reached == 0) or (rr.status == 200 and reached == 1)
            )
            if smuggled_served:
                answer += (
                    " — SMUGGLED: the bytes after the chunked body were served as a second request "
                    "(RFC 9112 §6.1: close the connection after answering a request with both framings)"
                )
            finding = None
            return Outcome(answer, ok, finding=finding)

        suite.run("agent", "malformed: Content-Length + Transfer-Encoding", cl_te, gateway_probe, 20, audit=1)

        # ================================================================ MCP stdio
        print("mcp-stdio:", flush=True)
        line = lambda obj: json.dumps(obj).encode() + b"\n"  # noqa: E731
        exe = lambda path, **kw: {"name": "execute", "arguments": {"capability": CAP, "method": "GET", "path": path, **kw}}  # noqa: E731

        def stdio_case(data: bytes, expect: str, must_not_run: bool = False, rid=None):
            """expect: "error" (a JSON-RPC error or a tool error), or "none" (a
            notification: no answer is the correct one)."""

            def case():
                before = up.count
                stderr_before = len(mcp.stderr())
                err = mcp.send_raw(data, timeout=60)
                if err:
                    return Outcome(f"could not send: {err}", False)
                # A `ping` right after is the sync point: every answer to the bad line
                # comes before the ping's (messages are handled in order; a ping
                # touches neither the upstream nor the audit log).
                resp, others = mcp.request("ping", {}, timeout=30)
                suite.keep(json.dumps(resp) + json.dumps(others))
                if resp is None or "result" not in resp:
                    return Outcome(f"no answer to a ping after it: {resp} {others[:2]}", False)
                answers = [o for o in others if "error" in o or "result" in o]
                if rid is not None and not any(a.get("id") in (rid, None) for a in answers):
                    # Requests run concurrently: a tool call can finish after the
                    # ping. Give the bad message's own answer a moment.
                    late, more = mcp.collect_until(rid, time.monotonic() + 2.0)
                    answers += [o for o in more if "error" in o or "result" in o] + ([late] if late else [])
                reached = up.count - before
                if answers:
                    a = answers[0]
                    if "error" in a:
                        desc = f"JSON-RPC error {a['error'].get('code')}: {a['error'].get('message')} (id {a.get('id')!r})"
                        ok = expect == "error"
                    else:
                        t_err, t_text = hostile.tool_result(a)
                        desc = f"tool result isError={t_err}: {t_text.splitlines()[0][:140] if t_text else ''}"
                        ok = expect == "error" and t_err is True
                    finding = None
                elif expect == "none":
                    desc = "no answer (a notification)"
                    ok, finding = True, None
                elif mcp.stderr()[stderr_before:].strip():
                    # Dropped with a message on stderr: a clear answer for the owner.
                    said = mcp.stderr()[stderr_before:].strip().splitlines()[0]
                    desc = f"dropped, stderr: {said[:140]}"
                    ok, finding = True, None
                else:
                    desc = "dropped: no JSON-RPC answer, nothing on stderr"
                    ok, finding = False, None
                if not answers and expect == "error":
                    # A request line that gets no answer leaves the client waiting
                    # forever (JSON-RPC 2.0 §5: an unparsable message gets a -32700
                    # Parse error with id null): a dropped line FAILS the run, with or
                    # without a note on stderr.
                    ok = False
                    desc += " — DROPPED: a JSON-RPC error answer was expected"
                if must_not_run and reached:
                    ok = False
                    desc += f"; but the upstream received {reached} request(s)"
                    finding = None
                return Outcome(desc, ok, finding=finding)

            return case

        big = b'{"jsonrpc":"2.0","id":"huge","method":"tools/call","params":{"name":"execute","arguments":{"capability":"svc","method":"POST","path":"/ok","body":"'
        stdio_cases = [
            ("20 MiB line", big + b"a" * (20 * MiB) + b'"}}}\n', "error"),
            ("12 MiB line (under rmcp's cap; body over the service limit)", big + b"a" * (12 * MiB) + b'"}}}\n', "error"),
            ("not JSON", b"this is not json at all {\n", "error"),
            ("binary garbage", b"\x00\x01\x02\xff\xfe\xfd\n", "error"),
            ("params of the wrong type", line({"jsonrpc": "2.0", "id": "w1", "method": "tools/call", "params": "nope"}), "error"),
            ("tool name of the wrong type", line({"jsonrpc": "2.0", "id": "w2", "method": "tools/call", "params": {"name": 5, "arguments": []}}), "error"),
            ("arguments of the wrong types", line({"jsonrpc": "2.0", "id": "w3", "method": "tools/call", "params": {"name": "execute", "arguments": {"capability": 5, "method": [], "path": {}}}}), "error"),
            ("id of the wrong type (object)", line({"jsonrpc": "2.0", "id": {"a": 1}, "method": "tools/list"}), "error"),
            ("unknown method", line({"jsonrpc": "2.0", "id": "u1", "method": "bogus/method", "params": {}}), "error"),
            ("unknown tool", line({"jsonrpc": "2.0", "id": "u2", "method": "tools/call", "params": {"name": "nope", "arguments": {}}}), "error"),
            ("missing id (tools/call as a notification)", line({"jsonrpc": "2.0", "method": "tools/call", "params": exe("/ok/no-id")}), "none"),
            ("no jsonrpc member", line({"id": "j1", "method": "tools/list"}), "error"),
            ("batch array", b'[{"jsonrpc":"2.0","id":"b1","method":"tools/list"}]\n', "error"),
            ("JSON null", b"null\n", "error"),
            ("arrays nested 100,000 deep", b'{"jsonrpc":"2.0","id":"n1","method":"tools/call","params":' + b"[" * 100000 + b"]" * 100000 + b"}\n", "error"),
            ("objects nested 100,000 deep", b'{"jsonrpc":"2.0","id":"n2","method":"tools/call","params":' + b'{"a":' * 100000 + b"1" + b"}" * 100000 + b"}\n", "error"),
            ("invalid UTF-8 in a string", b'{"jsonrpc":"2.0","id":"i1","method":"tools/call","params":{"name":"execute","arguments":{"capability":"svc","method":"GET","path":"/ok/\xff\xfe"}}}\n', "error"),
            ("lone surrogate escape", b'{"jsonrpc":"2.0","id":"i2","method":"tools/call","params":{"name":"execute","arguments":{"capability":"svc","method":"GET","path":"/ok/\\ud800"}}}\n', "error"),
        ]
        def rid_of(data: bytes):
            """The id of a JSON-RPC request line, if it has a usable one."""
            if len(data) > 4096:
                i = data.find(b'"id":"')
                return data[i + 6 : data.index(b'"', i + 6)].decode() if 0 <= i < 100 else None
            try:
                rid = json.loads(data).get("id")
            except (ValueError, AttributeError, RecursionError):
                i = data.find(b'"id":"')
                return data[i + 6 : data.index(b'"', i + 6)].decode() if 0 <= i < 100 else None
            return rid if isinstance(rid, (str, int)) else None

        for name, data, expect in stdio_cases:
            # Only the 12 MiB body reaches the runtime (refused by the engine: one
            # record); a tools/call without an id is a notification and never runs.
            suite.run(
                "mcp-stdio",
                name,
                stdio_case(data, expect, must_not_run="notification" in name, rid=rid_of(data)),
                stdio_probe,
                90,
                audit=1 if name.startswith("12 MiB") else 0,
            )

        # ================================================================ MCP HTTP
        print("mcp-http:", flush=True)

        def http_case(body: bytes, want, headers: dict | None = None, expect_rpc_error=False):
            def case():
                st, hdrs, msg, text = mhttp.post_raw(body, headers=headers, want_id=None)
                suite.keep(text)
                first = (text.strip().splitlines() or [""])[0]
                if msg and "error" in msg and isinstance(msg["error"], dict):
                    first = f"JSON-RPC error {msg['error'].get('code')}: {msg['error'].get('message')}"
                elif msg and "message" in msg:
                    first = str(msg["message"])
                ok = want(st) and bool(first)
                if expect_rpc_error:
                    ok = ok and bool(msg and "error" in msg)
                return Outcome(f"{st} {first[:150]}", ok)

            return case

        is4xx = lambda st: 400 <= st < 500  # noqa: E731
        # Not JSON-RPC: 400 with a JSON-RPC error body (-32700/-32600/-32602), as the
        # streamable HTTP transport asks (issue 14 item 17; rmcp alone said 415).
        is400 = lambda st: st == 400  # noqa: E731
        suite.run("mcp-http", "2 MiB body (limit 1 MiB)", http_case(b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":"' + b"a" * (2 * MiB) + b'"}}', lambda st: st == 413), http_probe, 30)

        def http_endless():
            head = (
                b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + tb
                + b"\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
                + (b"Mcp-Session-Id: " + mhttp.session.encode() + b"\r\n" if mhttp.session else b"")
                + b"Transfer-Encoding: chunked\r\n\r\n"
            )
            frame = b"%x\r\n" % 65536 + b"[" * 65536 + b"\r\n"
            rr, sent = stream_request_body(hport, head, frame, 64 * MiB, timeout=60)
            suite.keep(rr.raw)
            ok = rr.status == 413 and sent <= MCP_HTTP_MAX_BODY + BUFFER_SLACK
            return Outcome(f"{rr.summary()}; {sent / MiB:.1f} MiB sent before the answer", ok)

        suite.run("mcp-http", "endless chunked body", http_endless, http_probe, 90)
        suite.run("mcp-http", "not JSON", http_case(b"{this is not json", is400, expect_rpc_error=True), http_probe, 20)
        suite.run("mcp-http", "params of the wrong type", http_case(line({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": "x"}), is400, expect_rpc_error=True), http_probe, 20)
        suite.run("mcp-http", "arrays nested 100,000 deep", http_case(b"[" * 100000 + b"]" * 100000, is400, expect_rpc_error=True), http_probe, 20)
        suite.run(
            "mcp-http",
            "invalid UTF-8 in a string",
            http_case(b'{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"execute","arguments":{"capability":"svc","method":"GET","path":"/ok\xff"}}}', is4xx),
            http_probe,
            20,
        )
        suite.run("mcp-http", "Content-Type text/plain", http_case(b"{}", lambda st: st == 415, headers={"Content-Type": "text/plain"}), http_probe, 20)
        suite.run("mcp-http", "no token", http_case(b"{}", lambda st: st == 401, headers={"Authorization": None}), http_probe, 20)
        suite.run("mcp-http", "wrong token", http_case(b"{}", lambda st: st == 401, headers={"Authorization": "Bearer airlock_000000000000_" + "A" * 43}), http_probe, 20)
        suite.run(
            "mcp-http",
            "unknown method",
            http_case(line({"jsonrpc": "2.0", "id": 7, "method": "bogus/method"}), lambda st: st == 200, expect_rpc_error=True),
            http_probe,
            20,
        )

        def http_huge_header():
            data = (
                b"POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tb + b"\r\nX-Big: " + b"a" * MiB + b"\r\n"
                b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
            )
            rr = hostile.raw_exchange(hport, data, timeout=10)
            suite.keep(rr.raw)
            return Outcome(rr.summary(), rr.status is not None and 400 <= rr.status < 500)

        suite.run("mcp-http", "1 MiB request header", http_huge_header, http_probe, 20)

        # ================================================================ connection flood
        # Last, on the same server: idle connections up to its descriptor limit
        # (lowered with prlimit so the case stays small). The connection cap follows
        # the descriptor limit and, at the cap, the longest-idle connection makes
        # room: a normal request must still be served while they are held.
        print("agent (connection flood):", flush=True)

        def flood():
            limit = 256
            try:
                old = resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (limit, limit))
            except (OSError, AttributeError) as e:
                return Outcome(f"cannot lower the server's descriptor limit ({e}); skipped", True)
            socks = []
            try:
                for _ in range(limit + 16):
                    try:
                        socks.append(socket.create_connection(("127.0.0.1", gport), timeout=2))
                    except OSError:
                        break
                time.sleep(1.5)
                try:
                    st, _, _ = common.Client(gport, token, timeout=3).request("GET", CAP, "/ok/flood")
                    during, msg = st == 200, str(st)
                except Exception as e:
                    during, msg = False, f"{type(e).__name__}: {e}"
                # Let go: the server must recover by itself.
                for s in socks:
                    s.close()
                socks = []
                t0 = time.monotonic()
                after = False
                while time.monotonic() - t0 < 10:
                    after, _ = gateway_probe()
                    if after:
                        break
                    time.sleep(0.5)
                rec = time.monotonic() - t0
            finally:
                for s in socks:
                    s.close()
                try:
                    resource.prlimit(server.pid, resource.RLIMIT_NOFILE, old)
                except OSError:
                    pass
            answer = (
                f"{limit + 16} idle connections against a {limit}-descriptor limit: a normal request "
                f"{'still worked' if during else 'FAILED (' + msg[:60] + ')'} while they were held; "
                f"{'recovered' if after else 'NOT recovered'} {rec:.1f}s after they closed"
            )
            note = ""
            if not during:
                note = (
                    f"{limit + 16} idle connections locked a normal request out: the connection cap follows the "
                    "descriptor limit and an idle connection makes room for a new one (docs/gateway.md, "
                    "Connections and timeouts)"
                )
            return Outcome(answer, during and after, note)

        suite.run("agent", "connection flood to the descriptor limit", flood, gateway_probe, 60)

        # ================================================================ final checks
        print("final checks:", flush=True)
        common.check(server.alive(), f"the gateway/HTTP server is not running at the end (rc {server.proc.returncode})")
        common.check(mcp.alive(), f"the MCP stdio server is not running at the end (rc {mcp.proc.returncode})")
        mcp.close()
        server.stop()
        logs = {"serve --gateway --http": server.log(), "serve --agent (stdio)": mcp.stderr()}
        for name, text in logs.items():
            common.check("panicked" not in text, f"{name} panicked: {text[-3000:]}")
            common.check(not hostile.contains_leak(text.encode(), suite.forms), f"the canary key appears in the stderr of {name}")
            extra = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("airlock: ")]
            if extra:
                print(f"  stderr of {name} ({len(extra)} other line(s)): " + " | ".join(ln[:160] for ln in extra[:8]))
        out = b"".join(suite.outputs) + bytes(mcp.all_stdout)
        leaked = [f[:12] for f in suite.forms if f in out]
        common.check(not leaked, f"the canary key came back to an agent in some form: {leaked}")
        print(f"  leak check: {len(out) / MiB:.1f} MiB of answers, {sum(len(t) for t in logs.values())} bytes of stderr: " + ("CLEAN" if not leaked else f"LEAKED {leaked}"))
        bad_auth = {k[:30]: v for k, v in up.seen_auth.items() if k != "Bearer " + SECRET}
        common.check(not bad_auth, f"the upstream saw something other than the injected credential: {bad_auth}")
        common.check(not any(token in k for k in up.seen_auth), "the upstream saw the agent token")
        print(f"  upstream: {up.count} requests, every one with the injected credential: {not bad_auth}")
        v = home.verify()
        common.check(v.ok, f"airlock audit verify failed: {v}")
        kinds = home.count_kinds()
        print(f"  audit: {dict(kinds)}; verify rc {v.rc}: {(v.out or v.err).strip().splitlines()[-1:]}")
    finally:
        if mcp is not None and mcp.alive():
            mcp.close()
        up.stop()
        home.cleanup()

    suite.table()
    if suite.findings:
        print("findings (missing protections, reported without failing):")
        seen = set()
        for where, text in suite.findings:
            key = text[:60]
            if key in seen:
                print(f"  - {where}: (same as above)")
                continue
            seen.add(key)
            print(f"  - {where}: {text}")
    counts = {v: sum(r["verdict"] == v for r in suite.rows) for v in (PASS, FINDING, FAIL)}
    fails = common.failures()
    print(
        f"badinput: {len(suite.rows)} cases: {counts[PASS]} pass, {counts[FINDING]} finding, {counts[FAIL]} fail; "
        f"{'FAILED' if fails else 'passed'} in {time.monotonic() - t_start:.0f}s"
    )
    for f in fails:
        print(f"  FAIL: {f[:400]}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
