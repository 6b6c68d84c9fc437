#!/usr/bin/env python3
"""Concurrency reliability: 4 CLI writers and 2 gateway servers on ONE home.

    python3 tests/reliability/concurrency.py [--bin PATH] [--full] [--seconds N]
                                             [--writers N] [--clients N]

For --seconds (12, --full 60):
  * 4 writer processes' worth of CLI commands run at once, each writer in a loop
    over `add`, `secret set --stdin`, `cap add`, `token issue` with names of its
    own (w<k>-...);
  * 2 `airlock serve --gateway` processes on the same home, each with --clients
    threads sending requests (unique paths) with a token of its own agent (srv1,
    srv2), so each audit record names the server that wrote it;
  * after every acknowledged `add` the writer calls the new capability through
    BOTH servers until they answer 2xx with the new key (servers reload
    airlock.toml on change; the pick-up time is reported); after every acknowledged
    `token issue` the new token must work on both servers;
  * `airlock audit verify` runs now and then while everything appends.
Then:
  * every write that returned 0 is present (secrets with their values, checked
    through the gateway; services; capabilities; tokens);
  * a command may only fail with the documented lock-timeout error (one line,
    non-zero exit), counted and reported, and then its write must NOT be present;
    every other failure fails the suite;
  * every 2xx request has its request record (by unique path), the two servers'
    records interleave in one chain, and `airlock audit verify` passes;
  * no process panicked, both servers are still up.
A final probe holds the home lock and checks the lock-timeout refusal itself: one
clear line, non-zero exit, nothing written.
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import random
import subprocess
import sys
import threading
import time
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Client, Home, Upstream, check, fail, sha256_hex  # noqa: E402

PANIC_MARKERS = ("panicked at", "stack backtrace")


def extra_args(ap):
    ap.add_argument("--seconds", type=float, default=None, help="how long the load runs (default 12, --full 60)")
    ap.add_argument("--writers", type=int, default=4, help="concurrent CLI writers")
    ap.add_argument("--clients", type=int, default=3, help="client threads per server")


def is_lock_timeout(r) -> bool:
    err = r.err.strip()
    return r.rc not in (0,) and r.rc > 0 and "locked" in err.lower() and len(err.splitlines()) == 1


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.secrets = {}  # acknowledged name -> value
        self.services = {}  # acknowledged name -> key
        self.caps = set()
        self.tokens = {}  # id -> token
        self.refused = []  # (kind, name, result) lock timeouts: must be absent
        self.failed = []  # (args, result) anything else
        self.requests = {"srv1": set(), "srv2": set()}
        self.pickup = []  # seconds until both servers served a new service
        self.pickup_fail = []
        self.token_checks = 0
        self.stop = threading.Event()
        self.cmds = collections.Counter()
        self.cmd_secs = collections.defaultdict(list)


def run_writer(home: Home, S: State, k: int, ports: dict, upstream_url: str, base_token: str):
    n = 0
    clients = {name: Client(port, base_token) for name, port in ports.items()}
    while not S.stop.is_set():
        n += 1
        kind = ("add", "secret", "cap", "token")[(n + k) % 4]
        if kind == "add":
            name, key = f"w{k}-svc{n}", f"key-w{k}-{n}-{random.randrange(1 << 30)}"
            r = home.add_service(name, upstream_url, key)
        elif kind == "secret":
            name, key = f"w{k}-s{n}", f"val-w{k}-{n}-{random.randrange(1 << 30)}"
            r = home.run("secret", "set", name, "--stdin", input=key)
        elif kind == "cap":
            name, key = f"w{k}-cap{n}", None
            r = home.run("cap", "add", name, "--service", "svc", "--ttl", "30m", "--allow", "GET /**")
        else:
            name, key = f"w{k}-agent{n}", None
            r = home.run("token", "issue", "--agent", name, "--ttl", "2h")
        with S.lock:
            S.cmds[kind] += 1
            S.cmd_secs[kind].append(r.secs)
        if any(m in r.err for m in PANIC_MARKERS):
            fail(f"writer {k}: `{kind} {name}` panicked: {r.err[-2000:]}")
        if r.rc != 0:
            with S.lock:
                if is_lock_timeout(r):
                    S.refused.append((kind, name, r))
                else:
                    S.failed.append((kind, name, r))
            continue
        if kind == "add":
            with S.lock:
                S.services[name] = key
            want = sha256_hex("Bearer " + key)
            t0 = time.monotonic()
            for srv, c in clients.items():
                ok, last = False, None
                while time.monotonic() - t0 < 10:
                    try:
                        st, _h, body = c.request("GET", name, f"/pickup/{srv}")
                        last = (st, body[:200])
                        if 200 <= st < 300 and json.loads(body).get("auth_sha256") == want:
                            ok = True
                            break
                    except Exception as e:  # noqa: BLE001
                        last = repr(e)
                    time.sleep(0.01)
                if not ok:
                    with S.lock:
                        S.pickup_fail.append((name, srv, last))
            with S.lock:
                S.pickup.append(time.monotonic() - t0)
        elif kind == "secret":
            with S.lock:
                S.secrets[name] = key
        elif kind == "cap":
            with S.lock:
                S.caps.add(name)
        else:
            tok = r.out.strip().splitlines()[0] if r.out.strip() else ""
            parts = tok.split("_")
            if len(parts) < 3:
                fail(f"token issue exited 0 without a token: {r}")
                continue
            with S.lock:
                S.tokens[parts[1]] = tok
            for srv, port in ports.items():
                c = Client(port, tok)
                deadline = time.monotonic() + 10
                while True:
                    try:
                        st, _h, body = c.request("GET", "svc", f"/newtoken/{parts[1]}")
                    except Exception as e:  # noqa: BLE001
                        st, body = -1, repr(e).encode()
                    if 200 <= st < 300 or time.monotonic() > deadline:
                        break
                    time.sleep(0.01)
                c.close()
                check(200 <= st < 300, f"token {parts[1]} issued while {srv} ran does not work there: {st} {body[:200]!r}")
                with S.lock:
                    S.token_checks += 1
    for c in clients.values():
        c.close()


def run_client(S: State, srv: str, port: int, token: str, i: int, want: str, stats: collections.Counter):
    c = Client(port, token)
    n = 0
    while not S.stop.is_set():
        n += 1
        path = f"/c/{srv}-{i}-{n}"
        method = random.choice(("GET", "POST"))
        body = os.urandom(random.randrange(0, 512)).hex().encode() if method == "POST" else None
        try:
            st, _h, data = c.request(method, "svc", path, body=body)
        except Exception as e:  # noqa: BLE001
            stats["conn_error"] += 1
            if stats["conn_error"] <= 5:
                fail(f"{srv}: request {path} failed: {e!r}")
            time.sleep(0.01)
            continue
        stats[st] += 1
        if 200 <= st < 300:
            got = json.loads(data)
            if got.get("auth_sha256") != want or got.get("path") != path:
                fail(f"{srv}: request {path}: the upstream got {got}")
                continue
            with S.lock:
                S.requests[srv].add(path)
        elif stats["bad"] < 5:
            stats["bad"] += 1
            fail(f"{srv}: request {path} answered {st}: {data[:300]!r}")
    c.close()


def lock_timeout_probe(home: Home, upstream_url: str) -> int:
    """Hold the home's writer lock; each write must refuse with one clear line, and write nothing."""
    refusals = 0
    fd = os.open(os.path.join(home.path, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        env = {"AIRLOCK_LOCK_TIMEOUT_MS": "300"}
        probes = [
            ("secret", "probe-s", home.run("secret", "set", "probe-s", "--stdin", input="v", env=env)),
            ("add", "probe-svc", home.run("add", "probe-svc", "--cap", "--url", upstream_url, "--key-from-env", "K", env={**env, "K": "k"})),
            ("cap", "probe-cap", home.run("cap", "add", "probe-cap", "--service", "svc", env=env)),
            ("token", "probe-agent", home.run("token", "issue", "--agent", "probe-agent", env=env)),
        ]
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    secrets = home.secrets()
    listing = home.listing()
    agents = {t["agent"] for t in home.tokens()}
    for kind, name, r in probes:
        if check(is_lock_timeout(r), f"lock-timeout probe `{kind} {name}`: expected one line saying the home is locked and a non-zero exit, got {r}"):
            refusals += 1
        present = (
            name in secrets
            or name in {s["name"] for s in listing["services"]}
            or name in {c["name"] for c in listing["capabilities"]}
            or name in agents
        )
        check(not present, f"lock-timeout probe `{kind} {name}` was refused but its write is present")
    return refusals


def main():
    args = common.parse_args("4 CLI writers + 2 gateway servers on one home; nothing lost.", extra_args)
    seconds = args.seconds if args.seconds is not None else (60 if args.full else 12)
    t_start = time.monotonic()
    home = Home(args.bin, keep=args.keep)
    upstream = Upstream()
    canary = f"canary-{random.randrange(1 << 40)}"
    S = State()
    try:
        r = home.add_service("svc", upstream.url, canary)
        check(r.ok, f"add svc: {r}")
        tokens = {"srv1": home.issue_token("srv1", ttl="4h"), "srv2": home.issue_token("srv2", ttl="4h")}
        writer_token = home.issue_token("writers", ttl="4h")
        servers = {"srv1": home.serve(), "srv2": home.serve()}
        ports = {k: s.gateway_port for k, s in servers.items()}
        want = sha256_hex("Bearer " + canary)
        stats = {k: collections.Counter() for k in servers}
        threads = []
        for srv, port in ports.items():
            for i in range(args.clients):
                threads.append(threading.Thread(target=run_client, args=(S, srv, port, tokens[srv], i, want, stats[srv]), daemon=True))
        for k in range(args.writers):
            threads.append(threading.Thread(target=run_writer, args=(home, S, k, ports, upstream.url, writer_token), daemon=True))
        for t in threads:
            t.start()
        verifies = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(max(0, min(seconds / 4, 5, deadline - time.monotonic())))
            r = home.verify()
            verifies += 1
            check(r.ok, f"audit verify while servers and writers append: {r}")
        S.stop.set()
        for t in threads:
            t.join(timeout=60)
            check(not t.is_alive(), f"thread {t.name} did not stop")

        # Nothing lost.
        secrets = home.secrets()
        listing = home.listing()
        services = {s["name"]: s for s in listing["services"]}
        caps = {c["name"] for c in listing["capabilities"]}
        token_ids = {t["id"] for t in home.tokens()}
        with open(os.path.join(home.path, "airlock.toml"), "rb") as f:
            tomllib.load(f)
        for name in S.secrets:
            check(name in secrets, f"acknowledged `secret set {name}` lost")
        for name in S.services:
            check(name in services and name in caps and name in secrets, f"acknowledged `add {name}` lost")
        for name in S.caps:
            check(name in caps, f"acknowledged `cap add {name}` lost")
        for tid in S.tokens:
            check(tid in token_ids, f"acknowledged token {tid} lost")
        agents = {t["agent"] for t in home.tokens()}
        for kind, name, r in S.refused:
            present = name in secrets or name in services or name in caps or name in agents
            check(not present, f"`{kind} {name}` was refused with a lock timeout but its write is present")
        for kind, name, r in S.failed:
            fail(f"`{kind} {name}` failed with something other than a lock timeout: {r}")
        for name, srv, last in S.pickup_fail:
            fail(f"{srv} did not pick up service {name} added while it ran within 10 s (last answer {last})")

        # Secret values, through services added to the config by hand (atomically).
        path = os.path.join(home.path, "airlock.toml")
        with open(path) as f:
            text = f.read()
        for name in S.secrets:
            text += (f'\n[services.chk-{name}]\nurl = "{upstream.url}"\nauth = {{ type = "bearer", secret = "{name}" }}\n'
                     f'\n[capabilities.chk-{name}]\nservice = "chk-{name}"\nttl = "1h"\n')
        with open(path + ".new", "w") as f:
            f.write(text)
        os.chmod(path + ".new", 0o600)
        os.replace(path + ".new", path)
        c = Client(ports["srv1"], writer_token)
        for name, value in S.secrets.items():
            got = None
            for _ in range(200):
                st, _h, body = c.request("GET", f"chk-{name}", "/value")
                if 200 <= st < 300:
                    got = json.loads(body).get("auth_sha256")
                    break
                time.sleep(0.02)
            check(got == sha256_hex("Bearer " + value), f"secret {name} does not hold its acknowledged value")
        for name in sorted(S.caps)[:50]:
            st, _h, body = c.request("GET", name, "/cap")
            check(200 <= st < 300, f"acknowledged capability {name} does not answer: {st} {body[:200]!r}")
        c.close()

        # Every 2xx request is in the one chain; the servers interleave.
        records = home.logs()
        kinds = collections.Counter(r.get("kind") for r in records)
        logged = collections.defaultdict(set)
        order = []
        for rec, status in Home.request_statuses(records):
            if 200 <= status < 300:
                logged[rec.get("agent")].add(rec.get("path"))
            if rec.get("agent") in ("srv1", "srv2"):
                order.append(rec["agent"])
        acked_total = 0
        for srv, paths in S.requests.items():
            acked_total += len(paths)
            missing = paths - logged[srv]
            check(not missing, f"{len(missing)} acknowledged requests through {srv} have no audit record, e.g. {sorted(missing)[:5]}")
            check(len(paths) > 0, f"no request went through {srv}")
        check(kinds["request"] >= acked_total, f"{kinds['request']} request records < {acked_total} acknowledged requests")
        switches = sum(1 for a, b in zip(order, order[1:]) if a != b)
        check(switches >= 10 or len(order) < 20, f"the two servers' records do not interleave ({switches} switches in {len(order)} records)")
        seqs = [rec["seq"] for rec in records]
        check(seqs == list(range(1, len(seqs) + 1)), "the records' seq numbers are not 1..n")
        r = home.verify()
        check(r.ok and "intact" in r.out, f"final audit verify: {r}")
        for name, s in servers.items():
            check(s.alive(), f"server {name} died: {s.log()[-2000:]}")
        probe = lock_timeout_probe(home, upstream.url)
        for name, s in servers.items():
            s.stop()
            if any(m in s.log() for m in PANIC_MARKERS):
                fail(f"server {name} panicked: {s.log()[-3000:]}")
        pickup = sorted(S.pickup)
        p50 = pickup[len(pickup) // 2] if pickup else float("nan")
        pmax = pickup[-1] if pickup else float("nan")
        dur = time.monotonic() - t_start
        writes = len(S.secrets) + len(S.services) + len(S.caps) + len(S.tokens)
        lost = [f for f in common.failures() if " lost" in f or "does not hold" in f or "does not answer" in f]
        unlogged = [f for f in common.failures() if "have no audit record" in f]
        cmd_p = {k: f"{sorted(v)[len(v) // 2] * 1000:.0f}/{max(v) * 1000:.0f}ms" for k, v in S.cmd_secs.items()}
        print(
            f"SUMMARY concurrency: {args.writers} writers and 2 gateway servers ({args.clients} clients each) on one home for "
            f"{seconds:.0f}s (total {dur:.1f}s). Commands: {dict(S.cmds)} (median/max {cmd_p}); acknowledged writes {writes} "
            f"({len(S.secrets)} secrets, {len(S.services)} services, {len(S.caps)} capabilities, {len(S.tokens)} tokens), "
            f"{'all present with their values' if not lost else f'{len(lost)} LOST or wrong (see FAIL lines)'}; lock-timeout refusals during the run: {len(S.refused)} (absent as required); other failures: "
            f"{len(S.failed)}. Services added while serving picked up by both servers: {len(S.pickup)} (median {p50 * 1000:.0f} ms, "
            f"max {pmax * 1000:.0f} ms); new tokens checked on both servers: {S.token_checks}. Requests acknowledged: "
            f"srv1 {len(S.requests['srv1'])}, srv2 {len(S.requests['srv2'])}, "
            f"{'all with their records' if not unlogged else 'SOME WITHOUT A RECORD (see FAIL lines)'}; statuses "
            f"srv1 {dict(stats['srv1'])}, srv2 {dict(stats['srv2'])}. Audit: {len(records)} records ({kinds['request']} requests, "
            f"{kinds['config_reload']} config_reload, {kinds['token_issue']} token_issue, {kinds['audit_repair']} audit_repair), "
            f"{switches} switches between the servers' records, {verifies} verifies during the run, final: {r.out.strip()}. "
            f"Lock-timeout probe: {probe}/4 clear refusals. Failures: {len(common.failures())}.",
            flush=True,
        )
    except Exception:
        import traceback

        traceback.print_exc()
        fail("concurrency.py raised")
    finally:
        S.stop.set()
        upstream.stop()
        common.cleanup_keeping_on_failure(home)
    common.verdict("concurrency.py")


if __name__ == "__main__":
    main()
