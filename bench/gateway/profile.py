#!/usr/bin/env python3
"""Where a gateway request's CPU goes: `perf record` of `airlock serve --gateway`
and of the bare proxy (crates/airlock-gateway/examples/bare_proxy.rs) under the
same wrk load, each sample's call stack put in one bucket (the first bucket, in
the order of BUCKETS, whose pattern a frame of the stack matches, innermost frame
first), and the buckets turned into CPU µs per request (the process's user +
system CPU time over the run, from /proc, divided by wrk's requests, split in
proportion to the samples).

Usage: bench/gateway/profile --bin AIRLOCK --bare BARE_PROXY [--conns 16]
                             [--duration 10s] [--fsync batch] [--freq 499] [--keep DIR]
(the wrapper starts nginx on a free port and passes --upstream). Build both with
debug line tables, e.g.
  CARGO_PROFILE_QUICKSTART_DEBUG=line-tables-only cargo build --profile quickstart -p airlock
  CARGO_PROFILE_QUICKSTART_DEBUG=line-tables-only cargo build --profile quickstart \\
      -p airlock-gateway --example bare_proxy
Needs perf, wrk and nginx.
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lib  # noqa: E402
from ab import cpu_seconds, make_home  # noqa: E402

# (bucket, regex on a frame's symbol, anywhere). A sample goes to the first
# "anywhere" bucket one of its frames matches (airlock's own steps: everything
# they call is theirs); otherwise, walking its stack from the innermost frame
# out, to the bucket of the first frame that matches one (the layer that did the
# work: a socket write is the HTTP server's or client's, malloc its caller's).
BUCKETS = [
    ("audit: fsync", r"fdatasync|fsync", True),
    ("audit: records (JSON, chain hash, write)", r"airlock_audit::|AuditWriter|audit_writer", True),
    ("token check", r"Runtime>::authenticate|tokens::verify|token_records|note_token_use", True),
    ("session record (state file)", r"record_session", True),
    ("policy decision (broker, rules)", r"airlock_broker::broker::|Runtime>::decide|check_owner_state|airlock_policy::", True),
    ("reload / home watch check", r"Runtime>::fresh|runtime::watch::|HomeWatch", True),
    ("credential injection", r"airlock_inject::", True),
    ("scrubbing", r"scrub::|aho_corasick::|StreamScrubber", False),
    ("engine: checks, URL, headers", r"airlock_engine::", False),
    ("gateway door (token, headers, body)", r"airlock_gateway::(?!listen)|airlock_broker::", False),
    ("HTTP client (reqwest, hyper client, pool)", r"reqwest::|hyper_util::client|hyper::client|legacy::", False),
    ("HTTP server (hyper, axum, listen)", r"hyper::|axum::|airlock_gateway::listen|tower::|bare_proxy::", False),
    ("tokio runtime (scheduler, timers, I/O driver)", r"tokio::|mio::", False),
]


def classify(frames):
    """The bucket of one sample (frames innermost first)."""
    for name, rx, anywhere in COMPILED:
        if anywhere and any(rx.search(f) for f in frames):
            return name
    layers = [(n, rx) for n, rx, anywhere in COMPILED if not anywhere]
    # The runtime is the last resort: its frames sit under every task (and a
    # socket call under the HTTP code that made it).
    for f in frames:
        for name, rx in layers[:-1]:
            if rx.search(f):
                return name
    if any(layers[-1][1].search(f) for f in frames):
        return layers[-1][0]
    top = frames[0] if frames else ""
    if "[kernel" in top:
        return "kernel, outside the above"
    return "other (allocator, libc, unattributed)"


COMPILED = [(n, re.compile(r), anywhere) for n, r, anywhere in BUCKETS]


def profile(binary_args, env, url, token, conns, duration, freq, keep, tag, callgraph):
    port = lib.free_port()
    args = [a.replace("{port}", str(port)) for a in binary_args]
    p = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    data = os.path.join(keep, f"{tag}.data")
    try:
        lib.wait_port(port, proc=p)
        url = url.replace("{port}", str(port))
        hdr = [f"Authorization: Bearer {token}"]
        lib.wrk(url, conns, "1s", hdr)  # warm-up
        cg = ["--call-graph", "dwarf,16384"] if callgraph else []
        perf = subprocess.Popen(["perf", "record", "-q", "-F", str(freq), *cg, "-p", str(p.pid), "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = cpu_seconds(p.pid)
        r = lib.wrk(url, conns, duration, hdr)
        cpu = cpu_seconds(p.pid) - before
        perf.send_signal(2)
        perf.wait()
    finally:
        p.terminate()
        p.wait()
    return r, cpu, data


def buckets_of(data, callgraph):
    """{bucket: samples} from a perf.data file."""
    counts = collections.Counter()
    if callgraph:
        out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,ip,sym,dso"], capture_output=True,
                             text=True, errors="replace").stdout
        frames = []
        for line in out.splitlines() + [""]:
            if not line.strip():
                if frames:
                    counts[classify(frames)] += 1
                frames = []
            elif line.startswith((" ", "\t")):
                frames.append(line.strip())
            else:
                frames = []
    else:
        out = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "--stdio",
                              "-q", "--percent-limit", "0"], capture_output=True, text=True, errors="replace").stdout
        for line in out.splitlines():
            m = re.match(r"\s*([\d.]+)%\s+(.*)", line)
            if m:
                counts[classify([m.group(2)])] += float(m.group(1))
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="the airlock binary")
    ap.add_argument("--bare", required=True, help="the bare proxy binary")
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--duration", default="10s")
    ap.add_argument("--fsync", default="batch", choices=["batch", "always"])
    ap.add_argument("--freq", type=int, default=499)
    ap.add_argument("--flat", action="store_true", help="self time per symbol only (no call stacks)")
    ap.add_argument("--keep", help="keep perf.data files here")
    ap.add_argument("--upstream", type=int, required=True, help="nginx's port (bench/gateway/profile starts it)")
    a = ap.parse_args()
    callgraph = not a.flat
    with tempfile.TemporaryDirectory(prefix="airlock-profile-") as work:
        keep = a.keep or work
        os.makedirs(keep, exist_ok=True)
        home = os.path.join(work, "home")
        os.makedirs(home, mode=0o700)
        env, token = make_home(os.path.abspath(a.bin), home, a.upstream, a.fsync)
        results = {}
        for tag, args, e in [
            ("bare", [os.path.abspath(a.bare), "127.0.0.1:{port}", f"http://127.0.0.1:{a.upstream}"], os.environ),
            ("airlock", [os.path.abspath(a.bin), "serve", "--gateway", "127.0.0.1:{port}"], env),
        ]:
            r, cpu, data = profile(args, e, "http://127.0.0.1:{port}/bench/v1/items", token, a.conns, a.duration,
                                   a.freq, keep, tag, callgraph)
            counts = buckets_of(data, callgraph)
            results[tag] = (r, cpu / max(r["requests"], 1) * 1e6, counts)
    print(f"{a.conns} connections, {a.duration}, audit_fsync {a.fsync}, load average {os.getloadavg()[0]:.1f}")
    names = [n for n, _, _ in BUCKETS] + ["kernel, outside the above",
                                      "other (allocator, libc, unattributed)"]
    print(f"| where | bare proxy µs/req | airlock µs/req | airlock − bare µs |")
    print("|---|---|---|---|")
    per = {}
    for tag, (r, us, counts) in results.items():
        total = sum(counts.values()) or 1
        per[tag] = {n: us * counts.get(n, 0) / total for n in names}
    for n in names:
        b, x = per["bare"][n], per["airlock"][n]
        if b >= 0.05 or x >= 0.05:
            print(f"| {n} | {b:.1f} | {x:.1f} | {x - b:+.1f} |")
    b_us, x_us = results["bare"][1], results["airlock"][1]
    print(f"| **total (process CPU per request)** | **{b_us:.1f}** | **{x_us:.1f}** | **{x_us - b_us:+.1f}** |")
    for tag, (r, us, counts) in results.items():
        print(f"{tag}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.3f} ms, {sum(counts.values()):,.0f} samples")


if __name__ == "__main__":
    main()
