"""Scan throughput: `airlock scan` against ripsecrets on the same tree in the same
run, and how airlock's scan time grows over 1×, 10× and 100× copies of a tree.

  bench_scan.py [--dir DIR] [--runs R]   section `scan`
  scale(runs), from bench/scale/bench_scale.py: the scan half of section `scale`

The trees are built once and kept under $BENCH_CACHE (hard links into the cargo
registry, so they take almost no space): the registry sources of the packages in
Cargo.lock (all platforms), all of them (the `scan` tree), or only the packages
under 256 KiB (the 1× tree of `scale`); with --quick, the packages under 32 KiB for
both. K× is K copies (hard links) of the 1× tree.
Timings are with a warm page cache (every file is read once first).
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lib  # noqa: E402

BIN = os.environ.get("BENCH_BIN", "airlock")
CACHE = os.environ.get("BENCH_CACHE", "target/bench-cache")
SCALE_CRATE_MAX = (32 if lib.QUICK else 256) * 1024  # the 1× tree of `scale`
SCAN_CRATE_MAX = SCALE_CRATE_MAX if lib.QUICK else None  # the `scan` tree


def link_copy(src, dst):
    """A copy of src at dst made of hard links (a real copy across file systems)."""
    if subprocess.run(["cp", "-al", src, dst], stderr=subprocess.DEVNULL).returncode != 0:
        shutil.rmtree(dst, ignore_errors=True)
        subprocess.run(["cp", "-a", src, dst], check=True)


def cached(dest, key, build):
    """Builds dest with build(dest) unless it was built before with the same key."""
    stamp = os.path.join(dest, ".bench-complete")
    if os.path.exists(stamp) and open(stamp).read() == key:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    build(dest)
    with open(stamp, "w") as f:
        f.write(key)
    return dest


def lock_sources():
    """[(name-version, source dir, bytes)] for the crates.io packages of Cargo.lock,
    from the cargo registry's unpacked sources (`cargo fetch` fills in missing ones)."""
    with open("Cargo.lock", "rb") as f:
        lock = tomllib.load(f)
    pkgs = [f"{p['name']}-{p['version']}" for p in lock["package"]
            if p.get("source", "").startswith("registry+")]
    cargo_home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    src = os.path.join(cargo_home, "registry", "src")

    def find():
        roots = [os.path.join(src, d) for d in sorted(os.listdir(src))] if os.path.isdir(src) else []
        return {p: next((os.path.join(r, p) for r in roots if os.path.isdir(os.path.join(r, p))), None) for p in pkgs}
    dirs = find()
    if None in dirs.values():
        subprocess.run(["cargo", "fetch", "--locked"], stdout=subprocess.DEVNULL)
        dirs = find()
    missing = [p for p, d in dirs.items() if d is None]
    if missing:
        print(f"not in the cargo registry, left out: {', '.join(missing)}", file=sys.stderr)
    return sorted((p, d, lib.tree_size(d)[1]) for p, d in dirs.items() if d)


def lock_tree(max_crate):
    """The registry sources of the Cargo.lock packages (under max_crate bytes)."""
    srcs = lock_sources()
    if max_crate:
        srcs = [s for s in srcs if s[2] < max_crate]
    key = hashlib.sha256("\n".join(s[0] for s in srcs).encode()).hexdigest()

    def build(dest):
        for name, d, _ in srcs:
            link_copy(d, os.path.join(dest, name))
    return cached(os.path.join(CACHE, f"lock-under-{max_crate // 1024}k" if max_crate else "lock"), key, build)


def copies(src, k):
    if k == 1:
        return src
    key = open(os.path.join(src, ".bench-complete")).read() + f" x{k}"

    def build(dest):
        for i in range(k):
            link_copy(src, os.path.join(dest, f"copy-{i:03}"))
    return cached(f"{src}-x{k}", key, build)


def warm(root):
    for d, _, names in os.walk(root):
        for n in names:
            try:
                with open(os.path.join(d, n), "rb") as f:
                    while f.read(1 << 20):
                        pass
            except OSError:
                pass


def scanners(out_dir):
    home = os.path.join(out_dir, "home")  # airlock scan needs no home; keep it off ~/.airlock
    env = {**os.environ, "AIRLOCK_HOME": home}
    rip = shutil.which("ripsecrets")
    return {
        "airlock": lambda d: ([BIN, "scan", d, "--format", "json"], env),
        "ripsecrets": lambda d: ([rip, d], None),
    }


def measure(cmd, env, out_file):
    """(wall s, peak RSS KiB); output kept in out_file for the finding count."""
    with open(out_file, "wb") as f:
        wall, rss, code = lib.timed_run(cmd, stdout=f, env=env)
    if code not in (0, 1):  # 1: findings
        raise SystemExit(f"{cmd[0]} exited with {code}")
    return wall, rss


