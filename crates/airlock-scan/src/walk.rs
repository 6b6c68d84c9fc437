//! Which files to read, and reading them in parallel.

use std::collections::HashSet;
use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::finding::{FileContext, Finding};
use crate::{ScanError, Scanner, git, risk, structured};

/// Directories the secret-bearing-file pass does not descend into: they are
/// huge and hold no hand-written configuration.
const HEAVY_DIRS: &[&str] = &[
    ".git",
    "node_modules",
    "target",
    ".venv",
    "venv",
    "__pycache__",
    ".tox",
    ".gradle",
    ".cache",
];

/// What to scan and how.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Files and directories.
    pub paths: Vec<PathBuf>,
    /// Also scan every blob in the history of the git repositories involved.
    pub git: bool,
    /// Files larger than this are skipped (bytes).
    pub max_file_size: u64,
    /// Draw a progress bar on stderr (only honoured when stderr is a TTY).
    pub progress: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            paths: vec![PathBuf::from(".")],
            git: false,
            max_file_size: 10 * 1024 * 1024,
            progress: false,
        }
    }
}

/// Result of a scan.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Findings, sorted by file, line, column, rule.
    pub findings: Vec<Finding>,
    /// Files read.
    pub files_scanned: usize,
    /// Bytes read (working tree and history).
    pub bytes_scanned: u64,
    /// Files skipped (binary, too large, unreadable).
    pub files_skipped: usize,
    /// Git blobs read.
    pub blobs_scanned: usize,
}

struct Target {
    path: PathBuf,
    display: String,
    ignored: bool,
}

fn display_of(root_given: &Path, root_canon: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root_canon).unwrap_or(file);
    let joined = if rel.as_os_str().is_empty() {
        root_given.to_path_buf()
    } else {
        root_given.join(rel)
    };
    let s = joined.to_string_lossy().into_owned();
    s.strip_prefix("./").map(str::to_owned).unwrap_or(s)
}

fn collect(root_given: &Path, root: &Path, out: &mut Vec<Target>) {
    // Pass 1: everything the ignore rules allow, hidden files included.
    let found: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    ignore::WalkBuilder::new(root)
        .hidden(false)
        .require_git(false)
        .filter_entry(|e| e.file_name() != ".git")
        .build_parallel()
        .run(|| {
            Box::new(|entry| {
                if let Ok(e) = entry
                    && e.file_type().is_some_and(|t| t.is_file())
                    && let Ok(mut v) = found.lock()
                {
                    v.push(e.into_path());
                }
                ignore::WalkState::Continue
            })
        });
    let seen: Vec<PathBuf> = found.into_inner().unwrap_or_default();
    let set: HashSet<&PathBuf> = seen.iter().collect();
    // Pass 2: secret-bearing files the ignore rules hid (.env, MCP configs…).
    let extra: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .filter_entry(|e| !HEAVY_DIRS.iter().any(|d| e.file_name() == *d))
        .build_parallel()
        .run(|| {
            Box::new(|entry| {
                if let Ok(e) = entry
                    && e.file_type().is_some_and(|t| t.is_file())
                    && structured::is_secret_bearing(e.path())
                    && let Ok(mut v) = extra.lock()
                {
                    v.push(e.into_path());
                }
                ignore::WalkState::Continue
            })
        });
    let extra = extra.into_inner().unwrap_or_default();
    for p in extra.into_iter().filter(|p| !set.contains(p)) {
        out.push(Target {
            display: display_of(root_given, root, &p),
            path: p,
            ignored: true,
        });
    }
    for p in seen {
        out.push(Target {
            display: display_of(root_given, root, &p),
            path: p,
            ignored: false,
        });
    }
}

/// The git work tree containing `dir`, if any.
pub(crate) fn git_toplevel(dir: &Path) -> Option<PathBuf> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    let p = PathBuf::from(s.trim_end_matches(['\n', '\r']));
    p.canonicalize().ok()
}

fn tracked_files(top: &Path) -> HashSet<PathBuf> {
    let Ok(out) = Command::new("git")
        .arg("-C")
        .arg(top)
        .args(["ls-files", "-z"])
        .output()
    else {
        return HashSet::new();
    };
    out.stdout
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| top.join(String::from_utf8_lossy(s).as_ref()))
        .collect()
}

#[cfg(unix)]
fn world_readable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    meta.permissions().mode() & 0o004 != 0
}

#[cfg(not(unix))]
fn world_readable(_meta: &std::fs::Metadata) -> bool {
    false
}

enum Read {
    Ok(Vec<u8>, bool),
    Skip,
}

fn read_file(path: &Path, max: u64) -> Read {
    let Ok(meta) = std::fs::metadata(path) else {
        return Read::Skip;
    };
    if !meta.is_file() || meta.len() > max {
        return Read::Skip;
    }
    let Ok(mut f) = std::fs::File::open(path) else {
        return Read::Skip;
    };
    let mut buf = Vec::with_capacity(meta.len() as usize);
    if f.by_ref().take(max + 1).read_to_end(&mut buf).is_err() || buf.len() as u64 > max {
        return Read::Skip;
    }
    if is_binary(&buf) {
        return Read::Skip;
    }
    Read::Ok(buf, world_readable(&meta))
}

