"""Interop: the official OpenAI and Anthropic Python SDKs, unchanged but for their base
URL and key, drive `airlock serve --gateway` in front of a local fake upstream that
speaks each API's wire format (JSON and SSE streaming).

First a control round: each SDK talks to the fake upstream directly with the real key,
so a failure later on is the gateway's and not the fake's. Then the same calls go
through the gateway with agent tokens: answers arrive, streams stream, the real key
is injected upstream and scrubbed from everything the SDK hands back, the agent token
never reaches the upstream; a wrong token is 401, a denied path or another
capability's token is 403; every request is audited and the chain verifies.

The token travels the way each SDK sends its key: OpenAI as `Authorization: Bearer`;
Anthropic (2.x) as `Authorization: Bearer` too, and its Foundry client as both
`x-api-key` and `api-key`. airlock injects the template's header (`x-api-key`).

Usage: python gateway_sdks.py PATH/TO/airlock
Exits non-zero on the first failed check; prints "N passed, 0 failed" at the end.
"""

import http.server
import json
import os
import tempfile
import threading
import time

for name in list(os.environ):
    # Nothing from the environment may steer the SDKs: only base_url and api_key do.
    if name.startswith(("OPENAI_", "ANTHROPIC_")) or name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
        del os.environ[name]

import urllib.error  # noqa: E402
import urllib.request  # noqa: E402

import anthropic  # noqa: E402
import openai  # noqa: E402
from common import airlock, arm_watchdog, check, send_json, start_gateway, summary  # noqa: E402

OPENAI_KEY = "sk-proj-interop" + os.urandom(16).hex()
ANTHROPIC_KEY = "sk-ant-api03-interop" + os.urandom(16).hex()
GAP = 0.15  # seconds between streamed events


# ---------------------------------------------------------------------------
# The fake upstream: one server per service, recording every request it gets.
# ---------------------------------------------------------------------------


