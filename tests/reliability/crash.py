#!/usr/bin/env python3
"""Crash reliability: SIGKILL airlock at random points under load, then check
that nothing acknowledged was lost and nothing half-written is visible.

    python3 tests/reliability/crash.py [--bin PATH] [--full] [--kills N] [--clients N]

Two phases on one throwaway home (key-file mode):

A. The gateway under load. `airlock serve --gateway` is started; --clients threads
   send requests through it (each with a unique path); after a random delay it is
   SIGKILLed and started again. One kill in five lands during start-up (before the
   port opens). After some kills a torn final audit line is simulated (the bytes a
   kill in the middle of a record's write leaves), and the next server must repair
   it and record an `audit_repair` record. `airlock audit verify` runs between kills.

B. CLI writers killed mid-write, one at a time, while a server keeps serving load:
   `secret set --stdin`, `add`, `cap add`, `token issue`, `secret rotate --stdin`,
   each SIGKILLed after a random delay drawn from 0..1.6x that command's measured
   run time (so most die somewhere inside it, some finish). Checkpoints every few kills.

Every check, at checkpoints and at the end:
  * the vault and config open (`secret list --json`, `list --json`, `token list
    --json`, `cap list --json`), airlock.toml parses (tomllib);
  * every acknowledged write is there: a command that exited 0 => its secret,
    service, capability or token is present; values are checked through the
    gateway (the upstream reports the SHA-256 of the Authorization it got): `add`
    keys, the rotated secret (last acknowledged value or a later attempt), every
    `secret set` value (through services added to airlock.toml at the end), every
    acknowledged token authenticates;
  * nothing half-written: a service in the config has its secret; a secret that a
    killed command left has exactly the value that command was given; stray temp
    files are listed and must not break commands;
  * every gateway request answered 2xx has its `request` record (by unique path);
  * `airlock audit verify` passes and each simulated torn line was repaired by an
    `audit_repair` record; no process panicked.
At the end negative controls run the same checks on damaged scratch copies of the
home (a changed audit line, a deleted acknowledged secret, a dropped request
record) and fail the suite unless each is caught.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Client, Home, Upstream, check, fail, sha256_hex  # noqa: E402

PANIC_MARKERS = ("panicked at", "RUST_BACKTRACE", "stack backtrace")


def extra_args(ap):
    ap.add_argument("--kills", type=int, default=None, help="total SIGKILLs (default 60, --full 500)")
    ap.add_argument("--clients", type=int, default=4, help="client threads sending gateway requests")
    ap.add_argument("--gateway-share", type=float, default=0.4, help="fraction of kills aimed at the gateway")
    ap.add_argument("--repair-kills", type=int, default=None,
                    help="extra start-up kills right after a torn audit line (default 20, --full 60)")


# ------------------------------------------------------------------ audit files


def audit_files(home_path: str) -> list[str]:
    return sorted(glob.glob(os.path.join(home_path, "audit", "audit-*.jsonl")))


def audit_tail_torn(home_path: str) -> bool:
    files = [f for f in audit_files(home_path) if os.path.getsize(f) > 0]
    if not files:
        return False
    with open(files[-1], "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def count_repairs_raw(home_path: str) -> int:
    n = 0
    for p in audit_files(home_path):
        with open(p, "rb") as f:
            n += f.read().count(b'"kind":"audit_repair"')
    return n


def inject_torn_tail(home_path: str) -> None:
    """Append the first bytes of a record, no newline: what a writer killed in the
    middle of its write() would leave. Only while no server runs."""
    files = audit_files(home_path)
    if not files:
        return
    last = files[-1]
    with open(last, "rb") as f:
        data = f.read()
    lines = data.rstrip(b"\n").split(b"\n")
    prev = json.loads(lines[-1]) if lines and lines[-1] else {"seq": 0, "mac": "0" * 64}
    rec = (
        '{"ts":"2026-01-01T00:00:00.000Z","seq":%d,"kind":"request","agent":"crash","agent_trusted":true,'
        '"capability":"svc","method":"GET","path":"/torn","status":200,"decision":"allow","prev":"%s","mac":"%s"}\n'
        % (prev["seq"] + 1, prev["mac"], "a" * 64)
    ).encode()
    cut = random.randrange(1, len(rec) - 1)
    with open(last, "ab") as f:
        f.write(rec[:cut])


# ------------------------------------------------------------------ what was acknowledged


class Ledger:
    def __init__(self):
        self.secrets = {}  # acknowledged `secret set`: name -> value
        self.secrets_maybe = {}  # killed `secret set`: name -> value it was given
        self.services = {}  # acknowledged `add`: name -> key
        self.services_maybe = {}
        self.caps = set()
        self.caps_maybe = set()
        self.tokens = {}  # id -> token
        self.token_attempts = 0
        self.rot_name = "rot"
        self.rot_attempts = []  # [(value, acknowledged)]
        self.requests = set()  # unique paths answered 2xx
        self.lock = threading.Lock()
        self.torn_injected = 0
        self.torn_natural = 0
        self.torn_repaired_checked = 0
        self.silent_repairs = 0  # reported as failures where they happen

    def rot_allowed(self):
        """Values the rotated secret may hold: the last acknowledged one, or any later attempt."""
        last_ack = max((i for i, (_, a) in enumerate(self.rot_attempts) if a), default=-1)
        return {v for v, _ in self.rot_attempts[max(last_ack, 0) :]} | (
            {"rot-0"} if last_ack < 0 else set()
        )

    def rot_version_range(self):
        acked = sum(1 for _, a in self.rot_attempts if a)
        return 1 + acked, 1 + len(self.rot_attempts)


# ------------------------------------------------------------------ the checks


def check_state(home: Home, L: Ledger, client: Client | None, where: str, values: bool = True) -> list[str]:
    """Returns the list of problems (empty = fine)."""
    problems = []

    def bad(msg):
        problems.append(f"[{where}] {msg}")

    # The home opens and parses.
    try:
        secrets = home.secrets()
        listing = home.listing()
        tokens = {t["id"]: t for t in home.tokens()}
        r = home.run("cap", "list", "--json")
        if not r.ok:
            bad(f"cap list --json failed: {r}")
    except Exception as e:  # noqa: BLE001
        bad(f"the home does not open: {e}")
        return problems
    try:
        with open(os.path.join(home.path, "airlock.toml"), "rb") as f:
            tomllib.load(f)
    except Exception as e:  # noqa: BLE001
        bad(f"airlock.toml does not parse: {e}")
    services = {s["name"]: s for s in listing["services"]}
    caps = {c["name"]: c for c in listing["capabilities"]}

    # Acknowledged writes are present.
    acknowledged = [
        (L.secrets, [(secrets, "`secret set {}` lost")]),
        (L.services, [(services, "`add {}` lost: no service"), (caps, "`add {}` lost: no capability"), (secrets, "`add {}` lost: no secret")]),
        (L.caps, [(caps, "`cap add {}` lost")]),
        (L.tokens, [(tokens, "`token issue` (token {}) lost")]),
    ]
    for names, wheres in acknowledged:
        for name in names:
            for present, what in wheres:
                if name not in present:
                    bad("acknowledged " + what.format(name))

    # Nothing half-written: every service's secrets exist, every capability's service exists.
    for name, s in services.items():
        for sec in s.get("secrets", []):
            if sec not in secrets:
                bad(f"service {name} refers to secret {sec}, which is not in the vault")
    for name, c in caps.items():
        if c["service"] not in services:
            bad(f"capability {name} refers to service {c['service']}, which does not exist")

    # The rotated secret's version is within what was attempted.
    if L.rot_name in secrets:
        lo, hi = L.rot_version_range()
        v = secrets[L.rot_name]["version"]
        if not lo <= v <= hi:
            bad(f"secret {L.rot_name} is at version {v}, expected {lo}..{hi} after {len(L.rot_attempts)} rotations")
    else:
        bad(f"secret {L.rot_name} is missing")

    if values and client is not None:
        problems += check_values(home, L, client, services, where)
    return problems


def gateway_auth(client: Client, cap: str, path: str = "/check", tries: int = 100):
    """The SHA-256 of the Authorization the upstream received for one request on cap
    (None if it never answered 2xx; retries cover a server still reloading)."""
    last = None
    for _ in range(tries):
        try:
            st, _h, body = client.request("GET", cap, path)
        except Exception as e:  # noqa: BLE001
            last = repr(e)
            time.sleep(0.02)
            continue
        if 200 <= st < 300:
            return json.loads(body)["auth_sha256"], None
        last = f"{st} {body[:200]!r}"
        time.sleep(0.02)
    return None, last


def check_values(home: Home, L: Ledger, client: Client, services: dict, where: str) -> list[str]:
    problems = []
    for name, key in L.services.items():
        got, err = gateway_auth(client, name)
        if got != sha256_hex("Bearer " + key):
            problems.append(f"[{where}] service {name}: the upstream did not get its key ({err or 'other value'})")
    for name, key in L.services_maybe.items():
        if name in services:
            got, err = gateway_auth(client, name)
            if got != sha256_hex("Bearer " + key):
                problems.append(f"[{where}] service {name} (killed add, but present): wrong key ({err or 'other value'})")
    got, err = gateway_auth(client, "svcrot")
    allowed = {sha256_hex("Bearer " + v): v for v in L.rot_allowed()}
    if got not in allowed:
        problems.append(
            f"[{where}] rotated secret: the upstream got neither the last acknowledged value nor a later attempt ({err or 'other value'})"
        )
    return problems


# ------------------------------------------------------------------ phase A: the gateway


class Load:
    """Client threads sending requests to whichever server is current."""

    def __init__(self, L: Ledger, token: str, n: int, tag: str, canary: str):
        self.L = L
        self.token = token
        self.tag = tag
        self.want = sha256_hex("Bearer " + canary)
        self.port = None
        self.gen = 0
        self.cv = threading.Condition()
        self.stop = False
        self.sent = 0
        self.errors = 0
        self.statuses = collections.Counter()
        self.bad_statuses = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]

    def start(self):
        for t in self.threads:
            t.start()

    def set_port(self, port):
        with self.cv:
            self.port = port
            self.gen += 1
            self.cv.notify_all()

    def finish(self):
        with self.cv:
            self.stop = True
            self.cv.notify_all()
        for t in self.threads:
            t.join(timeout=30)

    def _run(self, i):
        client = None
        gen = -1
        n = 0
        while True:
            with self.cv:
                while not self.stop and self.port is None:
                    self.cv.wait(0.1)
                if self.stop:
                    break
                if self.gen != gen:
                    if client:
                        client.close()
                    client = Client(self.port, self.token, timeout=10)
                    gen = self.gen
            n += 1
            path = f"/r/{self.tag}{i}-{n}"
            method = random.choice(("GET", "POST"))
            body = b"x" * random.randrange(0, 2000) if method == "POST" else None
            try:
                st, _h, data = client.request(method, "svc", path, body=body)
            except Exception:  # noqa: BLE001  connection refused/reset: the server was killed
                self.errors += 1
                time.sleep(0.003)
                continue
            self.sent += 1
            self.statuses[st] += 1
            if 200 <= st < 300:
                try:
                    got = json.loads(data)
                except ValueError:
                    fail(f"2xx answer to {path} is not the upstream's JSON: {data[:200]!r}")
                    continue
                if got.get("auth_sha256") != self.want:
                    fail(f"request {path}: the upstream did not receive the service's key")
                if got.get("path") != path:
                    fail(f"request {path}: the upstream received path {got.get('path')!r}")
                with self.L.lock:
                    self.L.requests.add(path)
            else:
                if len(self.bad_statuses) < 20:
                    self.bad_statuses.append((path, st, data[:300]))
        if client:
            client.close()


def scan_panics(texts, where):
    for t in texts:
        if any(m in t for m in PANIC_MARKERS):
            fail(f"{where}: a process panicked:\n{t[-3000:]}")
            return True
    return False


def phase_gateway(home: Home, L: Ledger, token: str, canary: str, kills: int, clients: int, full: bool):
    load = Load(L, token, clients, "a", canary)
    load.start()
    done = 0
    startup_kills = 0
    attempts = 0
    pending_repair = False
    verifies = 0
    max_run = 0.3 if full else 0.25
    while done < kills:
        attempts += 1
        if attempts > kills * 5:
            fail(f"only {done} gateway kills in {attempts} attempts")
            break
        # One kill in five lands during start-up; right after a torn audit line one in
        # two does, since opening the log is when a server repairs it.
        if random.random() < (0.5 if pending_repair else 0.2):
            # Kill during start-up, before (or just as) the port opens.
            log_path = os.path.join(home.tmp, f"startup-{attempts}.log")
            with open(log_path, "wb") as log:
                t_spawn = time.monotonic()
                p = home.spawn("serve", "--gateway", "127.0.0.1:0", stdout=log, stderr=log)
                time.sleep(random.uniform(0, 0.06))
                p.kill()
                delay = time.monotonic() - t_spawn
                rc = p.wait()
            with open(log_path, "rb") as f:
                scan_panics([f.read().decode(errors="replace")], "gateway start-up")
            if rc == -signal.SIGKILL:
                done += 1
                startup_kills += 1
            if pending_repair and not audit_tail_torn(home.path):
                # The server repairs a torn tail when it opens the log. It cut the
                # line: the audit_repair record must be there too.
                repairs = count_repairs_raw(home.path)
                if repairs > L.torn_repaired_checked:
                    L.torn_repaired_checked = repairs
                else:
                    L.silent_repairs += 1
                    fail(
                        "silent audit repair: `airlock serve` SIGKILLed during start-up "
                        f"({delay * 1000:.1f} ms after spawning it) removed the torn final audit line "
                        "but no audit_repair record was written (docs/audit.md: repairs are never silent)"
                    )
                pending_repair = False
        else:
            try:
                s = home.serve()
            except Exception as e:  # noqa: BLE001
                fail(f"airlock serve --gateway did not start after {done} kills: {e}")
                break
            load.set_port(s.gateway_port)
            before = len(L.requests)
            time.sleep(random.uniform(0.02, max_run))
            if pending_repair:
                # Let this server acknowledge at least one request: its first append
                # repaired the torn line, so the repair record must be there now.
                deadline = time.monotonic() + 10
                while len(L.requests) == before and time.monotonic() < deadline:
                    time.sleep(0.005)
            acked_here = len(L.requests) > before
            rc = s.kill()
            home.servers.remove(s)
            load.set_port(None)
            scan_panics([s.log()], "gateway")
            if rc == -signal.SIGKILL:
                done += 1
            if pending_repair:
                if check(acked_here, "a restarted server acknowledged no request within 10 s"):
                    repairs = count_repairs_raw(home.path)
                    if check(repairs > L.torn_repaired_checked,
                             f"torn audit line not repaired and recorded by the next server (audit_repair records: {repairs})"):
                        L.torn_repaired_checked = repairs
                    pending_repair = False
        if audit_tail_torn(home.path) and not pending_repair:
            L.torn_natural += 1
            pending_repair = True
        # Between kills: sometimes simulate a kill in the middle of a record's write.
        if not pending_repair and random.random() < 0.12:
            inject_torn_tail(home.path)
            L.torn_injected += 1
            pending_repair = True
            r = home.verify()
            verifies += 1
            check(r.ok and "incomplete" in r.out + r.err, f"verify with a torn final line: expected exit 0 naming the incomplete record, got {r}")
        elif done % 8 == 0:
            r = home.verify()
            verifies += 1
            check(r.ok, f"audit verify failed after {done} gateway kills: {r}")
    load.finish()
    stats = {
        "kills": done,
        "startup_kills": startup_kills,
        "sent": load.sent,
        "conn_errors": load.errors,
        "statuses": dict(load.statuses),
        "verifies": verifies,
        "pending_repair": pending_repair,
    }
    for path, st, data in load.bad_statuses:
        fail(f"gateway answered {st} to {path}: {data!r}")
    return stats


# ------------------------------------------------------------------ phase B: CLI writers


def phase_repair(home: Home, L: Ledger, n: int) -> dict:
    """Torn final audit line, then `airlock serve` SIGKILLed during start-up, n times.

    A server repairs a torn tail when it opens the log: it must cut the line AND
    write an audit_repair record, or do neither (killed before). Kill instants are
    spread around the measured moment a starting server cuts the line."""
    # When, after spawning, does a server cut a torn line? Aim the kills around it.
    cuts = []
    for _ in range(3):
        if not audit_tail_torn(home.path):
            inject_torn_tail(home.path)
            L.torn_injected += 1
        t0 = time.monotonic()
        p = home.spawn("serve", "--gateway", "127.0.0.1:0")
        while audit_tail_torn(home.path) and time.monotonic() - t0 < 10:
            time.sleep(0.0002)
        cuts.append(time.monotonic() - t0)
        time.sleep(0.05)
        p.kill()
        p.wait()
    t_cut = statistics.median(cuts)
    t_ready = t_cut
    cut = recorded = untouched = kills = 0
    silent = []
    for i in range(n):
        if not audit_tail_torn(home.path):
            inject_torn_tail(home.path)
            L.torn_injected += 1
        before = count_repairs_raw(home.path)
        t0 = time.monotonic()
        p = home.spawn("serve", "--gateway", "127.0.0.1:0", stderr=subprocess.PIPE)
        time.sleep(random.uniform(t_cut * 0.5, t_cut * 1.5 + 0.002))
        p.kill()
        elapsed = time.monotonic() - t0
        _out, err = p.communicate()
        scan_panics([err.decode(errors="replace")], "gateway start-up (repair phase)")
        if p.returncode == -signal.SIGKILL:
            kills += 1
        after = count_repairs_raw(home.path)
        if audit_tail_torn(home.path):
            untouched += 1
            continue
        cut += 1
        if after > before:
            recorded += 1
        else:
            silent.append(elapsed)
    L.torn_repaired_checked = count_repairs_raw(home.path)
    L.silent_repairs += len(silent)
    if silent:
        fail(
            f"silent audit repair: {len(silent)} of {cut} torn final audit lines were cut by an `airlock serve` "
            f"SIGKILLed during start-up ({', '.join(f'{t * 1000:.1f}' for t in silent[:8])} ms after spawning it) "
            "without any audit_repair record (docs/audit.md: repairs are never silent). Reproduce: put a partial "
            "line at the end of audit/audit-000001.jsonl, start `airlock serve --gateway 127.0.0.1:0`, SIGKILL it "
            "a few ms later; AuditLog::reload() truncates and fsyncs the file before it writes the repair record"
        )
    r = home.verify()
    check(r.ok, f"audit verify after the repair phase: {r}")
    return {"kills": kills, "cut": cut, "recorded": recorded, "untouched": untouched,
            "silent": len(silent), "t_ready": t_ready}


def cli_ops(L: Ledger, upstream_url: str, i: int):
    """One randomly chosen write: (label, args, stdin, env, on_ack, on_kill)."""
    kind = random.choice(("secret", "add", "cap", "token", "rotate"))
    if kind == "secret":
        name, value = f"s{i}", f"value-s{i}-{random.randrange(1 << 30)}"
        return (kind, ["secret", "set", name, "--stdin"], value, None,
                lambda r: L.secrets.__setitem__(name, value), lambda: L.secrets_maybe.__setitem__(name, value))
    if kind == "add":
        name, key = f"svc{i}", f"key-svc{i}-{random.randrange(1 << 30)}"
        return (kind, ["add", name, "--cap", "--url", upstream_url, "--key-from-env", "K"], None, {"K": key},
                lambda r: L.services.__setitem__(name, key), lambda: L.services_maybe.__setitem__(name, key))
    if kind == "cap":
        name = f"cap{i}"
        return (kind, ["cap", "add", name, "--service", "svc", "--ttl", "30m", "--allow", "GET /**", "--rate", "1000/min"], None, None,
                lambda r: L.caps.add(name), lambda: L.caps_maybe.add(name))

    if kind == "token":
        def ack(r):
            tok = r.out.strip().splitlines()[0] if r.out.strip() else ""
            parts = tok.split("_")
            if len(parts) < 3 or parts[0] != "airlock":
                fail(f"token issue exited 0 but printed no token: {r}")
                return
            L.tokens[parts[1]] = tok
        L.token_attempts += 1
        return (kind, ["token", "issue", "--agent", f"agent{i}", "--ttl", "2h"], None, None, ack, lambda: None)
    value = f"rot-{i}"
    idx = len(L.rot_attempts)
    L.rot_attempts.append((value, False))
    return (kind, ["secret", "rotate", L.rot_name, "--stdin"], value, None,
            lambda r: L.rot_attempts.__setitem__(idx, (value, True)), lambda: None)


def run_killed(home: Home, args, stdin, env, delay):
    p = home.spawn(*args, env=env, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if stdin is not None:
        try:
            p.stdin.write(stdin.encode())
            p.stdin.close()
        except OSError:
            pass
        p.stdin = None
    if delay is not None:
        time.sleep(delay)
        p.kill()
    out, err = p.communicate()
    return common.Result(p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), 0.0)


def calibrate(home: Home, upstream_url: str) -> dict:
    """Median run time of each writer, unkilled (these writes are kept)."""
    times = collections.defaultdict(list)
    for j in range(3):
        for kind, args, stdin, env in (
            ("secret", ["secret", "set", f"cal{j}", "--stdin"], "calv", None),
            ("add", ["add", f"calsvc{j}", "--cap", "--url", upstream_url, "--key-from-env", "K"], None, {"K": f"calk{j}"}),
            ("cap", ["cap", "add", f"calcap{j}", "--service", "svc"], None, None),
            ("token", ["token", "issue", "--agent", "cal"], None, None),
            ("rotate", ["secret", "rotate", "calrot", "--stdin"], f"calr{j}", None),
        ):
            t0 = time.monotonic()
            r = run_killed(home, args, stdin, env, None)
            times[kind].append(time.monotonic() - t0)
            check(r.ok, f"calibration {' '.join(args)} failed: {r}")
    return {k: statistics.median(v) for k, v in times.items()}


def phase_cli(home: Home, L: Ledger, kills: int, upstream_url: str, client: Client, med: dict):
    done = 0
    i = 0
    acked = collections.Counter()
    killed = collections.Counter()
    failed_other = []
    checkpoints = 0
    while done < kills:
        i += 1
        if i > kills * 6:
            fail(f"only {done} CLI kills in {i} runs: the writers finish too fast to interrupt")
            break
        kind, args, stdin, env, on_ack, on_kill = cli_ops(L, upstream_url, i)
        delay = random.uniform(0, med[kind] * 1.6)
        r = run_killed(home, args, stdin, env, delay)
        scan_panics([r.err], f"`airlock {' '.join(args)}`")
        if r.rc == 0:
            acked[kind] += 1
            on_ack(r)
        elif r.rc == -signal.SIGKILL:
            killed[kind] += 1
            done += 1
            on_kill()
        else:
            failed_other.append((args, r))
            on_kill()
        if i % 15 == 0:
            checkpoints += 1
            for p in check_state(home, L, client, f"CLI checkpoint after {done} kills"):
                fail(p)
            r = home.verify()
            check(r.ok, f"audit verify failed after {done} CLI kills: {r}")
    for args, r in failed_other:
        fail(f"`airlock {' '.join(args)}` failed without being killed: {r}")
    return {"kills": done, "runs": i, "acked": dict(acked), "killed": dict(killed), "checkpoints": checkpoints}


# ------------------------------------------------------------------ final checks


def add_checker_services(home: Home, names_values: dict, upstream_url: str) -> None:
    """Services that use the `secret set` secrets, so their values can be checked
    through the gateway (hand-edited config, written atomically)."""
    path = os.path.join(home.path, "airlock.toml")
    with open(path) as f:
        text = f.read()
    for name in names_values:
        text += (
            f'\n[services.chk-{name}]\nurl = "{upstream_url}"\nauth = {{ type = "bearer", secret = "{name}" }}\n'
            f'\n[capabilities.chk-{name}]\nservice = "chk-{name}"\nttl = "1h"\n'
        )
    tmp = os.path.join(home.tmp, "airlock.toml.new")
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def final_checks(home: Home, L: Ledger, client: Client, upstream_url: str) -> dict:
    for p in check_state(home, L, client, "final"):
        fail(p)
    secrets = home.secrets()
    # Every secret a `secret set` left, acknowledged or not, holds exactly its value.
    to_check = dict(L.secrets)
    to_check.update({n: v for n, v in L.secrets_maybe.items() if n in secrets})
    add_checker_services(home, to_check, upstream_url)
    for name, value in to_check.items():
        got, err = gateway_auth(client, f"chk-{name}")
        check(got == sha256_hex("Bearer " + value),
              f"secret {name} ({'acknowledged' if name in L.secrets else 'killed set, present'}) does not hold its value ({err or 'other value'})")
    # Every acknowledged token authenticates and has its token_issue record.
    records = home.logs()
    issued = " ".join(r.get("detail", "") for r in records if r.get("kind") == "token_issue")
    for tid, tok in L.tokens.items():
        c = Client(client.port, tok)
        st, _h, body = c.request("GET", "svc", f"/tok/{tid}")
        c.close()
        check(200 <= st < 300, f"acknowledged token {tid} does not authenticate: {st} {body[:200]!r}")
        check(f"token {tid} " in issued, f"acknowledged token {tid} has no token_issue audit record")
    # Every acknowledged capability works (allow GET /**).
    for name in sorted(L.caps):
        st, _h, body = client.request("GET", name, "/capcheck")
        check(200 <= st < 300, f"acknowledged capability {name} does not answer: {st} {body[:200]!r}")
    records = home.logs()  # again: the checks above added records
    kinds = collections.Counter(r.get("kind") for r in records)
    logged = {r.get("path") for r, status in Home.request_statuses(records) if 200 <= status < 300}
    missing = [p for p in L.requests if p not in logged]
    check(not missing, f"{len(missing)} acknowledged gateway requests have no audit record, e.g. {missing[:5]}")
    check(kinds["request"] >= len(L.requests),
          f"fewer request records ({kinds['request']}) than acknowledged requests ({len(L.requests)})")
    expected = L.torn_injected + L.torn_natural - L.silent_repairs - (1 if audit_tail_torn(home.path) else 0)
    check(kinds["audit_repair"] >= expected,
          f"{L.torn_injected + L.torn_natural} torn audit lines ({L.silent_repairs} silent repairs already reported) "
          f"but only {kinds['audit_repair']} audit_repair records")
    r = home.verify()
    check(r.ok and "intact" in r.out, f"final audit verify: {r}")
    return {"records": len(records), "kinds": kinds, "verify": r.out.strip(), "missing": len(missing)}


def negative_controls(home: Home, L: Ledger) -> int:
    """Damage scratch copies of the home; each damage must be caught."""
    caught = 0
    total = 0

    def scratch():
        h = Home(home.bin, init=False)
        shutil.rmtree(h.path, ignore_errors=True)
        shutil.copytree(home.path, h.path, symlinks=True,
                        ignore=shutil.ignore_patterns("*.sock"))
        return h

    def control(h, was_caught, missed):
        """One damage's verdict (1 if caught); says so when it was missed. Removes the copy."""
        if not was_caught:
            print(f"negative control: {missed}")
        h.cleanup()
        return 1 if was_caught else 0

    # 1. a changed byte in an old audit record
    total += 1
    h = scratch()
    f = audit_files(h.path)[0]
    with open(f, "rb") as fh:
        lines = fh.read().split(b"\n")
    k = len(lines) // 2
    lines[k] = lines[k].replace(b'"seq":', b'"seq": ', 1) if b'"status":200' not in lines[k] else lines[k].replace(b'"status":200', b'"status":201', 1)
    with open(f, "wb") as fh:
        fh.write(b"\n".join(lines))
    r = h.verify()
    caught += control(h, r.rc != 0 and "BROKEN" in r.out + r.err, f"a changed audit line was NOT caught by verify: {r}")

    def drop_secret(h, name):
        path = os.path.join(h.path, "vault.json")
        with open(path) as fh:
            v = json.load(fh)
        v["secrets"].pop(name, None)
        with open(path, "w") as fh:
            json.dump(v, fh)

    # 2. an acknowledged secret gone from the vault
    if L.secrets:
        total += 1
        h = scratch()
        name = next((n for n in L.secrets if n in home.secrets()), next(iter(L.secrets)))
        drop_secret(h, name)
        probs = check_state(h, L, None, "control", values=False)
        caught += control(h, bool(probs), f"a lost acknowledged secret ({name}) was NOT caught")

    # 3. an acknowledged request's record dropped (the newest file cut back before
    #    it): the anchor makes verify fail, and the path check misses it.
    if L.requests:
        total += 1
        h = scratch()
        f = audit_files(h.path)[-1]
        with open(f, "rb") as fh:
            lines = fh.read().rstrip(b"\n").split(b"\n")
        drop = next(j for j in range(len(lines) - 1, -1, -1)
                    if b'"kind":"request"' in lines[j] and json.loads(lines[j]).get("path") in L.requests)
        path = json.loads(lines[drop])["path"]
        with open(f, "wb") as fh:
            fh.write(b"\n".join(lines[:drop]) + b"\n")
        r = h.verify()
        logged = {rec.get("path") for rec in h.logs() if rec.get("kind") == "request"}
        caught += control(h, r.rc != 0 and (path not in logged), f"a dropped request record was NOT caught (verify {r}, path present {path in logged})")

    # 4. a service's secret gone behind its back (a half-written add)
    if L.services:
        total += 1
        h = scratch()
        name = next(iter(L.services))
        drop_secret(h, name)
        probs = check_state(h, L, None, "control", values=False)
        caught += control(h, any(f"refers to secret {name}" in p for p in probs), f"a service without its secret was NOT caught: {probs}")
    return caught, total


