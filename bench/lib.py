"""Shared helpers for the bench/ scripts: statistics, process measurement, wrk,
and the section file every section writes for bench/report.py.

A section file ($BENCH_OUT/sections/NAME.json) is:
  {"name", "title", "runs", "params": {...},
   "summary": [{"measure", "airlock", "reference", "ratio"}],   # rows of the one table
   "tables": [{"title", "columns": [...], "rows": [[...]]}],    # per-section tables
   "notes": [...], "data": {...}}                               # raw numbers
Table cells are display strings; "data" holds the numbers behind them.
"""

import json
import os
import re
import socket
import statistics
import subprocess
import tempfile
import time


def env_int(name, default):
    return int(os.environ.get(name) or default)


QUICK = os.environ.get("BENCH_QUICK") == "1"


def median(xs):
    return statistics.median(xs)


def pct(xs, p):
    """The p-quantile (0..1) of xs, nearest rank."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def medians(runs):
    """{key: median over runs} for the numeric keys of a list of dicts."""
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    return {k: median([r[k] for r in runs]) for k in keys}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=60.0, proc=None):
    """Seconds until 127.0.0.1:port accepts a connection."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return time.perf_counter() - t0
        except OSError:
            time.sleep(0.005)
    raise SystemExit(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def peak_rss_kib(pid):
    """VmHWM of a running process, KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_parts_kib(pid):
    """RssAnon and RssFile of a running process now, KiB: memory it allocated, and
    pages of files it maps (its executable and libraries: clean, shared with the
    page cache, mapped by the kernel 64 KiB around each page touched)."""
    parts = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("RssAnon:", "RssFile:")):
                    parts[line.split(":")[0][3:].lower()] = int(line.split()[1])
    except OSError:
        return None
    return parts


def timed_run(cmd, stdout=subprocess.DEVNULL, env=None):
    """Runs cmd; returns (wall seconds, peak RSS KiB, exit code). The peak RSS comes
    from GNU time: a child's own ru_maxrss would include the RSS of this Python
    process, which the kernel carries into the child at exec."""
    fd, out = tempfile.mkstemp()
    os.close(fd)
    try:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-q", "-f", "%x %M", "-o", out, *cmd],
                           stdout=stdout, stderr=subprocess.DEVNULL, env=env)
        wall = time.perf_counter() - t0
        code, rss = open(out).read().split()[-2:]
    finally:
        os.unlink(out)
    if p.returncode != int(code):
        raise SystemExit(f"/usr/bin/time failed on {cmd[0]}")
    return wall, int(rss), int(code)


def tree_size(root):
    """(regular files, bytes) under root, symlinks not followed."""
    files = size = 0
    for d, _, names in os.walk(root):
        for n in names:
            try:
                st = os.lstat(os.path.join(d, n))
            except OSError:
                continue
            if st.st_mode & 0o170000 == 0o100000:
                files += 1
                size += st.st_size
    return files, size


# --- wrk --------------------------------------------------------------------

_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNIT[m.group(2)]


def wrk(url, conns, duration, headers=(), script=None, env=None):
    """One wrk run: {"rps", "p50_ms", "p99_ms", "requests", "errors", "non2xx"}."""
    cmd = ["wrk", f"-t{min(2, conns)}", f"-c{conns}", f"-d{duration}", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    r = {"rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "requests": 0, "errors": 0, "non2xx": 0}
    for line in out.splitlines():
        f = line.split()
        if line.startswith("Requests/sec:"):
            r["rps"] = float(f[1])
        elif len(f) == 2 and f[0] == "50%":
            r["p50_ms"] = _ms(f[1])
        elif len(f) == 2 and f[0] == "99%":
            r["p99_ms"] = _ms(f[1])
        elif "requests in" in line:
            r["requests"] = int(f[0])
        elif line.strip().startswith("Socket errors:"):
            r["errors"] += sum(int(x) for x in re.findall(r"\d+", line))
        elif line.strip().startswith("Non-2xx"):
            r["non2xx"] = int(f[-1])
    if not r["requests"]:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    return r


def load_row(conns, label, runs, direct_rps, data):
    """The medians of a target's wrk runs at `conns` connections, and its table row
    (connections, target, req/s, p50, p99, req/s ÷ direct — blank when
    `direct_rps` is None —, errors); the runs are kept in data["runs"]."""
    m = medians(runs)
    errs = sum(r["errors"] + r["non2xx"] for r in runs)
    data["runs"][f"{label} @ {conns}"] = {"median": m, "runs": runs}
    row = [conns, label, num(m["rps"]), num(m["p50_ms"]), num(m["p99_ms"]),
           "" if direct_rps is None else ratio(m["rps"], direct_rps),
           "none" if errs == 0 else f"{errs:,}"]
    return m, row


# --- formatting and the section file ------------------------------------------

def num(x, digits=None):
    """A readable number: thousands separated, sensible precision."""
    if x is None:
        return "—"
    if digits is None:
        ax = abs(x)
        digits = 0 if ax >= 100 else 1 if ax >= 10 else 2 if ax >= 1 else 3
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if not a or not b:
        return "—"
    r = a / b
    if r >= 100:
        return f"{r:,.0f}×"
    return f"{r:.1f}×" if r >= 10 else f"{r:.2f}×" if r >= 1 else f"{r:.2g}×"


def write_section(name, title, runs, summary, tables, data, notes=(), params=None):
    out = os.environ.get("BENCH_OUT", "target/bench")
    os.makedirs(os.path.join(out, "sections"), exist_ok=True)
    doc = {
        "name": name,
        "title": title,
        "runs": runs,
        "params": params or {},
        "summary": summary,
        "tables": tables,
        "notes": list(notes),
        "data": data,
    }
    with open(os.path.join(out, "sections", f"{name}.json"), "w") as f:
        json.dump(doc, f, indent=2)
    for t in tables:
        print(markdown(t))
        print()
    for n in notes:
        print(n)


def markdown(table):
    lines = []
    if table.get("title"):
        lines += [f"**{table['title']}**", ""]
    cols = table["columns"]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for row in table["rows"]:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)
