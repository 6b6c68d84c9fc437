"""Browser suite for `airlock ui`: Debian's Chromium, headless, driven by Playwright.

Set-up: a throwaway AIRLOCK_HOME with a vault, a local upstream (http.server on
127.0.0.1), a service `demo` in front of it with two capabilities (`demo`, and
`held`, which needs a person's approval), an agent token for agent `bot`,
`airlock serve --gateway` and `airlock ui --listen 127.0.0.1:0`.

Checks, in the browser: log in with the printed URL (and the cookie is HttpOnly,
SameSite=Strict; the link works once); an agent's request through the gateway
appears in the live view within a second, and its record opens whole; a held
request shows method, full URL with query, agent-set headers, body size and
SHA-256 and the reason, Approve completes the agent's call and Deny refuses
it; Revoke ends the agent's session (its next call is refused); Lock refuses
every call until Unlock (both behind a confirmation page); a cross-origin form
post (a page on another port of 127.0.0.1 submitting to /lock), a post without
the CSRF token, and a page reached under a rebinding name (Chromium's
host-resolver maps it to 127.0.0.1) are all refused. A screenshot of each page
goes to the folder given.

Usage: python browser.py PATH/TO/airlock SCREENSHOT_DIR
Exits non-zero on the first failed check; prints "N passed, 0 failed" at the end.
"""

import hashlib
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from playwright.sync_api import sync_playwright

# airlock against a home, the watchdog and JSON answers: the interop suite's helpers.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from common import airlock, arm_watchdog, send_json  # noqa: E402

AIRLOCK = os.path.abspath(sys.argv[1])
SHOTS = os.path.abspath(sys.argv[2])
CHROMIUM = "/usr/bin/chromium"
UPSTREAM_KEY = "sk_test_ui" + os.urandom(12).hex()
_passed = 0
_children = []


def check(cond, what):
    global _passed
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        stop_children()
        sys.exit(1)
    _passed += 1
    print(f"ok - {what}")