def findings(tool, out_file):
    text = open(out_file, encoding="utf-8", errors="replace").read()
    if tool == "airlock":
        return len(json.loads(text or "[]"))
    return sum(1 for line in text.splitlines() if line.strip())


def compare(a):
    tree = a.dir or lock_tree(SCAN_CRATE_MAX)
    files, size = lib.tree_size(tree)
    warm(tree)
    work = os.environ.get("BENCH_WORK", "/tmp")
    tools = scanners(work)
    runs = {t: [] for t in tools}
    found = {}
    for _ in range(a.runs):
        for name, mk in tools.items():
            cmd, env = mk(tree)
            out = os.path.join(work, f"{name}.out")
            wall, rss = measure(cmd, env, out)
            runs[name].append({"wall_s": wall, "mb_per_s": size / 1e6 / wall, "files_per_s": files / wall, "peak_rss_mib": rss / 1024})
            found[name] = findings(name, out)
    med = {t: lib.medians(r) for t, r in runs.items()}
    al, rp = med["airlock"], med["ripsecrets"]
    rows = []
    for t in tools:
        m = med[t]
        rows.append([t, lib.num(m["wall_s"]), lib.num(m["mb_per_s"]), lib.num(m["files_per_s"]), lib.num(m["peak_rss_mib"], 1), f"{found[t]:,}"])
    rows.append(["airlock ÷ ripsecrets", lib.ratio(al["wall_s"], rp["wall_s"]), lib.ratio(al["mb_per_s"], rp["mb_per_s"]),
                 lib.ratio(al["files_per_s"], rp["files_per_s"]), lib.ratio(al["peak_rss_mib"], rp["peak_rss_mib"]), ""])
    desc = (f"{tree} ({files:,} files, {size / 2**20:,.0f} MiB)" if a.dir else
            f"{'the registry sources of the Cargo.lock packages under 32 KiB' if lib.QUICK else 'the registry sources of every Cargo.lock package'}"
            f" ({files:,} files, {size / 2**20:,.0f} MiB)")
    summary = [
        {"measure": f"scan throughput, {size / 2**20:,.0f} MiB tree", "airlock": f"{lib.num(al['mb_per_s'])} MB/s",
         "reference": f"ripsecrets {lib.num(rp['mb_per_s'])} MB/s", "ratio": lib.ratio(al["mb_per_s"], rp["mb_per_s"])},
        {"measure": "scan files/s", "airlock": lib.num(al["files_per_s"]),
         "reference": f"ripsecrets {lib.num(rp['files_per_s'])}", "ratio": lib.ratio(al["files_per_s"], rp["files_per_s"])},
        {"measure": "scan peak RSS", "airlock": f"{lib.num(al['peak_rss_mib'], 1)} MiB",
         "reference": f"ripsecrets {lib.num(rp['peak_rss_mib'], 1)} MiB", "ratio": lib.ratio(al["peak_rss_mib"], rp["peak_rss_mib"])},
    ]
    table = {"title": f"Scan of {desc}, warm page cache, medians of {a.runs} runs (MB/s and files/s count every file in the tree)",
             "columns": ["tool", "wall s", "MB/s", "files/s", "peak RSS MiB", "findings"], "rows": rows}
    lib.write_section("scan", "Scan throughput", a.runs, summary, [table],
                      {"tree": tree, "files": files, "bytes": size, "median": med, "runs": runs, "findings": found},
                      params={"runs": a.runs, "dir": tree})


def scale(runs):
    """airlock scan over 1×, 10× and 100× copies of the 1× tree:
    {"sizes": {k: (files, bytes)}, "runs": {k: [...]}, "median": {k: {...}}}"""
    base = lock_tree(SCALE_CRATE_MAX)
    trees = {k: copies(base, k) for k in (1, 10, 100)}
    warm(base)  # the copies are hard links: the same pages
    work = os.environ.get("BENCH_WORK", "/tmp")
    mk = scanners(work)["airlock"]
    res = {k: [] for k in trees}
    sizes = {k: lib.tree_size(t) for k, t in trees.items()}
    for _ in range(runs):
        for k, t in trees.items():
            cmd, env = mk(t)
            wall, rss = measure(cmd, env, os.path.join(work, "scale.out"))
            res[k].append({"wall_s": wall, "peak_rss_mib": rss / 1024, "mb_per_s": sizes[k][1] / 1e6 / wall,
                           "files_per_s": sizes[k][0] / wall})
    return {"tree": base, "sizes": sizes, "runs": res, "median": {k: lib.medians(r) for k, r in res.items()}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    compare(a)


if __name__ == "__main__":
    main()
