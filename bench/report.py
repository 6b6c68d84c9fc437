"""bench/run's bookkeeping.

  report.py machine AIRLOCK_BIN      print the machine's description (JSON)
  report.py executables FILE         {target name: executable} of the bench and test
                                     targets in cargo's JSON messages FILE
  report.py report OUT [FAILED...]   combine OUT/machine.json and OUT/sections/*.json
                                     into OUT/results.json and OUT/results.md, print the md
"""

import datetime
import json
import os
import platform
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

ORDER = ["mcp", "gateway", "proxy", "exec", "vault", "audit", "scrub", "scan", "f1", "scale", "syscalls"]


def cmd_out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def machine(bin_):
    cpu = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    os_name = None
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    dirty = cmd_out("git", "status", "--porcelain", "--untracked-files=no")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1048576, 1) if mem_kib else None,
        "kernel": platform.release(),
        "os": os_name,
        "rustc": cmd_out("rustc", "-V"),
        "git_commit": cmd_out("git", "rev-parse", "HEAD"),
        "git_dirty": bool(dirty),
        "airlock": cmd_out(bin_, "--version"),
        "airlock_bin": bin_,
        "quick": os.environ.get("BENCH_QUICK") == "1",
        "load_avg_start": os.getloadavg(),
        "tools": {
            "python": platform.python_version(),
            "wrk": (cmd_out("sh", "-c", "wrk -v 2>&1 | head -1") or None),
            "nginx": (cmd_out("sh", "-c", "nginx -v 2>&1") or None),
            "ripsecrets": cmd_out("sh", "-c", "ripsecrets --version 2>/dev/null"),
        },
    }


def report(out, failed):
    with open(os.path.join(out, "machine.json")) as f:
        m = json.load(f)
    m["load_avg_end"] = os.getloadavg()
    sections = {}
    sdir = os.path.join(out, "sections")
    for name in sorted(os.listdir(sdir), key=lambda n: ORDER.index(n[:-5]) if n[:-5] in ORDER else 99):
        with open(os.path.join(sdir, name)) as f:
            s = json.load(f)
        sections[s["name"]] = s
    timings = {}
    tpath = os.path.join(out, "timings.txt")
    if os.path.exists(tpath):
        for line in open(tpath):
            name, secs = line.split()
            timings[name] = int(secs)

    md = []
    mode = "quick (--quick: smoke check, few iterations)" if m["quick"] else "full"
    md.append(f"airlock benchmarks, {m['date']}, {mode} run")
    md.append("")
    md.append(f"machine: {m['cores']} cores, {m['cpu']}, {m['memory_gib']} GiB, {m['os']}, kernel {m['kernel']}; "
              f"{m['rustc']}; commit {(m['git_commit'] or '?')[:12]}{' (working tree modified)' if m['git_dirty'] else ''}; "
              f"load average {m['load_avg_start'][0]:.2f} at start, {m['load_avg_end'][0]:.2f} at end")
    md.append("")
    rows = []
    for name, s in sections.items():
        for r in s["summary"]:
            rows.append([name, r["measure"], r["airlock"], r.get("reference", ""), r.get("ratio", "")])
    md.append(lib.markdown({
        "columns": ["section", "measure", "figure", "compared with", "ratio (figure ÷ compared)"],
        "rows": rows,
    }))
    md.append("")
    md.append("Every figure is a median over the runs stated in its section; ratios compare figures of this same run.")
    measured = sum(v for k, v in timings.items() if k != "build")
    md.append("")
    md.append(f"Time: {measured // 60} min {measured % 60} s measuring, {timings.get('build', 0)} s building first.")
    for name, s in sections.items():
        md += ["", f"### {s['title']} (`{name}`, {timings.get(name, '?')} s)", ""]
        for t in s["tables"]:
            md += [lib.markdown(t), ""]
        for n in s["notes"]:
            md += [n, ""]
    if failed:
        md += ["", f"FAILED sections: {', '.join(failed)} (logs in {out}/logs/)"]
    text = "\n".join(md).rstrip() + "\n"
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"machine": m, "sections": sections, "seconds": timings, "failed": failed}, f, indent=2)
    print(text)
    print(f"written: {out}/results.json, {out}/results.md")


def executables(path):
    out = {}
    for line in open(path):
        if not line.startswith("{"):
            continue
        m = json.loads(line)
        if m.get("reason") == "compiler-artifact" and m.get("executable") and set(m["target"]["kind"]) & {"bench", "test", "example"}:
            out[m["target"]["name"]] = {"executable": m["executable"], "dir": os.path.dirname(m["manifest_path"])}
    return out


if __name__ == "__main__":
    if sys.argv[1] == "machine":
        print(json.dumps(machine(sys.argv[2]), indent=2))
    elif sys.argv[1] == "executables":
        print(json.dumps(executables(sys.argv[2]), indent=2))
    else:
        report(sys.argv[2], sys.argv[3:])
