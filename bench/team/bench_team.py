"""Team mode on one PostgreSQL (section `team`, issue 15).

Usage: bench_team.py --upstream PORT --db URL --psql PATH [--devices N] [--reps R]

N devices (homes) join one team on the database at URL (the app role's): device 0
creates it, the others join with invite codes and are approved, device 0 shares a
service (at the upstream, with a team secret) and a capability. Every device runs
`airlock serve --gateway` (its team follower inside). Each repetition issues a
fresh agent token on every device, checks each gateway serves it, then keeps one
client per gateway sending requests over a kept-alive connection while device 1
runs `airlock revoke --all`; the propagation delay of a gateway is the time from
that command returning to the first refused response it gives (zero when it was
refused before the command returned). Every repetition gives N - 1 delays (device
1's own gateway is left out: it hears the revocation from its own home, not
through the database).

After the last repetition: how many of each device's local audit records are not
in the database yet, and how long until none is (the followers upload every 2 s).
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import lib  # noqa: E402

BIN = os.environ["BENCH_BIN"]
WORK = os.environ["BENCH_WORK"]


def cli(home, *args, stdin=None):
    r = subprocess.run([BIN, *args], env={**os.environ, "AIRLOCK_HOME": home}, input=stdin,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"airlock {' '.join(args)} (home {home}) failed: {r.stderr.strip()}")
    return r.stdout


def setup(a):
    homes = [os.path.join(WORK, f"d{i}") for i in range(a.devices)]
    cli(homes[0], "team", "init", "--db", a.db, "--name", "d0")
    for i, h in enumerate(homes[1:], 1):
        code = cli(homes[0], "team", "invite").strip()
        out = cli(h, "team", "join", "--db", a.db, code, "--name", f"d{i}")
        fp = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("fingerprint: "))
        cli(homes[0], "team", "approve", fp)
    with open(os.path.join(homes[0], "airlock.toml"), "w") as f:
        f.write(f'[services.up]\nurl = "http://127.0.0.1:{a.upstream}"\n'
                'auth = { type = "bearer", secret = "key" }\n\n'
                '[capabilities.up]\nservice = "up"\nttl = "1h"\nallow = ["GET /**"]\n')
    cli(homes[0], "secret", "set", "key", "--stdin", stdin="sk_test_team_bench_0123456789")
    cli(homes[0], "team", "push-config")
    servers = []
    for h in homes:
        cli(h, "team", "sync")
        port = lib.free_port()
        p = subprocess.Popen([BIN, "serve", "--gateway", f"127.0.0.1:{port}"],
                             env={**os.environ, "AIRLOCK_HOME": h},
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lib.wait_port(port, proc=p)
        servers.append((h, port, p))
    return servers


def get(conn, token):
    conn.request("GET", "/up/v1/items", headers={"Authorization": f"Bearer {token}"})
    r = conn.getresponse()
    r.read()
    return r.status


def watch(port, token, start, out, idx):
    """Requests until one is refused; out[idx] = the time of that response."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    start.wait()
    while True:
        try:
            status = get(conn, token)
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        if status != 200:
            out[idx] = time.perf_counter()
            conn.close()
            return


def repetition(servers):
    tokens = []
    for h, port, _ in servers:
        t = json.loads(cli(h, "token", "issue", "--agent", "bench", "--json"))["token"]
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        deadline = time.time() + 30
        while get(c, t) != 200:
            if time.time() > deadline:
                raise SystemExit(f"gateway {port} does not serve a fresh token")
            time.sleep(0.05)
        c.close()
        tokens.append(t)
    start = threading.Event()
    refused = [None] * len(servers)
    watchers = [threading.Thread(target=watch, args=(port, tokens[i], start, refused, i))
                for i, (_, port, _) in enumerate(servers) if i != 1]
    for w in watchers:
        w.start()
    start.set()
    time.sleep(0.05)
    cli(servers[1][0], "revoke", "--all")
    returned = time.perf_counter()
    for w in watchers:
        w.join(60)
    return [max(0.0, (r - returned) * 1000) for i, r in enumerate(refused) if i != 1 and r is not None]


def audit_lag(servers, db, psql):
    """Local records not in the database yet, and the seconds until none is."""
    def missing():
        total = 0
        for h, _, _ in servers:
            local = len(cli(h, "logs", "--json").splitlines())
            st = json.loads(cli(h, "team", "status", "--json"))
            rows = subprocess.run([psql, "-XAt", db, "-c",
                                   f"SELECT count(*) FROM airlock.audit WHERE device = '{st['device']}'"],
                                  capture_output=True, text=True, check=True)
            total += max(0, local - int(rows.stdout.strip() or 0))
        return total
    t0 = time.perf_counter()
    first = missing()
    while missing() > 0 and time.perf_counter() - t0 < 60:
        time.sleep(0.2)
    return first, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--psql", required=True)
    ap.add_argument("--devices", type=int, default=8)
    ap.add_argument("--reps", type=int, default=30)
    a = ap.parse_args()
    servers = setup(a)
    try:
        delays, worst = [], []
        for _ in range(a.reps):
            d = repetition(servers)
            if len(d) != len(servers) - 1:
                raise SystemExit("a gateway never refused the revoked token")
            delays += d
            worst.append(max(d))
        backlog, drain_s = audit_lag(servers, a.db, a.psql)
    finally:
        for _, _, p in servers:
            p.terminate()
        for _, _, p in servers:
            p.wait()
    p50, p99 = lib.pct(delays, 0.5), lib.pct(delays, 0.99)
    w50, w99 = lib.pct(worst, 0.5), lib.pct(worst, 0.99)
    rows = [["every gateway (each delay)", len(delays), lib.num(p50), lib.num(p99), lib.num(max(delays))],
            ["the slowest gateway of each revocation", len(worst), lib.num(w50), lib.num(w99), lib.num(max(worst))]]
    summary = [
        {"measure": f"team: revocation propagation p50, {a.devices} servers on one PostgreSQL", "airlock": f"{lib.num(p50)} ms",
         "reference": "", "ratio": ""},
        {"measure": f"team: revocation propagation p99, {a.devices} servers on one PostgreSQL", "airlock": f"{lib.num(p99)} ms",
         "reference": "target 100 ms", "ratio": lib.ratio(p99, 100)},
    ]
    tables = [{"title": f"Revocation propagation: `airlock revoke --all` returning on device 1 to the first refused request "
                        f"on each other gateway ({a.devices} devices, {a.reps} revocations)",
               "columns": ["delays", "n", "p50 ms", "p99 ms", "max ms"], "rows": rows},
              {"title": "Audit upload once the requests stop",
               "columns": ["records not uploaded yet", "seconds until every record is in the database"],
               "rows": [[backlog, lib.num(drain_s)]]}]
    notes = ["Every server follows the change log with PgListener: a revocation reaches it as a pg_notify of its "
             "number, then one catch-up (verify every row, apply to the home's state files), then the next request "
             "reads the new state. The followers upload audit records every 2 s."]
    lib.write_section("team", "Team mode on PostgreSQL", a.reps, summary, tables,
                      {"delays_ms": delays, "worst_ms": worst, "audit_backlog": backlog, "audit_drain_s": drain_s},
                      notes, {"devices": a.devices, "reps": a.reps})


if __name__ == "__main__":
    main()
