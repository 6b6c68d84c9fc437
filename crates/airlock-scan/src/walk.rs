//! Which files to read, and reading them in parallel.

use std::collections::HashSet;
use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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

/// Files already scanned, as 64-bit keyed hashes (8 bytes a path instead of the
/// path): scanning never holds every path of the tree (issue 16: memory stays
/// bounded by the findings, not by the tree). A collision (2^-64 per pair)
/// could only make one file count as tracked, or as seen, wrongly.
#[derive(Default)]
struct PathSet {
    keys: HashSet<u64>,
    hasher: std::hash::RandomState,
}

impl PathSet {
    fn key(&self, path: &Path) -> u64 {
        use std::hash::BuildHasher as _;
        self.hasher.hash_one(path)
    }
    fn insert(&mut self, path: &Path) -> bool {
        let k = self.key(path);
        self.keys.insert(k)
    }
    fn contains(&self, path: &Path) -> bool {
        self.keys.contains(&self.key(path))
    }
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

/// Where files go as they are found: each is read and scanned at once, on the
/// walker's threads, and only its findings are kept.
struct Sink<'a> {
    scanner: &'a Scanner,
    max_file_size: u64,
    tracked: &'a PathSet,
    /// With more than one path given, the files already scanned (the same
    /// file reached from two of them is scanned once).
    seen: Option<Mutex<PathSet>>,
    findings: Mutex<Vec<Finding>>,
    files_scanned: AtomicUsize,
    bytes_scanned: AtomicU64,
    files_skipped: AtomicUsize,
    bar: indicatif::ProgressBar,
}

impl Sink<'_> {
    fn scan_file(&self, path: &Path, display: &str, ignored: bool) {
        if let Some(seen) = &self.seen
            && !seen.lock().map(|mut s| s.insert(path)).unwrap_or(true)
        {
            return;
        }
        self.bar.inc(1);
        match read_file(path, self.max_file_size) {
            Read::Ok(buf, world) => {
                let ctx = FileContext {
                    tracked: self.tracked.contains(path),
                    ignored,
                    world_readable: world,
                    mcp_config: structured::is_mcp_config(path),
                    commit: None,
                    in_head: None,
                };
                self.files_scanned.fetch_add(1, Ordering::Relaxed);
                self.bytes_scanned
                    .fetch_add(buf.len() as u64, Ordering::Relaxed);
                let found = self.scanner.scan_with_context(path, display, &buf, &ctx);
                if !found.is_empty()
                    && let Ok(mut f) = self.findings.lock()
                {
                    f.extend(found);
                }
            }
            Read::Skip => {
                self.files_skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Scans the tree under `root` as the files are found.
    fn walk(&self, root_given: &Path, root: &Path) {
        // Secret-bearing files the ignore rules hide (.env, MCP configs…): a
        // handful, found first, so that the main walk can tell them apart.
        let hidden: Mutex<HashSet<PathBuf>> = Mutex::new(HashSet::new());
        ignore::WalkBuilder::new(root)
            .standard_filters(false)
            .filter_entry(|e| !HEAVY_DIRS.iter().any(|d| e.file_name() == *d))
            .build_parallel()
            .run(|| {
                Box::new(|entry| {
                    if let Ok(e) = entry
                        && e.file_type().is_some_and(|t| t.is_file())
                        && structured::is_secret_bearing(e.path())
                        && let Ok(mut v) = hidden.lock()
                    {
                        v.insert(e.into_path());
                    }
                    ignore::WalkState::Continue
                })
            });
        // Everything the ignore rules allow, hidden files included, scanned as
        // it is found; a secret-bearing file seen here is not ignored.
        ignore::WalkBuilder::new(root)
            .hidden(false)
            .require_git(false)
            .filter_entry(|e| e.file_name() != ".git")
            .build_parallel()
            .run(|| {
                Box::new(|entry| {
                    if let Ok(e) = entry
                        && e.file_type().is_some_and(|t| t.is_file())
                    {
                        if structured::is_secret_bearing(e.path())
                            && let Ok(mut h) = hidden.lock()
                        {
                            h.remove(e.path());
                        }
                        self.scan_file(e.path(), &display_of(root_given, root, e.path()), false);
                    }
                    ignore::WalkState::Continue
                })
            });
        let mut rest: Vec<PathBuf> = hidden
            .into_inner()
            .unwrap_or_default()
            .into_iter()
            .collect();
        rest.sort();
        rest.par_iter()
            .for_each(|p| self.scan_file(p, &display_of(root_given, root, p), true));
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

/// The files git tracks under `top` (as hashes: see [`PathSet`]).
fn tracked_files(top: &Path, into: &mut PathSet) {
    let Ok(out) = Command::new("git")
        .arg("-C")
        .arg(top)
        .args(["ls-files", "-z"])
        .output()
    else {
        return;
    };
    for s in out.stdout.split(|&b| b == 0).filter(|s| !s.is_empty()) {
        into.insert(&top.join(String::from_utf8_lossy(s).as_ref()));
    }
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

/// Scans files and directories (and, with `git`, history). Files are read and
/// scanned as the walk finds them: memory holds the findings, not the tree.
pub fn scan(scanner: &Scanner, opts: &ScanOptions) -> Result<Report, ScanError> {
    let mut roots: Vec<(&Path, PathBuf)> = Vec::new();
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
        roots.push((given.as_path(), canon));
    }
    if opts.git && tops.is_empty() {
        let path = opts.paths.first().cloned().unwrap_or_default();
        return Err(ScanError::NotARepo { path });
    }
    let mut tracked = PathSet::default();
    for top in &tops {
        tracked_files(top, &mut tracked);
    }
    let bar = if opts.progress && std::io::stderr().is_terminal() {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {pos} files scanned")
        {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let sink = Sink {
        scanner,
        max_file_size: opts.max_file_size,
        tracked: &tracked,
        seen: (roots.len() > 1).then(|| Mutex::new(PathSet::default())),
        findings: Mutex::new(Vec::new()),
        files_scanned: AtomicUsize::new(0),
        bytes_scanned: AtomicU64::new(0),
        files_skipped: AtomicUsize::new(0),
        bar,
    };
    for (given, canon) in &roots {
        if canon.is_dir() {
            sink.walk(given, canon);
        } else {
            let display = given.to_string_lossy().into_owned();
            let display = display
                .strip_prefix("./")
                .map(str::to_owned)
                .unwrap_or(display);
            sink.scan_file(canon, &display, false);
        }
    }
    sink.bar.finish_and_clear();
    let mut findings = sink.findings.into_inner().unwrap_or_default();
    let files_scanned = sink.files_scanned.into_inner();
    let mut bytes_scanned = sink.bytes_scanned.into_inner();
    let files_skipped = sink.files_skipped.into_inner();
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