# ------------------------------------------------------------------ main


def main():
    args = common.parse_args("SIGKILL airlock at random points under load; nothing acknowledged may be lost.", extra_args)
    kills = args.kills if args.kills is not None else (500 if args.full else 60)
    gw_kills = max(1, round(kills * args.gateway_share))
    cli_kills = max(1, kills - gw_kills)
    t0 = time.monotonic()
    home = Home(args.bin, keep=args.keep)
    upstream = Upstream()
    L = Ledger()
    canary = f"canary-{random.randrange(1 << 40)}"
    try:
        r = home.add_service("svc", upstream.url, canary)
        check(r.ok, f"add svc: {r}")
        r = home.add_service("svcrot", upstream.url, "unused")
        check(r.ok, f"add svcrot: {r}")
        # `svcrot` uses the rotated secret "rot" (set here, then rotated in phase B).
        r = home.run("secret", "set", "rot", "--stdin", input="rot-0")
        check(r.ok, f"secret set rot: {r}")
        r = home.run("secret", "set", "calrot", "--stdin", input="calr")
        check(r.ok, f"secret set calrot: {r}")
        toml_path = os.path.join(home.path, "airlock.toml")
        with open(toml_path) as f:
            text = f.read()
        with open(toml_path, "w") as f:
            f.write(text.replace('secret = "svcrot"', 'secret = "rot"'))
        token = home.issue_token("crash", ttl="4h")

        # Phase A
        ta = time.monotonic()
        A = phase_gateway(home, L, token, canary, gw_kills, args.clients, args.full)
        ta = time.monotonic() - ta
        print(f"phase A: {A['kills']} gateway kills ({A['startup_kills']} during start-up), {len(L.requests)} requests acknowledged, "
              f"{A['sent']} answered, {A['conn_errors']} connection errors, statuses {A['statuses']}, {A['verifies']} verifies, "
              f"{L.torn_injected} torn lines simulated, {L.torn_natural} natural, {ta:.1f}s", flush=True)

        # Phase A2: start-up kills aimed at the audit repair.
        repair_kills = args.repair_kills if args.repair_kills is not None else (60 if args.full else 20)
        t2 = time.monotonic()
        R = phase_repair(home, L, repair_kills)
        print(f"phase A2: {R['kills']} start-up kills right after a torn audit line (a starting server cuts it after {R['t_ready'] * 1000:.0f} ms): "
              f"line cut {R['cut']} times ({R['recorded']} with an audit_repair record, {R['silent']} silently), "
              f"left for the next server {R['untouched']} times, {time.monotonic() - t2:.1f}s", flush=True)

        # Phase B: one server keeps serving load while CLI writers are killed.
        tb = time.monotonic()
        server = home.serve()
        load = Load(L, token, max(1, args.clients // 2), "b", canary)
        load.set_port(server.gateway_port)
        load.start()
        client = Client(server.gateway_port, token)
        med = calibrate(home, upstream.url)
        print("median run time per writer: " + ", ".join(f"{k} {v * 1000:.0f}ms" for k, v in med.items()), flush=True)
        B = phase_cli(home, L, cli_kills, upstream.url, client, med)
        load.finish()
        for path, st, data in load.bad_statuses:
            fail(f"gateway answered {st} to {path} during CLI kills: {data!r}")
        tb = time.monotonic() - tb
        print(f"phase B: {B['kills']} CLI kills in {B['runs']} runs (killed {B['killed']}), acknowledged {B['acked']}, "
              f"{B['checkpoints']} checkpoints, {tb:.1f}s", flush=True)

        # Final checks (the server is still running: it must have kept up with every change).
        F = final_checks(home, L, client, upstream.url)
        client.close()
        check(server.alive(), "the phase-B server died")
        server.stop()
        scan_panics([server.log()], "phase-B server")
        strays = home.stray_files()
        for f in strays:
            mode = os.stat(os.path.join(home.path, f)).st_mode & 0o777
            check(mode & 0o077 == 0, f"leftover temp file {f} is readable by others (mode {mode:o})")
        orphans = sorted(n for n in L.services_maybe if n in home.secrets() and n not in {s["name"] for s in home.listing()["services"]})
        if orphans:
            # `add` writes the vault, then the config: a kill between the two leaves the
            # secret without its service, and `add NAME` again refuses ("already exists").
            r = home.add_service(orphans[0], upstream.url, "again")
            print(f"NOTE: {len(orphans)} killed `add` left its secret without the service (e.g. {orphans[0]}); "
                  f"re-running the add: rc={r.rc} {r.err.strip()[:200]!r}", flush=True)
            check(r.rc == 2 and len(r.err.strip().splitlines()) == 1,
                  f"re-running a killed add must fail with one clear line or succeed: {r}")
        caught, total = negative_controls(home, L)
        check(caught == total, f"negative controls: only {caught}/{total} damages were caught by the checks")

        acked_writes = sum(B["acked"].values())
        lost = [f for f in common.failures() if "lost" in f or "does not hold" in f or "not in the vault" in f]
        dur = time.monotonic() - t0
        print(
            f"SUMMARY crash: {A['kills'] + R['kills'] + B['kills']} SIGKILLs ({A['kills']} of `serve --gateway` under {args.clients} client threads, "
            f"{A['startup_kills']} of them during start-up; {R['kills']} of `serve` starting on a torn audit line: cut {R['cut']}, "
            f"recorded {R['recorded']}, silent {R['silent']}; {B['kills']} of CLI writers mid-write: {B['killed']}) in {dur:.1f}s. "
            f"Acknowledged writes: {acked_writes} ({B['acked']}; {len(L.tokens)} tokens, {len(L.rot_attempts)} rotations attempted), "
            f"{'all present with their values' if not lost else f'{len(lost)} LOST or wrong (see FAIL lines)'}. "
            f"Acknowledged gateway requests: {len(L.requests)}, "
            f"{'every one with its request record' if not F['missing'] else str(F['missing']) + ' WITHOUT a request record'} "
            f"({F['kinds']['request']} request records, {F['records']} records in all). Torn audit lines: {L.torn_injected} simulated + "
            f"{L.torn_natural} from kills; audit_repair records seen: {F['kinds']['audit_repair']}. Final verify: {F['verify']}. "
            f"Stray temp files left by kills: {len(strays)} {strays[:4]}; commands unaffected. Orphan secrets from killed adds: {len(orphans)}. "
            f"Negative controls caught: {caught}/{total}. Failures: {len(common.failures())}.",
            flush=True,
        )
    except Exception:
        import traceback

        traceback.print_exc()
        fail("crash.py raised")
    finally:
        upstream.stop()
        common.cleanup_keeping_on_failure(home)
    common.verdict("crash.py")


if __name__ == "__main__":
    main()
