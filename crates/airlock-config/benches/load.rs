//! Start-up cost of a large configuration (issue 16: 1,000,000 rules within
//! 300 ms and 150 MiB): `Config::parse` of the `airlock.toml` bench/scale writes
//! for 1,000 services × 1,000 rules (k − 1 allow rules `GET /v1/rNNNN/**`, then
//! `GET /v1/items`), timed several times, and the peak and retained RSS of a
//! process that only parses it (the bench runs itself again for that). Also
//! `RuleSet::compile` alone, to tell the policy's share from the TOML parser's.
//! Each time also as CPU time (all threads), which other load disturbs less.
//!
//! `cargo bench -p airlock-config --bench load [-- SERVICES RULES RUNS]`
//! (default 1000 1000 5). Prints one line per figure.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use airlock_config::Config;
use airlock_policy::RuleSet;

/// The `airlock.toml` of bench/scale/bench_scale.py's `config()`.
fn config(k: usize, nrules: usize) -> String {
    let mut out = String::from("[server]\naudit_fsync = \"batch\"\n\n");
    let mut rules = String::new();
    for j in 0..nrules - 1 {
        rules.push_str(&format!("  \"GET /v1/r{j:04}/**\",\n"));
    }
    rules.push_str("  \"GET /v1/items\",\n");
    for i in 1..=k {
        out.push_str(&format!(
            "[services.s{i:04}]\nurl = \"http://127.0.0.1:9/s{i:04}\"\nauth = {{ type = \"bearer\", secret = \"s{i:04}\" }}\n\n"
        ));
    }
    for i in 1..=k {
        out.push_str(&format!(
            "[capabilities.c{i:04}]\nservice = \"s{i:04}\"\nallow = [\n{rules}]\n\n"
        ));
    }
    out
}

fn mib(b: usize) -> f64 {
    b as f64 / f64::from(1 << 20)
}

/// `VmHWM` (peak) and `VmRSS` (now) of this process, KiB.
fn rss_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU time this process has used, user and system, all threads, in seconds
/// (`/proc/self/stat`, in clock ticks of 10 ms): less sensitive to other load
/// than the wall time, and it shows what parallel work costs in all.
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; take the numbers only.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let (k, n, runs) = (
        nums.first().copied().unwrap_or(1000),
        nums.get(1).copied().unwrap_or(1000),
        nums.get(2).copied().unwrap_or(5).max(1),
    );
    let rules = k * n;
    if args.iter().any(|a| a == "--rss-child") {
        // One parse in a fresh process: RSS before (text only), peak, after.
        let text = config(k, n);
        let (_, before) = rss_kib();
        let cfg = Config::parse(Path::new("airlock.toml"), &text).expect("valid config");
        let (peak, after) = rss_kib();
        assert_eq!(cfg.capabilities.len(), k);
        println!("{before} {peak} {after}");
        return;
    }
    let text = config(k, n);
    println!(
        "config: {k} services x {n} rules = {rules} rules, {:.1} MiB of TOML",
        mib(text.len())
    );
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..runs {
        let (t, c) = (Instant::now(), cpu_seconds());
        let cfg = Config::parse(Path::new("airlock.toml"), &text).expect("valid config");
        times.push(t.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c);
        assert_eq!(cfg.capabilities.len(), k);
        drop(cfg);
    }
    println!(
        "Config::parse median ms of {runs}: {:.1}",
        median(times) * 1e3
    );
    println!(
        "Config::parse CPU ms (user + system, all threads), median of {runs}: {:.0}",
        median(cpu) * 1e3
    );

    let out = Command::new(std::env::current_exe().expect("own path"))
        .args([k.to_string(), n.to_string(), "--rss-child".into()])
        .output()
        .expect("runs itself");
    let line = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    if let [before, peak, after] = f[..] {
        println!("process peak RSS MiB (text included): {:.1}", peak / 1024.0);
        println!(
            "peak RSS above the text MiB: {:.1} ({:.0} bytes per rule)",
            (peak - before) / 1024.0,
            (peak - before) * 1024.0 / rules as f64
        );
        println!(
            "RSS kept after parse MiB: {:.1} ({:.0} bytes per rule)",
            (after - before) / 1024.0,
            (after - before) * 1024.0 / rules as f64
        );
    }

    // The policy's share: compiling the same rules without the TOML layer.
    let mut allow: Vec<String> = (0..n - 1).map(|j| format!("GET /v1/r{j:04}/**")).collect();
    allow.push("GET /v1/items".into());
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..runs {
        let (t, c) = (Instant::now(), cpu_seconds());
        let sets: Vec<RuleSet> = (0..k)
            .map(|_| RuleSet::compile(&allow, &[], &[]).expect("rules"))
            .collect();
        times.push(t.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c);
        drop(sets);
    }
    println!(
        "RuleSet::compile x {k} median ms of {runs}: {:.1}",
        median(times) * 1e3
    );
    println!(
        "RuleSet::compile x {k} CPU ms, median of {runs}: {:.0}",
        median(cpu) * 1e3
    );
}
