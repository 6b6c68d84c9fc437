"""Team mode on one PostgreSQL (section `team`, issue 15).

Usage: bench_team.py --upstream PORT --db URL --psql PATH --pg-dir DIR [--devices N]
                     [--reps R] [--conns C] [--duration D] [--outage S]

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

Throughput (before the revocations): wrk at C connections on every gateway at
once for D, total req/s and each gateway's p50, against the same number of
local-mode homes (no team, the same service and capability) measured the same
way, one after the other on this machine.

Outage (last): one client per gateway sends requests while the cluster is
stopped for S seconds (`scripts/postgres halt`), then started again (`resume`):
the time from `resume` returning to every gateway serving again (a server past
max_staleness refuses until its follower caught up) and to every audit record
written during the outage being in the database.
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
        servers.append(start_gateway(h))
    return servers


def start_gateway(home):
    """`airlock serve --gateway` on a free port for `home`: (home, port, process)."""
    port = lib.free_port()
    p = subprocess.Popen([BIN, "serve", "--gateway", f"127.0.0.1:{port}"], env={**os.environ, "AIRLOCK_HOME": home},
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lib.wait_port(port, proc=p)
    return home, port, p


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


def throughput(ports, tokens, prefix, conns, duration):
    """wrk on every gateway at once: (total req/s, median of the p50s, max p99, errors)."""
    results = [None] * len(ports)

    def one(i):
        results[i] = lib.wrk(f"http://127.0.0.1:{ports[i]}{prefix}", conns, duration,
                             [f"Authorization: Bearer {tokens[i]}"])
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(ports))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if any(r is None for r in results):
        raise SystemExit("a wrk run failed")
    return (sum(r["rps"] for r in results), lib.median([r["p50_ms"] for r in results]),
            max(r["p99_ms"] for r in results), sum(r["errors"] + r["non2xx"] for r in results))


def fresh_tokens(servers):
    return [json.loads(cli(h, "token", "issue", "--agent", "bench", "--json"))["token"] for h, _, _ in servers]


def local_servers(n, upstream):
    """n local-mode homes (no team) with the same service and capability, each serving."""
    servers = []
    for i in range(n):
        h = os.path.join(WORK, f"local{i}")
        os.makedirs(h, mode=0o700, exist_ok=True)
        with open(os.path.join(h, "airlock.toml"), "w") as f:
            f.write(f'[services.up]\nurl = "http://127.0.0.1:{upstream}"\n'
                    'auth = { type = "bearer", secret = "key" }\n\n'
                    '[capabilities.up]\nservice = "up"\nttl = "1h"\nallow = ["GET /**"]\n')
        cli(h, "secret", "set", "key", "--stdin", stdin="sk_test_team_bench_0123456789")
        servers.append(start_gateway(h))
    return servers


def stop(servers):
    for _, _, p in servers:
        p.terminate()
    for _, _, p in servers:
        p.wait()


def outage(servers, a):
    """Stops the cluster for a.outage s under a light load; after `resume`, the
    seconds until every gateway serves again and until every record is uploaded."""
    tokens = fresh_tokens(servers)
    n = len(servers)
    back = [None] * n
    resumed = [None]
    done = threading.Event()
    counts = [[0, 0] for _ in servers]

    def client(i):
        port = servers[i][1]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while not done.is_set():
            try:
                status = get(conn, tokens[i])
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                time.sleep(0.01)
                continue
            counts[i][0 if status == 200 else 1] += 1
            if status == 200 and resumed[0] is not None and back[i] is None:
                back[i] = time.perf_counter()
            time.sleep(0.02)
        conn.close()
    clients = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for c in clients:
        c.start()
    time.sleep(2)
    subprocess.run(["bash", "scripts/postgres", "halt", a.pg_dir], check=True, capture_output=True)
    time.sleep(a.outage)
    refused_before = sum(c[1] for c in counts)
    subprocess.run(["bash", "scripts/postgres", "resume", a.pg_dir], check=True, capture_output=True)
    t0 = time.perf_counter()
    resumed[0] = t0
    deadline = t0 + 120
    while any(b is None for b in back) and time.perf_counter() < deadline:
        time.sleep(0.05)
    done.set()
    for c in clients:
        c.join()
    if any(b is None for b in back):
        raise SystemExit("a gateway did not serve again within 120 s of the restart")
    serving = [b - t0 for b in back]
    backlog, drain_s = audit_lag(servers, a.db, a.psql)
    return {"serving_s": serving, "refused_during": refused_before,
            "served": sum(c[0] for c in counts), "refused": sum(c[1] for c in counts),
            "audit_backlog": backlog, "audit_s": time.perf_counter() - t0,
            "audit_drain_after_serving_s": drain_s}


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
    ap.add_argument("--pg-dir", required=True)
    ap.add_argument("--devices", type=int, default=8)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--duration", default="10s")
    ap.add_argument("--outage", type=int, default=60)
    a = ap.parse_args()
    load1 = os.getloadavg()[0]
    servers = setup(a)
    try:
        ports = [port for _, port, _ in servers]
        team_tp = throughput(ports, fresh_tokens(servers), "/up/v1/items", a.conns, a.duration)
        local = local_servers(a.devices, a.upstream)
        try:
            local_tp = throughput([port for _, port, _ in local], fresh_tokens(local), "/up/v1/items",
                                  a.conns, a.duration)
        finally:
            stop(local)
        delays, worst = [], []
        for _ in range(a.reps):
            d = repetition(servers)
            if len(d) != len(servers) - 1:
                raise SystemExit("a gateway never refused the revoked token")
            delays += d
            worst.append(max(d))
        backlog, drain_s = audit_lag(servers, a.db, a.psql)
        out = outage(servers, a)
    finally:
        stop(servers)
    load2 = os.getloadavg()[0]
    p50, p99 = lib.pct(delays, 0.5), lib.pct(delays, 0.99)
    w50, w99 = lib.pct(worst, 0.5), lib.pct(worst, 0.99)
    rows = [["every gateway (each delay)", len(delays), lib.num(p50), lib.num(p99), lib.num(max(delays))],
            ["the slowest gateway of each revocation", len(worst), lib.num(w50), lib.num(w99), lib.num(max(worst))]]
    tp_rows = [[f"team mode ({a.devices} devices, followers running)", lib.num(team_tp[0]), lib.num(team_tp[1]),
                lib.num(team_tp[2]), team_tp[3]],
               [f"local mode ({a.devices} homes, no database)", lib.num(local_tp[0]), lib.num(local_tp[1]),
                lib.num(local_tp[2]), local_tp[3]]]
    serving = out["serving_s"]
    summary = [
        {"measure": f"team: total req/s, {a.devices} servers × {a.conns} connections", "airlock": lib.num(team_tp[0]),
         "reference": f"local mode {lib.num(local_tp[0])}", "ratio": lib.ratio(team_tp[0], local_tp[0])},
        {"measure": f"team: gateway p50 at {a.conns} connections", "airlock": f"{lib.num(team_tp[1])} ms",
         "reference": f"local mode {lib.num(local_tp[1])} ms", "ratio": lib.ratio(team_tp[1], local_tp[1])},
        {"measure": f"team: revocation propagation p50, {a.devices} servers on one PostgreSQL", "airlock": f"{lib.num(p50)} ms",
         "reference": "", "ratio": ""},
        {"measure": f"team: revocation propagation p99, {a.devices} servers on one PostgreSQL", "airlock": f"{lib.num(p99)} ms",
         "reference": "target 100 ms", "ratio": lib.ratio(p99, 100)},
        {"measure": f"team: catch-up after a {a.outage} s outage (every gateway serving again)",
         "airlock": f"{lib.num(max(serving))} s", "reference": "", "ratio": ""},
    ]
    tables = [{"title": f"Throughput: wrk at {a.conns} connections on each of {a.devices} gateways at once ({a.duration}), "
                        "against as many local-mode homes",
               "columns": ["servers", "total req/s", "p50 ms (median of the gateways)", "p99 ms (worst gateway)",
                           "errors + non-2xx"], "rows": tp_rows},
              {"title": f"Revocation propagation: `airlock revoke --all` returning on device 1 to the first refused request "
                        f"on each other gateway ({a.devices} devices, {a.reps} revocations)",
               "columns": ["delays", "n", "p50 ms", "p99 ms", "max ms"], "rows": rows},
              {"title": "Audit upload once the requests stop",
               "columns": ["records not uploaded yet", "seconds until every record is in the database"],
               "rows": [[backlog, lib.num(drain_s)]]},
              {"title": f"Outage: PostgreSQL stopped for {a.outage} s under a light load (one client per gateway), then restarted",
               "columns": ["requests served / refused", "every gateway serving again (s after restart; p50, max)",
                           "records not uploaded at that point", "every record in the database (s after restart)"],
               "rows": [[f"{out['served']:,} / {out['refused']:,}",
                         f"{lib.num(lib.median(serving))}, {lib.num(max(serving))}",
                         out["audit_backlog"], lib.num(out["audit_s"])]]}]
    notes = ["Every server follows the change log with PgListener: a revocation reaches it as a pg_notify of its "
             "number, then one catch-up (verify every row, apply to the home's state files), then the next request "
             "reads the new state. The followers upload audit records every 2 s.",
             f"Load average (1 min) at the start {load1:.2f}, at the end {load2:.2f}; every server, wrk, PostgreSQL "
             "and nginx share this machine's cores, so the totals measure the machine as much as airlock."]
    lib.write_section("team", "Team mode on PostgreSQL", a.reps, summary, tables,
                      {"delays_ms": delays, "worst_ms": worst, "audit_backlog": backlog, "audit_drain_s": drain_s,
                       "throughput_team": team_tp, "throughput_local": local_tp, "outage": out,
                       "loadavg": [load1, load2]},
                      notes, {"devices": a.devices, "reps": a.reps, "conns": a.conns, "duration": a.duration,
                              "outage_s": a.outage})


if __name__ == "__main__":
    main()