/// NUL in the first 8 KiB.
pub(crate) fn is_binary(buf: &[u8]) -> bool {
    memchr::memchr(0, &buf[..buf.len().min(8192)]).is_some()
}

/// Scans files and directories (and, with `git`, history).
pub fn scan(scanner: &Scanner, opts: &ScanOptions) -> Result<Report, ScanError> {
    let mut targets = Vec::new();
    let mut tops: Vec<PathBuf> = Vec::new();
    for given in &opts.paths {
        let Ok(canon) = given.canonicalize() else {
            return Err(ScanError::PathNotFound {
                path: given.clone(),
            });
        };
        let dir = if canon.is_dir() {
            canon.clone()
        } else {
            canon.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        if let Some(top) = git_toplevel(&dir)
            && !tops.contains(&top)
        {
            tops.push(top);
        }
        if canon.is_dir() {
            collect(given, &canon, &mut targets);
        } else {
            let display = given.to_string_lossy().into_owned();
            let display = display
                .strip_prefix("./")
                .map(str::to_owned)
                .unwrap_or(display);
            targets.push(Target {
                path: canon,
                display,
                ignored: false,
            });
        }
    }
    if opts.git && tops.is_empty() {
        let path = opts.paths.first().cloned().unwrap_or_default();
        return Err(ScanError::NotARepo { path });
    }
    let mut seen = HashSet::new();
    targets.retain(|t| seen.insert(t.path.clone()));
    targets.sort_by(|a, b| a.path.cmp(&b.path));
    let tracked: HashSet<PathBuf> = tops.iter().flat_map(|t| tracked_files(t)).collect();

    let bar = if opts.progress && std::io::stderr().is_terminal() {
        indicatif::ProgressBar::with_draw_target(
            Some(targets.len() as u64),
            indicatif::ProgressDrawTarget::stderr(),
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    let stats = Mutex::new((0usize, 0u64, 0usize));
    let mut findings: Vec<Finding> = targets
        .par_iter()
        .flat_map_iter(|t| {
            bar.inc(1);
            match read_file(&t.path, opts.max_file_size) {
                Read::Ok(buf, world) => {
                    let ctx = FileContext {
                        tracked: tracked.contains(&t.path),
                        ignored: t.ignored,
                        world_readable: world,
                        mcp_config: structured::is_mcp_config(&t.path),
                        commit: None,
                        in_head: None,
                    };
                    if let Ok(mut s) = stats.lock() {
                        s.0 += 1;
                        s.1 += buf.len() as u64;
                    }
                    scanner.scan_with_context(&t.path, &t.display, &buf, &ctx)
                }
                Read::Skip => {
                    if let Ok(mut s) = stats.lock() {
                        s.2 += 1;
                    }
                    Vec::new()
                }
            }
        })
        .collect();
    bar.finish_and_clear();
    let (files_scanned, mut bytes_scanned, files_skipped) = stats.into_inner().unwrap_or_default();
    let mut blobs_scanned = 0;

    if opts.git {
        for top in &tops {
            let hist = git::scan_history(scanner, top, opts.max_file_size)?;
            blobs_scanned += hist.blobs;
            bytes_scanned += hist.bytes;
            merge_history(&mut findings, hist);
        }
    }
    findings.sort_by(|a, b| {
        (a.file.as_str(), a.line, a.column, a.rule_id).cmp(&(
            b.file.as_str(),
            b.line,
            b.column,
            b.rule_id,
        ))
    });
    Ok(Report {
        findings,
        files_scanned,
        bytes_scanned,
        files_skipped,
        blobs_scanned,
    })
}

/// Working-tree findings that are also in history get the commit that
/// introduced them; history-only findings (deleted, or only in another
/// branch) are added.
fn merge_history(findings: &mut Vec<Finding>, hist: git::History) {
    let mut wt: HashSet<String> = HashSet::new();
    for f in findings.iter_mut() {
        wt.insert(f.fingerprint.clone());
        if let Some(c) = hist.first_commit.get(&f.fingerprint) {
            let ctx = FileContext {
                tracked: true,
                mcp_config: structured::is_mcp_config(Path::new(&f.file)),
                commit: Some(c.clone()),
                in_head: Some(hist.head_fps.contains(&f.fingerprint)),
                ..FileContext::default()
            };
            let (risk, reason) = risk::rate(f.kind, &ctx);
            f.commit = ctx.commit;
            f.in_head = ctx.in_head;
            f.risk = risk;
            f.risk_reason = reason;
        }
    }
    for f in hist.findings {
        if !wt.contains(&f.fingerprint) {
            findings.push(f);
        }
    }
}
