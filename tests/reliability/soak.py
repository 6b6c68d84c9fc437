#!/usr/bin/env python3
"""Soak: many keep-alive clients through `airlock serve --gateway` for a while.

64 client threads (keep-alive, one connection each) call a fast local upstream
through the gateway for --seconds (20 s; 300 s with --full). Every request is
counted exactly: clients stop gracefully, each finishing its in-flight request.

Checks (each one fails the run):
  * zero errors: every response is 200 with the upstream's own answer for that
    request (method, path under the service's base path, body hash), and the
    upstream saw the injected credential (`Bearer <key>`, by hash in its answer);
  * the upstream counted exactly as many requests as the clients sent, every one
    with the injected credential and none with the agent token;
  * memory is flat: the server's VmRSS is sampled every second; after a warm-up,
    the median of the last window must not exceed the median of the first window
    by more than 20 % + 4 MiB (windows: a third of the post-warm-up samples, at
    most 60 s each);
  * the audit log holds exactly one `request` record per request, and
    `airlock audit verify` passes;
  * the server is alive at the end, and its stderr has no panic and no key.

A Python client on a small machine is the bottleneck: this is a correctness and
leak test, not a benchmark. Prints req/s, p50/p99 latency, RSS start/end/peak.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

# common.Upstream writes its headers and its body in two segments; without
# TCP_NODELAY each keep-alive answer waits ~40 ms for a delayed ACK (Nagle), and
# the upstream, not airlock, would set the pace. (socketserver's own switch.)
common._UpstreamHandler.disable_nagle_algorithm = True

KEY = "sk_live_SOAK_0d1e2f3a4b5c6d7e8f90a1b2c3d4"
CAP = "svc"
BASE = "/base"

# The memory bound (see the module docstring).
RSS_GROWTH_RATIO = 1.20
RSS_GROWTH_SLACK_KB = 4 * 1024


def extra_args(ap):
    ap.add_argument("--seconds", type=float, default=None, help="how long the clients run (default 20; 300 with --full)")
    ap.add_argument("--clients", type=int, default=64, help="concurrent keep-alive clients (default 64)")
    ap.add_argument(
        "--audit-fsync",
        choices=("always", "batch"),
        default=None,
        help="set [server] audit_fsync (default: leave the configuration's default, \"always\")",
    )


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0  # requests started (each either ok or an error)
        self.ok = 0
        self.errors: list[str] = []
        self.error_count = 0
        self.latencies: list[float] = []


def client_loop(tid: int, port: int, token: str, stop: threading.Event, stats: Stats, want_auth: str):
    client = common.Client(port, token, timeout=30)
    lat: list[float] = []
    n = 0
    ok = 0
    errs: list[str] = []
    err_count = 0
    while not stop.is_set():
        n += 1
        path = f"/soak/{tid}/{n}"
        if n % 10 == 0:
            method, body = "POST", (f"{tid}:{n}:" + "p" * 1000).encode()
        else:
            method, body = "GET", None
        t0 = time.perf_counter()
        try:
            status, _headers, data = client.request(
                method, CAP, path, body=body, headers={"Content-Type": "application/json"} if body else None
            )
        except Exception as e:  # a dropped connection, a timeout: an error, counted
            err_count += 1
            if len(errs) < 5:
                errs.append(f"client {tid} request {n} {method} {path}: {type(e).__name__}: {e}")
            continue
        dt = time.perf_counter() - t0
        problem = None
        if status != 200:
            problem = f"status {status}: {data[:200]!r}"
        else:
            try:
                j = common.json.loads(data)
                if j.get("method") != method:
                    problem = f"upstream saw method {j.get('method')!r}"
                elif j.get("path") != BASE + path:
                    problem = f"upstream saw path {j.get('path')!r}, expected {BASE + path!r}"
                elif j.get("auth_sha256") != want_auth:
                    problem = "upstream did not see the injected credential"
                elif j.get("body_len") != (len(body) if body else 0) or (
                    body and j.get("body_sha256") != common.sha256_hex(body)
                ):
                    problem = f"upstream saw another body ({j.get('body_len')} bytes)"
            except ValueError:
                problem = f"not the upstream's JSON: {data[:200]!r}"
        if problem:
            err_count += 1
            if len(errs) < 5:
                errs.append(f"client {tid} request {n} {method} {path}: {problem}")
        else:
            ok += 1
            lat.append(dt)
    client.close()
    with stats.lock:
        stats.sent += n
        stats.ok += ok
        stats.error_count += err_count
        stats.errors.extend(errs)
        stats.latencies.extend(lat)


def percentile(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100 * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


def mib(kb: float) -> str:
    return f"{kb / 1024:.1f} MiB"


def main() -> int:
    args = common.parse_args("airlock gateway soak", extra=extra_args)
    seconds = args.seconds if args.seconds is not None else (300.0 if args.full else 20.0)
    warmup = min(60.0, max(5.0, seconds / 6))
    t_start = time.monotonic()

    home = common.Home(args.bin, keep=args.keep)
    upstream = common.Upstream()
    try:
        r = home.add_service(CAP, upstream.url + BASE, KEY)
        if not r.ok:
            raise RuntimeError(f"add service failed: {r}")
        if args.audit_fsync:
            cfg = os.path.join(home.path, "airlock.toml")
            text = open(cfg).read()
            if "[server]\n" not in text:
                raise RuntimeError("no [server] table in airlock.toml")
            with open(cfg, "w") as f:
                f.write(text.replace("[server]\n", f'[server]\naudit_fsync = "{args.audit_fsync}"\n', 1))
        token = home.issue_token("soak-agent", ttl="2h")
        server = home.serve(gateway=True)
        port = server.gateway_port
        want_auth = common.sha256_hex("Bearer " + KEY)

        # One request first: the setup works at all (a failure here is not a soak result).
        st, _, body = common.Client(port, token).request("GET", CAP, "/ping")
        if st != 200:
            raise RuntimeError(f"the first request failed: {st} {body[:300]!r}")
        counted_before = 1

        samples: list[tuple[float, int]] = []  # (seconds since the clients started, VmRSS kB)
        stop = threading.Event()
        sampling = threading.Event()
        stats = Stats()

        def sampler(t0: float):
            while not sampling.is_set():
                try:
                    m = common.proc_mem(server.pid)
                except (FileNotFoundError, ProcessLookupError):
                    return
                samples.append((time.monotonic() - t0, m["VmRSS"]))
                sampling.wait(1.0)

        rss_before = common.proc_mem(server.pid)["VmRSS"]
        print(
            f"soak: {args.clients} keep-alive clients for {seconds:.0f}s through the gateway on port {port} "
            f"(warm-up {warmup:.0f}s, audit_fsync {args.audit_fsync or 'default'}); server RSS {mib(rss_before)} idle",
            flush=True,
        )
        t0 = time.monotonic()
        threads = [
            threading.Thread(target=client_loop, args=(i, port, token, stop, stats, want_auth), daemon=True)
            for i in range(args.clients)
        ]
        samp = threading.Thread(target=sampler, args=(t0,), daemon=True)
        samp.start()
        for t in threads:
            t.start()
        next_report = 30.0
        while time.monotonic() - t0 < seconds:
            time.sleep(0.25)
            if not server.alive():
                common.fail(f"the server exited during the soak (rc {server.proc.returncode})")
                break
            el = time.monotonic() - t0
            if args.full and el >= next_report:
                rss = samples[-1][1] if samples else 0
                print(f"  {el:5.0f}s  RSS {mib(rss)}", flush=True)
                next_report += 30.0
        stop.set()
        for t in threads:
            t.join(timeout=60)
        elapsed = time.monotonic() - t0
        hung = sum(t.is_alive() for t in threads)
        sampling.set()
        samp.join(timeout=5)
        common.check(hung == 0, f"{hung} client thread(s) did not finish their in-flight request within 60 s")

        total = stats.sent
        lat = sorted(stats.latencies)
        rps = stats.ok / elapsed if elapsed else 0
        print(
            f"soak: {total} requests in {elapsed:.1f}s = {rps:.0f} req/s; "
            f"latency p50 {percentile(lat, 50) * 1000:.1f} ms, p99 {percentile(lat, 99) * 1000:.1f} ms, "
            f"max {(lat[-1] if lat else 0) * 1000:.1f} ms; errors {stats.error_count}",
            flush=True,
        )
        for e in stats.errors[:10]:
            print(f"  error: {e}")
        common.check(total > 0, "no request was sent")
        common.check(stats.error_count == 0, f"{stats.error_count} of {total} requests failed (first: {stats.errors[:1]})")
        common.check(stats.ok == total, f"{stats.ok} ok of {total} sent")

        # The upstream saw every request, each with the injected credential only.
        expected_upstream = total + counted_before
        common.check(
            upstream.count == expected_upstream,
            f"the upstream answered {upstream.count} requests, the clients sent {expected_upstream}",
        )
        injected = upstream.auth_counts.get("Bearer " + KEY, 0)
        common.check(
            injected == upstream.count,
            f"{upstream.count - injected} upstream request(s) without the injected credential: "
            f"{[(k[:24] + '…', v) for k, v in upstream.auth_counts.items() if k != 'Bearer ' + KEY][:3]}",
        )
        leaked_token = sum(v for k, v in upstream.auth_counts.items() if token in k)
        common.check(leaked_token == 0, f"the upstream saw the agent token {leaked_token} time(s)")

        # Memory: flat after the warm-up.
        post = [kb for (t, kb) in samples if t >= warmup]
        rss_all = [kb for _, kb in samples]
        if len(post) >= 6:
            window = max(2, min(60, len(post) // 3))
            first, last = post[:window], post[-window:]
            m_first, m_last = statistics.median(first), statistics.median(last)
            bound = m_first * RSS_GROWTH_RATIO + RSS_GROWTH_SLACK_KB
            print(
                f"memory: {len(samples)} VmRSS samples (1/s); start {mib(rss_all[0])}, end {mib(rss_all[-1])}, "
                f"peak {mib(max(rss_all))}; after the {warmup:.0f}s warm-up: first {window}s median {mib(m_first)} "
                f"(min {mib(min(first))}, max {mib(max(first))}), last {window}s median {mib(m_last)} "
                f"(min {mib(min(last))}, max {mib(max(last))}); bound {mib(bound)} (first median × {RSS_GROWTH_RATIO} + "
                f"{RSS_GROWTH_SLACK_KB // 1024} MiB)",
                flush=True,
            )
            step = max(1, len(samples) // 20)
            print("memory: samples (s: MiB) " + ", ".join(f"{t:.0f}: {kb / 1024:.1f}" for t, kb in samples[::step]))
            common.check(
                m_last <= bound,
                f"server memory grew: last-window median {mib(m_last)} > {mib(bound)} "
                f"(first-window median {mib(m_first)})",
            )
        else:
            common.fail(f"too few memory samples after the warm-up ({len(post)}): run longer (--seconds)")
        try:
            hwm = common.proc_mem(server.pid)["VmHWM"]
            print(f"memory: VmHWM (peak resident) {mib(hwm)}")
        except FileNotFoundError:
            pass

        # Audit: one `request` record per request, and the chain verifies.
        alive = server.alive()
        common.check(alive, f"the server is not running at the end (rc {server.proc.returncode})")
        time.sleep(0.3)  # batched fsyncs land within 100 ms (the default fsyncs each record)
        t_a = time.monotonic()
        kinds = home.count_kinds()
        print(f"audit: {dict(kinds)} (read in {time.monotonic() - t_a:.1f}s)")
        common.check(
            kinds.get("request", 0) == expected_upstream,
            f"audit has {kinds.get('request', 0)} request records for {expected_upstream} requests",
        )
        v = home.verify()
        print(f"audit verify: rc {v.rc}: {(v.out or v.err).strip().splitlines()[-1:] }")
        common.check(v.ok, f"airlock audit verify failed: {v}")

        server.stop()
        log = server.log()
        common.check("panicked" not in log, f"the server panicked: {log[-2000:]}")
        common.check(KEY not in log, "the key appears in the server's stderr")
    finally:
        upstream.stop()
        home.cleanup()

    fails = common.failures()
    print(f"soak: {'FAILED' if fails else 'passed'} in {time.monotonic() - t_start:.0f}s total")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