def stop_children():
    for p in _children:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Upstream(http.server.BaseHTTPRequestHandler):
    """The service behind airlock: answers every request with what it got."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        ok = self.headers.get("Authorization") == f"Bearer {UPSTREAM_KEY}"
        send_json(self, 200 if ok else 401, {"path": self.path, "auth_ok": ok, "body_bytes": len(body)})

    do_GET = answer
    do_POST = answer


class Attacker(http.server.BaseHTTPRequestHandler):
    """A page on another origin (another port of 127.0.0.1) that submits a form
    to the dashboard's /lock, as a malicious page would."""

    target = ""

    def log_message(self, *args):
        pass

    def do_GET(self):
        page = f"""<!doctype html><form id=f method=post action="{self.target}/lock">
<input name=confirm value=yes><input name=csrf value=guess></form>
<script>document.getElementById('f').submit()</script>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)


def serve(handler):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def start(home, *args, pattern):
    """Starts `airlock ARGS`; returns the process and the first match of
    `pattern` in its stdout or stderr."""
    proc = subprocess.Popen(
        [AIRLOCK, *args],
        env=dict(os.environ, AIRLOCK_HOME=home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _children.append(proc)
    found = []
    ready = threading.Event()

    def pump(stream):
        for line in stream:
            m = re.search(pattern, line)
            if m and not found:
                found.append(m.group(1))
                ready.set()

    threading.Thread(target=pump, args=(proc.stdout,), daemon=True).start()
    threading.Thread(target=pump, args=(proc.stderr,), daemon=True).start()
    ready.wait(20)
    check(found, f"airlock {args[0]} started")
    return proc, found[0]


def call(gateway, token, cap, path, method="GET", body=None, headers=None, timeout=60):
    """The agent's call through the gateway: (status, body)."""
    req = urllib.request.Request(f"{gateway}/{cap}{path}", data=body, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def in_thread(fn, *args, **kw):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", fn(*args, **kw)), daemon=True)
    t.start()
    return t, out


def main():
    arm_watchdog("the browser suite", 240, on_timeout=stop_children)
    os.makedirs(SHOTS, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="airlock-ui-")
    home = os.path.join(tmp, "home")
    _, upstream = serve(Upstream)
    airlock(home, "init")
    airlock(home, "add", "demo", "--url", upstream, "--auth", "bearer", "--key-from-env", "K", env={"K": UPSTREAM_KEY})
    airlock(home, "cap", "add", "held", "--service", "demo", "--approval")
    token = json.loads(airlock(home, "token", "issue", "--agent", "bot", "--json").stdout)["token"]

    _, gw = start(home, "serve", "--gateway", "127.0.0.1:0", pattern=r"(http://127\.0\.0\.1:\d+)")
    _, login_url = start(home, "ui", "--listen", "127.0.0.1:0", pattern=r"(http://127\.0\.0\.1:\d+/login#token=[0-9a-f]{64})")
    base = login_url.split("/login")[0]
    port = int(base.rsplit(":", 1)[1])
    status, _ = call(gw, token, "demo", "/v1/warmup")
    check(status == 200, "the agent's first call through the gateway works (200)")

    args = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        # A DNS-rebinding name: resolves to loopback, as an attacker's would.
        "--host-resolver-rules=MAP rebind.test 127.0.0.1",
    ]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        page = ctx.new_page()

        # --- login --------------------------------------------------------
        page.goto(login_url)
        page.wait_for_url(base + "/", timeout=5000)
        check(page.locator("h1").inner_text() == "Live activity", "login with the printed URL opens the live view")
        check("#token" not in page.url, "the token left the address bar")
        cookies = [c for c in ctx.cookies() if c["name"] == "airlock_ui"]
        check(cookies and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict", "session cookie is HttpOnly, SameSite=Strict")
        other = browser.new_context()
        p2 = other.new_page()
        p2.goto(login_url)
        p2.wait_for_selector("#login:has-text('refused')", timeout=5000)
        check(True, "the login link works once (a second browser is refused)")
        other.close()

        # --- live view ----------------------------------------------------
        page.wait_for_selector("#live tbody tr", timeout=5000)
        marker = "/v1/live-" + os.urandom(4).hex()
        status, _ = call(gw, token, "demo", marker + "?limit=3")
        t0 = time.monotonic()
        page.wait_for_selector(f"#live tbody tr:has-text('{marker}')", timeout=3000)
        seen = time.monotonic() - t0
        check(seen < 1.0, f"the agent's request appears in the live view in {seen * 1000:.0f} ms (< 1 s)")
        page.screenshot(path=f"{SHOTS}/live.png", full_page=False)
        page.click(f"#live tbody tr:has-text('{marker}') >> a")
        page.wait_for_selector("#record")
        rec = page.locator("#record").inner_text()
        check(marker in rec and "mac" in rec and UPSTREAM_KEY not in rec, "a record opens whole, without the secret")
        page.screenshot(path=f"{SHOTS}/record.png", full_page=True)
        page.goto(base + "/?decision=deny")
        check(page.locator(f"#live tbody tr:has-text('{marker}')").count() == 0, "the decision filter hides allowed records")

        # --- approvals ----------------------------------------------------
        body = b'{"amount": 42}'
        t, out = in_thread(call, gw, token, "held", "/v1/pay?to=alice&amount=42", "POST", body,
                           {"Content-Type": "application/json", "X-Airlock-Reason": "monthly invoice", "X-Trace": "t-1"})
        page.goto(base + "/approvals")
        page.wait_for_selector("section.approval", timeout=10000)
        card = page.locator("section.approval").first
        text = card.inner_text()
        check("POST" in text and "/v1/pay?to=alice&amount=42" in text, "approval shows method and full URL with query")
        check(hashlib.sha256(body).hexdigest() in text and f"{len(body)} bytes" in text, "approval shows body size and SHA-256")
        check("x-trace: t-1" in text.lower(), "approval shows the agent-set headers")
        check("monthly invoice" in text, "approval shows the agent's reason")
        page.screenshot(path=f"{SHOTS}/approvals.png", full_page=True)
        card.locator("button.approve").click()
        try:
            page.wait_for_selector("#result", timeout=5000)
        except Exception:
            print(page.url, page.content()[:2000], file=sys.stderr)
            raise
        check("approved" in page.locator("#result").inner_text(), "Approve answers the request")
        t.join(15)
        check(out.get("r", (0,))[0] == 200, f"the approved call completes (status {out.get('r', ('none',))[0]})")

        t, out = in_thread(call, gw, token, "held", "/v1/pay?to=mallory", "POST", b"{}", {"Content-Type": "application/json"})
        page.goto(base + "/approvals")
        page.wait_for_selector("section.approval:has-text('mallory')", timeout=10000)
        page.locator("section.approval:has-text('mallory') button.deny").click()
        page.wait_for_selector("#result")
        t.join(15)
        check(out.get("r", (0,))[0] in (401, 403), f"Deny refuses the agent's call (status {out.get('r', ('none',))[0]})")

        # --- sessions: revoke ---------------------------------------------
        page.goto(base + "/sessions")
        row = page.locator("#sessions tr[data-agent='bot']:has-text('demo'):has(button)").first
        page.screenshot(path=f"{SHOTS}/sessions.png", full_page=True)
        row.locator("button").click()
        page.wait_for_selector("#result")
        check("revoked" in page.locator("#result").inner_text(), "Revoke ends the session")
        status, _ = call(gw, token, "demo", "/v1/after-revoke")
        check(status in (401, 403), f"the agent's next call is refused after revoke (status {status})")

        # --- lock / unlock --------------------------------------------------
        token2 = json.loads(airlock(home, "token", "issue", "--agent", "bot2", "--json").stdout)["token"]
        check(call(gw, token2, "demo", "/v1/before-lock")[0] == 200, "a fresh agent token works before the lock")
        page.goto(base + "/sessions")
        page.click("#lock")
        page.wait_for_selector("#confirm")
        page.screenshot(path=f"{SHOTS}/lock-confirm.png")
        page.click("#confirm")
        page.wait_for_selector("#result")
        check("locked" in page.locator("#result").inner_text(), "Lock, confirmed, locks")
        status, _ = call(gw, token2, "demo", "/v1/while-locked")
        check(status in (401, 403, 423, 503), f"while locked the agent's call is refused (status {status})")
        page.goto(base + "/sessions")
        page.screenshot(path=f"{SHOTS}/locked.png")
        page.click("#unlock")
        page.click("#confirm")
        page.wait_for_selector("#result")
        check("unlocked" in page.locator("#result").inner_text(), "Unlock, confirmed, unlocks")
        check(call(gw, token2, "demo", "/v1/after-unlock")[0] == 200, "after unlock the agent's call works again")

        # --- configuration and exposures ------------------------------------
        page.goto(base + "/config")
        check(page.locator("#capabilities").inner_text().count("held") >= 1, "configuration lists the capabilities")
        page.screenshot(path=f"{SHOTS}/config.png", full_page=True)
        proj = os.path.join(tmp, "project")
        os.makedirs(proj)
        with open(os.path.join(proj, ".env"), "w") as f:
            f.write("GITHUB_TOKEN=ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A" + "\n")
        page.goto(base + "/exposures")
        page.fill("#scan-path", proj)
        page.click("#scan")
        page.wait_for_selector("#findings", timeout=30000)
        text = page.locator("#findings").inner_text()
        check("airlock migrate" in text and "ghp_aB3dE5fG7hJ9" not in text, "exposures lists the finding, its migrate command, never the key")
        page.screenshot(path=f"{SHOTS}/exposures.png", full_page=True)

        # --- refusals -------------------------------------------------------
        Attacker.target = base
        _, evil = serve(Attacker)
        page.goto(evil + "/")
        page.wait_for_url(base + "/lock", timeout=5000)
        check("refused" in page.content(), "a cross-origin form post to /lock is refused")
        page.goto(base + "/sessions")
        check(page.locator("#lock").count() == 1, "...and nothing was locked")
        r = ctx.request.post(base + "/lock", form={"confirm": "yes"}, headers={"Origin": base})
        check(r.status == 403 and "CSRF" in r.text(), "a post without the CSRF token is refused (403)")
        csrf = page.locator("input[name=csrf]").first.get_attribute("value")
        r = ctx.request.post(base + "/lock", form={"confirm": "yes", "csrf": csrf}, headers={"Origin": "http://evil.example"})
        check(r.status == 403, "a post with the CSRF token but another Origin is refused (403)")
        page.goto(base + "/sessions")
        check(page.locator("#lock").count() == 1, "...and still nothing was locked")
        resp = page.goto(f"http://rebind.test:{port}/sessions")
        check(resp.status == 421, "a page under a rebinding name (forged Host) is refused (421)")
        r = ctx.request.get(base + "/", headers={"Authorization": f"Bearer {token2}"})
        check(r.status == 200, "(the owner's cookie opens it)")
        anon = browser.new_context()
        r = anon.request.get(base + "/", headers={"Authorization": f"Bearer {token2}"})
        check(r.status == 401, "an agent token does not open the dashboard")
        anon.close()

        page.goto(base + "/")
        page.screenshot(path=f"{SHOTS}/live-after.png")
        page.screenshot(path=f"{SHOTS}/readme.png", clip={"x": 0, "y": 0, "width": 1100, "height": 520})
        browser.close()

    logs = [json.loads(line) for line in airlock(home, "logs", "--json").stdout.splitlines()]
    mine = [r for r in logs if r.get("agent") == "owner" and "via the dashboard" in (r.get("detail") or "")]
    kinds = {r["kind"] for r in mine}
    check({"ui_login", "ui_answer", "revoke", "lock", "unlock", "ui_scan"} <= kinds, f"every action audited with the owner as actor ({sorted(kinds)})")
    check("intact" in airlock(home, "audit", "verify").stdout, "audit verify: intact")
    stop_children()
    print(f"{_passed} passed, 0 failed")


if __name__ == "__main__":
    try:
        main()
    finally:
        # Also when a browser step raises: no server outlives the suite.
        stop_children()