class Fake(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked, like the real APIs
    service = ""
    seen = None  # list of dicts, one per request
    sent_at = None  # monotonic times at which the last stream wrote each event

    def log_message(self, *args):
        pass

    def record(self, body):
        rec = {
            "method": self.command,
            "path": self.path,
            "headers": [(k.lower(), v) for k, v in self.headers.items()],
            "body": body,
        }
        self.seen.append(rec)
        return rec

    def header(self, name):
        return self.headers.get(name)

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        type(self).sent_at = []

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def send_event(self, data, split_at=None):
        """One SSE event in one chunk; with split_at, in two writes split inside `data`."""
        if split_at is None:
            self.write_chunk(data)
        else:
            self.write_chunk(data[:split_at])
            time.sleep(GAP)
            self.write_chunk(data[split_at:])
        self.sent_at.append(time.monotonic())
        time.sleep(GAP)

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return repr(raw)

    def do_POST(self):
        body = self.read_body()
        self.record(body)
        self.handle_api(body)

    def do_GET(self):
        self.record("")
        self.not_found()

    do_DELETE = do_GET

    def not_found(self):
        send_json(self, 404, {"error": {"type": "not_found", "message": f"fake upstream: no route {self.command} {self.path}"}})


class FakeOpenAI(Fake):
    service = "openai"
    seen = []

    def handle_api(self, body):
        if self.header("Authorization") != f"Bearer {OPENAI_KEY}":
            return send_json(self, 401, {"error": {"message": "fake upstream: wrong key", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
        if self.path != "/v1/chat/completions":
            return self.not_found()
        req = json.loads(body)
        base = {"id": "chatcmpl-fake1", "created": int(time.time()), "model": req["model"], "system_fingerprint": "fp_fake"}
        if not req.get("stream"):
            return send_json(self, 200, {
                **base,
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": f"Hello! The key is {OPENAI_KEY}.", "refusal": None}, "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
            })

        def chunk(delta, finish=None):
            obj = {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        self.start_stream()
        self.send_event(chunk({"role": "assistant", "content": ""}))
        for word in ["Hello", " from", " the", " fake"]:
            self.send_event(chunk({"content": word}))
        self.send_event(chunk({"content": f" key={OPENAI_KEY}"}))  # the whole key in one delta
        split = chunk({"content": f" again={OPENAI_KEY}"})
        at = split.index(OPENAI_KEY.encode()) + len(OPENAI_KEY) // 2
        self.send_event(split, split_at=at)  # the key split across two writes of one event
        self.send_event(chunk({}, finish="stop"))
        self.send_event(b"data: [DONE]\n\n")
        self.end_stream()


class FakeAnthropic(Fake):
    service = "anthropic"
    seen = []

    def handle_api(self, body):
        # The real API takes the key in x-api-key; the stock SDK sends it as a bearer token.
        if ANTHROPIC_KEY not in (self.header("x-api-key"), (self.header("Authorization") or "").removeprefix("Bearer ")):
            return send_json(self, 401, {"type": "error", "error": {"type": "authentication_error", "message": "fake upstream: wrong key"}})
        if not self.header("anthropic-version"):
            return send_json(self, 400, {"type": "error", "error": {"type": "invalid_request_error", "message": "fake upstream: anthropic-version header is required"}})
        if self.path != "/v1/messages":
            return self.not_found()
        req = json.loads(body)
        message = {"id": "msg_fake1", "type": "message", "role": "assistant", "model": req["model"], "content": [], "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 1}}
        if not req.get("stream"):
            return send_json(self, 200, {**message, "content": [{"type": "text", "text": f"Hello! The key is {ANTHROPIC_KEY}."}], "stop_reason": "end_turn", "usage": {"input_tokens": 9, "output_tokens": 7}})

        def event(kind, obj):
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **obj})}\n\n".encode()

        def text(t):
            return event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": t}})

        self.start_stream()
        self.send_event(event("message_start", {"message": message}))
        self.send_event(event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}))
        self.send_event(event("ping", {}))
        for word in ["Hello", " from", " the", " fake"]:
            self.send_event(text(word))
        self.send_event(text(f" key={ANTHROPIC_KEY}"))
        split = text(f" again={ANTHROPIC_KEY}")
        self.send_event(split, split_at=split.index(ANTHROPIC_KEY.encode()) + len(ANTHROPIC_KEY) // 2)
        self.send_event(event("content_block_stop", {"index": 0}))
        self.send_event(event("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 12}}))
        self.send_event(event("message_stop", {}))
        self.end_stream()


def serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# ---------------------------------------------------------------------------
# The SDK calls, the same for the control round and the gateway round.
# ---------------------------------------------------------------------------


def dump(obj):
    return obj.model_dump_json() if hasattr(obj, "model_dump_json") else json.dumps(obj, default=str)


def timed(stream):
    """The stream's items with the monotonic time each one reached the caller."""
    return [(time.monotonic(), item) for item in stream]


def openai_calls(client):
    """Plain and streamed chat completions; returns (plain, [(t, chunk)])."""
    messages = [{"role": "user", "content": "Say hello."}]
    plain = client.chat.completions.create(model="gpt-fake", messages=messages)
    chunks = timed(client.chat.completions.create(model="gpt-fake", messages=messages, stream=True))
    return plain, chunks


def anthropic_calls(client):
    """Plain and streamed messages; returns (plain, [(t, event)])."""
    messages = [{"role": "user", "content": "Say hello."}]
    plain = client.messages.create(model="claude-fake", max_tokens=64, messages=messages)
    events = timed(client.messages.create(model="claude-fake", max_tokens=64, messages=messages, stream=True))
    return plain, events


def openai_text(plain, chunks):
    return plain.choices[0].message.content, "".join(c.choices[0].delta.content or "" for _, c in chunks if c.choices)


def anthropic_text(plain, events):
    streamed = "".join(e.delta.text for _, e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    return plain.content[0].text, streamed


def streamed(label, timed_items, handler):
    """Checks that the items reached the SDK one by one while the upstream was still sending."""
    times = [t for t, _ in timed_items]
    sent = handler.sent_at
    check(len(timed_items) >= 8, f"{label}: the stream arrives as {len(timed_items)} separate items")
    check(times[0] < sent[-1] - 3 * GAP, f"{label}: the first item reached the SDK {sent[-1] - times[0]:.2f}s before the upstream sent its last event (streamed, not buffered)")


# ---------------------------------------------------------------------------


def control():
    """The SDKs against the fake upstream directly: the fake speaks their wire format."""
    plain, chunks = openai_calls(openai.OpenAI(base_url=f"{OPENAI_URL}/v1", api_key=OPENAI_KEY))
    text, stext = openai_text(plain, chunks)
    check(text == f"Hello! The key is {OPENAI_KEY}.", "control: the OpenAI SDK reads the fake's chat completion")
    check(stext == f"Hello from the fake key={OPENAI_KEY} again={OPENAI_KEY}", "control: the OpenAI SDK reads the fake's SSE stream")
    streamed("control: OpenAI stream", chunks, FakeOpenAI)
    plain, events = anthropic_calls(anthropic.Anthropic(base_url=ANTHROPIC_URL, api_key=ANTHROPIC_KEY))
    text, stext = anthropic_text(plain, events)
    check(text == f"Hello! The key is {ANTHROPIC_KEY}.", "control: the Anthropic SDK reads the fake's message")
    check(stext == f"Hello from the fake key={ANTHROPIC_KEY} again={ANTHROPIC_KEY}", "control: the Anthropic SDK reads the fake's SSE stream")
    streamed("control: Anthropic stream", events, FakeAnthropic)
    foundry = anthropic.AnthropicFoundry(base_url=ANTHROPIC_URL, api_key=ANTHROPIC_KEY)
    msg = foundry.messages.create(model="claude-fake", max_tokens=64, messages=[{"role": "user", "content": "Say hello."}])
    check(msg.content[0].text == f"Hello! The key is {ANTHROPIC_KEY}.", "control: the Anthropic SDK's Foundry client (key in x-api-key and api-key) reads the fake's message")
    del FakeOpenAI.seen[:], FakeAnthropic.seen[:]


def headers_of(rec, name):
    return [v for k, v in rec["headers"] if k == name]


def no_token_upstream(label, seen, tokens):
    leaked = [(r["method"], r["path"], k) for r in seen for k, v in [*r["headers"], ("path", r["path"]), ("body", r["body"])] if any(t in v for t in tokens)]
    check(not leaked, f"{label}: no agent token reached the upstream in any header, the path or the body {leaked or ''}")


def raw_post(url, obj):
    """A plain POST with no credential at all: (status, body)."""
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def expect_error(label, exc_type, status, call):
    try:
        call()
    except exc_type as e:
        body = e.response.json()
        err = body.get("error") if isinstance(body, dict) else None
        check(e.status_code == status, f"{label}: the SDK raises {exc_type.__module__.split('.')[0]}.{exc_type.__name__} ({status})")
        check(isinstance(err, dict) and err.get("type") and err.get("message"), f"{label}: the JSON error body says why: {json.dumps(err)}")
        return
    except Exception as e:  # noqa: BLE001
        check(False, f"{label}: expected {exc_type.__name__} ({status}), got {type(e).__name__}: {e}")
    check(False, f"{label}: expected {exc_type.__name__} ({status}), the call succeeded")


def answers_redacted(label, what, text_of, plain, items, handler, key_prefix):
    """The plain answer and the stream arrive whole, the key redacted, streamed; the real
    key (nor its first characters, `key_prefix`) is in nothing the SDK returned."""
    key = OPENAI_KEY if label == "openai" else ANTHROPIC_KEY
    text, stext = text_of(plain, items)
    check(text == f"Hello! The key is [REDACTED:{label}].", f"{label}: {what} arrives, the key in it redacted")
    check(stext == f"Hello from the fake key=[REDACTED:{label}] again=[REDACTED:{label}]", f"{label}: the SSE stream arrives whole, the key redacted in one delta and when split across two writes")
    streamed(f"{label}: stream", items, handler)
    returned = dump(plain) + "".join(dump(item) for _, item in items)
    check(key not in returned and key_prefix not in returned, f"{label}: the real key is in nothing the SDK returned")


def through_gateway(addr, tokens):
    tok_o, tok_a = tokens["openai"], tokens["anthropic"]
    everything = list(tokens.values())

    # OpenAI: bearer token, plain and streamed.
    plain, chunks = openai_calls(openai.OpenAI(base_url=f"http://{addr}/openai/v1", api_key=tok_o))
    answers_redacted("openai", "the chat completion", openai_text, plain, chunks, FakeOpenAI, OPENAI_KEY[:12])
    seen = FakeOpenAI.seen
    check([(r["method"], r["path"]) for r in seen] == [("POST", "/v1/chat/completions")] * 2, "openai: the upstream got both requests at /v1/chat/completions")
    check(all(headers_of(r, "authorization") == [f"Bearer {OPENAI_KEY}"] for r in seen), "openai: the upstream got the real key as the bearer token")
    check(all(not headers_of(r, "x-api-key") and not headers_of(r, "api-key") for r in seen), "openai: no other key header reached the upstream")
    check([json.loads(r["body"]).get("stream") for r in seen] == [None, True], "openai: the request bodies arrived as the SDK sent them")
    check(all(headers_of(r, "user-agent")[0].startswith("OpenAI/Python") for r in seen), "openai: the SDK's own headers pass through")
    no_token_upstream("openai", seen, everything)

    # Anthropic: the stock SDK sends its key as a bearer token; plain and streamed.
    plain, events = anthropic_calls(anthropic.Anthropic(base_url=f"http://{addr}/anthropic", api_key=tok_a))
    answers_redacted("anthropic", "the message", anthropic_text, plain, events, FakeAnthropic, ANTHROPIC_KEY[:16])
    # The same SDK's Foundry client sends its key as both x-api-key and api-key.
    foundry = anthropic.AnthropicFoundry(base_url=f"http://{addr}/anthropic", api_key=tok_a)
    msg = foundry.messages.create(model="claude-fake", max_tokens=64, messages=[{"role": "user", "content": "Say hello."}])
    check(msg.content[0].text == "Hello! The key is [REDACTED:anthropic].", "anthropic: the token in x-api-key and api-key (the SDK's Foundry client) works too")
    seen = FakeAnthropic.seen
    check([(r["method"], r["path"]) for r in seen] == [("POST", "/v1/messages")] * 3, "anthropic: the upstream got the three requests at /v1/messages")
    check(all(headers_of(r, "x-api-key") == [ANTHROPIC_KEY] for r in seen), "anthropic: the upstream got the real key in x-api-key")
    check(all(not headers_of(r, "authorization") and not headers_of(r, "api-key") for r in seen), "anthropic: the token's headers (Authorization, api-key) were removed, not forwarded")
    check(all(headers_of(r, "anthropic-version") == [anthropic._constants.ANTHROPIC_API_VERSION] for r in seen), "anthropic: anthropic-version passes through")
    no_token_upstream("anthropic", seen, everything)

    # Refusals: none of them reaches the upstream.
    before = len(FakeOpenAI.seen), len(FakeAnthropic.seen)
    wrong = tok_o[:-6] + ("AAAAAA" if not tok_o.endswith("AAAAAA") else "BBBBBB")
    expect_error("openai, wrong token", openai.AuthenticationError, 401, lambda: openai_calls(openai.OpenAI(base_url=f"http://{addr}/openai/v1", api_key=wrong)))
    expect_error("anthropic, wrong token", anthropic.AuthenticationError, 401, lambda: anthropic_calls(anthropic.Anthropic(base_url=f"http://{addr}/anthropic", api_key=wrong)))
    status, body = raw_post(f"http://{addr}/openai/v1/chat/completions", {"model": "gpt-fake", "messages": []})
    check(status == 401 and json.loads(body)["error"]["type"], f"no token at all: 401 with a JSON error ({status} {body.strip()})")
    expect_error("openai, a path the rules deny (DELETE /v1/models/x)", openai.PermissionDeniedError, 403, lambda: openai.OpenAI(base_url=f"http://{addr}/openai/v1", api_key=tok_o).models.delete("x"))
    expect_error("anthropic, a path the rules deny (GET /v1/messages/batches)", anthropic.PermissionDeniedError, 403, lambda: anthropic.Anthropic(base_url=f"http://{addr}/anthropic", api_key=tok_a).messages.batches.list())
    expect_error("an anthropic token on openai", openai.PermissionDeniedError, 403, lambda: openai_calls(openai.OpenAI(base_url=f"http://{addr}/openai/v1", api_key=tok_a)))
    check((len(FakeOpenAI.seen), len(FakeAnthropic.seen)) == before, "no refused request reached the upstream")
    return wrong


def main():
    global OPENAI_URL, ANTHROPIC_URL
    arm_watchdog("the SDK or the gateway")
    up_openai, OPENAI_URL = serve(FakeOpenAI)
    up_anthropic, ANTHROPIC_URL = serve(FakeAnthropic)
    control()

    home = tempfile.mkdtemp(prefix="airlock-gateway-interop-")
    airlock(home, "add", "openai", "--cap", "--url", OPENAI_URL, "--key-from-env", "K", env={"K": OPENAI_KEY})
    airlock(home, "add", "anthropic", "--cap", "--url", ANTHROPIC_URL, "--key-from-env", "K", env={"K": ANTHROPIC_KEY})
    tokens = {}
    for cap in ("openai", "anthropic"):
        issued = json.loads(airlock(home, "token", "issue", "--agent", f"{cap}-sdk", "--cap", cap, "--json").stdout)
        check(issued["agent"] == f"{cap}-sdk" and issued["token"], f"token issue --cap {cap} --json")
        tokens[cap] = issued["token"]
    proc, addr = start_gateway(home)
    try:
        check(addr is not None, "gateway: the server prints its address")
        wrong = through_gateway(addr, tokens)
    finally:
        proc.terminate()
        proc.wait()
    up_openai.shutdown()
    up_anthropic.shutdown()

    # Every gateway request is audited (5 forwarded, 3 refused by policy, 3 without a
    # valid token), and the chain verifies.
    logs = [json.loads(line) for line in airlock(home, "logs", "--json").stdout.splitlines()]
    requests = [r for r in logs if r["kind"] == "request"]
    allowed = [r for r in requests if r.get("decision") == "allow"]
    # Write-ahead audit: the status is on the outcome record that names the decision.
    outcomes = {r.get("of"): r for r in logs if r["kind"] == "outcome"}
    check(len(allowed) == 5 and all(outcomes.get(r["seq"], {}).get("status") == 200 for r in allowed), f"audit: one allowed request record per forwarded request, completed by an outcome with status 200 ({len(allowed)})")
    check(sorted((r["capability"], r["method"], r["path"]) for r in allowed) == sorted([("openai", "POST", "/v1/chat/completions")] * 2 + [("anthropic", "POST", "/v1/messages")] * 3), "audit: the allowed records name the capability, method and path")
    check(all(r["agent"] == f"{r['capability']}-sdk" and r.get("agent_trusted") for r in allowed), "audit: the allowed records name the token's agent, trusted")
    refused = sorted((r["capability"], r["method"], r["path"], r.get("status")) for r in requests if r.get("decision") == "deny")
    check(refused == sorted([("openai", "DELETE", "/v1/models/x", 403), ("anthropic", "GET", "/v1/messages/batches", 403), ("openai", "POST", "/v1/chat/completions", 403)]), f"audit: one refusal record per policy refusal {refused}")
    bad_tokens = [r for r in logs if r["kind"] == "token_use" and r.get("decision") == "deny"]
    check(len(bad_tokens) == 3, f"audit: one token_use refusal per 401 (2 wrong tokens, 1 missing): {len(bad_tokens)}")
    check(len(requests) + len(bad_tokens) == 11, "audit: one record per gateway request (11)")
    text = json.dumps(logs)
    check(not any(t in text for t in [OPENAI_KEY, ANTHROPIC_KEY, wrong, *tokens.values()]), "audit: no key or token (nor the wrong one) in the log")
    check("intact" in airlock(home, "audit", "verify").stdout, "audit verify: intact")
    summary()


if __name__ == "__main__":
    main()
