"""HTTP gateway under load: wrk against nginx directly, through the bare proxy (the
gateway's floor: the same server, HTTP client and runtime as airlock's gateway and
nothing else, crates/airlock-gateway/examples/bare_proxy.rs) and through `airlock
serve --gateway` (one server per airlock home, e.g. one per audit_fsync setting),
at several connection counts; each run measures every target in turn. For each
run, the CPU time (user + system, from /proc) of the server wrk talks to, of
nginx and of wrk itself, per request. Afterwards the audit log of each home must
hold a request record for every request wrk counted, and `airlock audit verify`
must pass.

Usage: bench_gateway.py --upstream PORT --nginx-pid-file PATH --bare-proxy PATH
                        --home LABEL::HOME [--home ...]
                        [--ui-home LABEL::HOME] [--conns 1,16,64] [--runs R] [--duration 10s]
Each HOME holds a capability `bench` for the upstream. A --ui-home is served with
`serve --gateway ... --ui ...` and, while wrk runs against it, a client logged in
to the dashboard reads its live view (`/events`, every record as it is written);
the section compares it with the last --home (issue 17: within 5 %).
Writes the section `gateway`.
"""

import argparse
import http.client
import os
import resource
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lib  # noqa: E402

BIN = os.environ["BENCH_BIN"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
BARE = "bare proxy (same server, client, runtime; no policy, audit, injection, scrubbing)"


def cpu_seconds(pids):
    """User + system CPU time of processes `pids` (all their threads), in seconds."""
    total = 0
    for pid in pids:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(f[11]) + int(f[12])  # utime, stime
    return total / CLK_TCK


def nginx_pids(pid_file):
    """nginx's master and its workers."""
    master = int(open(pid_file).read().strip())
    pids = [master]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == master:
                pids.append(int(d))
    return pids


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measured_wrk(url, conns, duration, headers, server_pids, upstream_pids):
    """One wrk run, with the CPU time per request of the server it talks to
    (`server_pids`), of the upstream nginx (when proxied) and of wrk."""
    upstream_pids = [p for p in upstream_pids if p not in server_pids]
    s0, u0, w0 = cpu_seconds(server_pids), cpu_seconds(upstream_pids), children_cpu()
    r = lib.wrk(url, conns, duration, headers)
    s1, u1, w1 = cpu_seconds(server_pids), cpu_seconds(upstream_pids), children_cpu()
    n = max(r["requests"], 1)
    r["server_cpu_us"] = (s1 - s0) * 1e6 / n
    r["nginx_cpu_us"] = (u1 - u0) * 1e6 / n
    r["wrk_cpu_us"] = (w1 - w0) * 1e6 / n
    r["total_cpu_us"] = r["server_cpu_us"] + r["nginx_cpu_us"] + r["wrk_cpu_us"]
    return r


def start_bare_proxy(path, upstream):
    port = lib.free_port()
    p = subprocess.Popen([path, f"127.0.0.1:{port}", f"http://127.0.0.1:{upstream}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    lib.wait_port(port, proc=p)
    return p, port


def start_gateway(home, ui_port=None):
    env = {**os.environ, "AIRLOCK_HOME": home}
    token = subprocess.run([BIN, "token", "issue", "--agent", "bench", "--ttl", "1d"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    port = lib.free_port()
    log_path = os.path.join(home, "serve.log")
    log = open(log_path, "w")
    args = [BIN, "serve", "--gateway", f"127.0.0.1:{port}"]
    if ui_port:
        args += ["--ui", f"127.0.0.1:{ui_port}"]
    p = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    lib.wait_port(port, proc=p)
    if ui_port:
        lib.wait_port(ui_port, proc=p)
    return p, port, token


class LiveView:
    """A client logged in to the dashboard of a `serve --ui`, reading `/events`
    (the live view's stream) in a thread for as long as the benchmark runs."""

    def __init__(self, home, port):
        deadline = time.time() + 30
        link = None
        while link is None and time.time() < deadline:
            for line in open(os.path.join(home, "serve.log")):
                if "/login#token=" in line:
                    link = line.strip().split("/login#token=", 1)[1]
            time.sleep(0.05)
        if link is None:
            raise SystemExit("serve --ui printed no login link")
        host = f"127.0.0.1:{port}"
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("POST", "/login", body=f"token={link}",
                  headers={"Host": host, "Origin": f"http://{host}", "Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        r.read()
        cookie = (r.getheader("Set-Cookie") or "").split(";")[0]
        if r.status != 204 or not cookie:
            raise SystemExit(f"dashboard login answered {r.status}")
        c.close()
        self.events = 0
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.conn.request("GET", "/events", headers={"Host": host, "Cookie": cookie})
        resp = self.conn.getresponse()
        if resp.status != 200:
            raise SystemExit(f"dashboard /events answered {resp.status}")
        threading.Thread(target=self._read, args=(resp,), daemon=True).start()

    def _read(self, resp):
        try:
            for line in resp:
                if line.startswith(b"data:"):
                    self.events += 1
        except (OSError, ValueError):
            pass


def audit_check(home):
    env = {**os.environ, "AIRLOCK_HOME": home}
    logs = subprocess.run([BIN, "logs", "--json", "--capability", "bench"], env=env,
                          capture_output=True, text=True, check=True).stdout
    records = logs.count('"kind":"request"')
    verify = subprocess.run([BIN, "audit", "verify"], env=env, capture_output=True, text=True)
    return records, verify.returncode == 0, (verify.stdout + verify.stderr).strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--nginx-pid-file", required=True, help="the upstream nginx's pid file")
    ap.add_argument("--bare-proxy", required=True, help="the bare proxy executable (the floor)")
    ap.add_argument("--home", action="append", required=True, help="LABEL::HOME")
    ap.add_argument("--ui-home", help="LABEL::HOME served with --ui and watched live")
    ap.add_argument("--conns", default="1,16,64")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", default="10s")
    a = ap.parse_args()
    conns = [int(c) for c in a.conns.split(",")]

    upstream_pids = nginx_pids(a.nginx_pid_file)
    targets = [("direct (nginx)", f"http://127.0.0.1:{a.upstream}/v1/items", "Bearer x", None, upstream_pids)]
    procs = []
    try:
        p, port = start_bare_proxy(a.bare_proxy, a.upstream)
        procs.append(p)
        targets.append((BARE, f"http://127.0.0.1:{port}/bench/v1/items", "Bearer x", None, [p.pid]))
        for spec in a.home:
            label, home = spec.split("::", 1)
            p, port, token = start_gateway(home)
            procs.append(p)
            targets.append((label, f"http://127.0.0.1:{port}/bench/v1/items", f"Bearer {token}", home, [p.pid]))
        live = None
        if a.ui_home:
            label, home = a.ui_home.split("::", 1)
            ui_port = lib.free_port()
            p, port, token = start_gateway(home, ui_port)
            procs.append(p)
            live = LiveView(home, ui_port)
            targets.append((label, f"http://127.0.0.1:{port}/bench/v1/items", f"Bearer {token}", home, [p.pid]))

        runs = {(c, t[0]): [] for c in conns for t in targets}
        counted = {t[0]: 0 for t in targets}
        for c in conns:
            for _ in range(a.runs):
                for label, url, auth, _home, pids in targets:
                    r = measured_wrk(url, c, a.duration, [f"Authorization: {auth}"], pids, upstream_pids)
                    runs[(c, label)].append(r)
                    counted[label] += r["requests"]
        audit = {}
        for label, _, _, home, _ in targets:
            if home:
                records, ok, msg = audit_check(home)
                audit[label] = {"requests_counted_by_wrk": counted[label], "request_records": records,
                                "verify_ok": ok, "verify_output": msg}
    finally:
        for p in procs:
            p.terminate()
            p.wait()

    rows, summary, data = [], [], {"runs": {}, "audit": audit}
    if live is not None:
        data["live_view_events"] = live.events
    direct = targets[0][0]
    cpu_rows = []
    for c in conns:
        d = lib.medians(runs[(c, direct)])
        bare = lib.medians(runs[(c, BARE)])
        for label, *_ in targets:
            m, row = lib.load_row(c, label, runs[(c, label)], None if label == direct else d["rps"], data)
            # req/s ÷ the bare proxy, before the errors column
            row.insert(6, "" if label in (direct, BARE) else lib.ratio(m["rps"], bare["rps"]))
            rows.append(row)
            added = "" if label in (direct, BARE) else lib.num(m["server_cpu_us"] - bare["server_cpu_us"])
            cpu_rows.append([c, label, lib.num(m["server_cpu_us"]), added,
                             "" if label == direct else lib.num(m["nginx_cpu_us"]),
                             lib.num(m["wrk_cpu_us"]), lib.num(m["total_cpu_us"]),
                             lib.num(len(os.sched_getaffinity(0)) * 1e6 / m["total_cpu_us"])])
            if label not in (direct, BARE) and c in (1, 16):
                summary.append({"measure": f"gateway server CPU per request at {c} conn., {label}",
                                "airlock": f"{lib.num(m['server_cpu_us'])} µs",
                                "reference": f"bare proxy {lib.num(bare['server_cpu_us'])} µs",
                                "ratio": lib.ratio(m["server_cpu_us"], bare["server_cpu_us"])})
            if label != direct and c in (1, 16, 64):
                summary.append({"measure": f"gateway req/s at {c} conn., {label}", "airlock": lib.num(m["rps"]),
                                "reference": f"nginx {lib.num(d['rps'])}", "ratio": lib.ratio(m["rps"], d["rps"])})
                if c == 1:
                    summary.append({"measure": f"gateway p50 at 1 conn., {label}", "airlock": f"{lib.num(m['p50_ms'])} ms",
                                    "reference": f"nginx {lib.num(d['p50_ms'])} ms", "ratio": lib.ratio(m["p50_ms"], d["p50_ms"])})
    if live is not None:
        ui_label, plain = a.ui_home.split("::", 1)[0], a.home[-1].split("::", 1)[0]
        for c in conns:
            with_ui, without = lib.medians(runs[(c, ui_label)]), lib.medians(runs[(c, plain)])
            summary.append({"measure": f"gateway req/s at {c} conn., dashboard live view streaming",
                            "airlock": lib.num(with_ui["rps"]), "reference": f"{plain}: {lib.num(without['rps'])}",
                            "ratio": lib.ratio(with_ui["rps"], without["rps"])})
        summary.append({"measure": "dashboard live view: records streamed during the runs",
                        "airlock": f"{live.events:,}", "reference": "", "ratio": ""})
    audit_rows = []
    for label, x in audit.items():
        slack = x["request_records"] - x["requests_counted_by_wrk"]
        ok = x["verify_ok"] and 0 <= slack <= sum(conns) * a.runs
        x["ok"] = ok
        audit_rows.append([label, f"{x['requests_counted_by_wrk']:,}", f"{x['request_records']:,}", f"{slack:+,}",
                           "intact" if x["verify_ok"] else "FAILED"])
        summary.append({"measure": f"gateway audit records = requests, {label}",
                        "airlock": f"{x['request_records']:,} records", "reference": f"{x['requests_counted_by_wrk']:,} requests",
                        "ratio": "ok" if ok else "MISMATCH"})
    tables = [
        {"title": f"Gateway under load: wrk ({a.duration} per run, 2 threads, 1 at 1 connection) against nginx on loopback, medians of {a.runs} runs",
         "columns": ["connections", "target", "req/s", "p50 ms", "p99 ms", "req/s ÷ direct", "req/s ÷ bare proxy", "errors"],
         "rows": rows},
        {"title": "CPU time per request (user + system from /proc, medians): the server wrk talks to, airlock's beyond the bare proxy's, the upstream nginx, wrk, their total, and the req/s that total allows on this machine's cores (cores × 1 s ÷ total)",
         "columns": ["connections", "target", "server µs", "server − bare proxy µs", "nginx µs", "wrk µs", "total µs",
                     "req/s the cores allow"], "rows": cpu_rows},
        {"title": "Audit: request records against requests wrk counted (records may exceed by requests in flight when wrk stopped counting)",
         "columns": ["server", "requests (wrk)", "request records", "difference", "audit verify"], "rows": audit_rows},
    ]
    lib.write_section("gateway", "HTTP gateway under load", a.runs, summary, tables, data,
                      params={"conns": conns, "runs": a.runs, "duration": a.duration})
    if not all(x["ok"] for x in audit.values()):
        raise SystemExit("audit check failed: " + repr(audit))


if __name__ == "__main__":
    main()
