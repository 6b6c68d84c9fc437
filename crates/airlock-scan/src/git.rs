//! `--git`: every blob reachable from any ref, each read once.
//!
//! `git log --all --reverse --raw` says which commit (and path) first
//! introduced each blob; `git cat-file --batch` streams the blobs; `git
//! ls-tree -r HEAD` says which blobs are still in `HEAD`. Blobs that only a
//! merge commit introduced are read if they are in `HEAD`, and otherwise not
//! (git log shows no diff for merges by default).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};

use rayon::prelude::*;

use crate::finding::{FileContext, Finding};
use crate::{ScanError, Scanner, risk, walk};

/// What the history holds.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// One finding per fingerprint, at the commit that first introduced it.
    pub(crate) findings: Vec<Finding>,
    /// fingerprint → introducing commit.
    pub(crate) first_commit: HashMap<String, String>,
    /// Fingerprints found in blobs of `HEAD`.
    pub(crate) head_fps: HashSet<String>,
    pub(crate) blobs: usize,
    pub(crate) bytes: u64,
}

fn git_err(repo: &Path, reason: impl Into<String>) -> ScanError {
    ScanError::Git {
        repo: repo.to_path_buf(),
        reason: reason.into(),
    }
}

fn git_output(repo: &Path, args: &[&str]) -> Result<Vec<u8>, ScanError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| git_err(repo, format!("cannot run git: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(git_err(
            repo,
            format!(
                "`git {}` failed: {}",
                args.join(" "),
                msg.lines().next().unwrap_or_default()
            ),
        ));
    }
    Ok(out.stdout)
}

fn unquote(path: &str) -> String {
    path.strip_prefix('"')
        .and_then(|p| p.strip_suffix('"'))
        .map(|p| p.replace("\\\"", "\"").replace("\\\\", "\\"))
        .unwrap_or_else(|| path.to_owned())
}

struct Origin {
    order: usize,
    commit: String,
    path: String,
}

/// Scans the history of the repository whose work tree is `top`.
pub(crate) fn scan_history(scanner: &Scanner, top: &Path, max: u64) -> Result<History, ScanError> {
    let mut origin: HashMap<String, Origin> = HashMap::new();
    let has_head = git_output(top, &["rev-parse", "--verify", "-q", "HEAD"]).is_ok();
    if !has_head {
        return Ok(History::default());
    }
    let log = git_output(
        top,
        &[
            "log",
            "--all",
            "--reverse",
            "--raw",
            "--no-abbrev",
            "--no-renames",
            "--format=%x01%H",
        ],
    )?;
    let log = String::from_utf8_lossy(&log);
    let mut commit = String::new();
    let mut order = 0usize;
    for line in log.lines() {
        if let Some(c) = line.strip_prefix('\u{1}') {
            commit = c.trim().to_owned();
            order += 1;
        } else if let Some(raw) = line.strip_prefix(':') {
            let Some((meta, path)) = raw.split_once('\t') else {
                continue;
            };
            let fields: Vec<&str> = meta.split(' ').collect();
            if fields.len() < 5 || fields[4].starts_with('D') {
                continue;
            }
            let blob = fields[3];
            if blob.bytes().all(|b| b == b'0') || !fields[1].starts_with("100") {
                continue;
            }
            origin.entry(blob.to_owned()).or_insert_with(|| Origin {
                order,
                commit: commit.clone(),
                path: unquote(path),
            });
        }
    }
    let tree = git_output(top, &["ls-tree", "-r", "-z", "--full-tree", "HEAD"])?;
    let mut head_blobs: HashMap<String, String> = HashMap::new();
    for entry in tree.split(|&b| b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        let Some((meta, path)) = entry.split_once('\t') else {
            continue;
        };
        let f: Vec<&str> = meta.split(' ').collect();
        if f.len() == 3 && f[1] == "blob" {
            head_blobs.insert(f[2].to_owned(), path.to_owned());
        }
    }
    let mut ids: Vec<String> = origin.keys().cloned().collect();
    for id in head_blobs.keys() {
        if !origin.contains_key(id) {
            ids.push(id.clone());
        }
    }
    ids.sort();

    let mut child = Command::new("git")
        .arg("-C")
        .arg(top)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| git_err(top, format!("cannot run git cat-file: {e}")))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| git_err(top, "no stdin for git cat-file"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| git_err(top, "no stdout for git cat-file"))?;
    let feed = ids.clone();
    let writer = std::thread::spawn(move || {
        for id in feed {
            if writeln!(stdin, "{id}").is_err() {
                break;
            }
        }
    });

    let mut hist = History::default();
    let mut best: HashMap<String, (usize, Finding)> = HashMap::new();
    let mut reader = BufReader::new(stdout);
    let mut batch: Vec<(String, Vec<u8>)> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut header = String::new();
    let mut done = 0usize;
    let flush = |batch: &mut Vec<(String, Vec<u8>)>,
                 hist: &mut History,
                 best: &mut HashMap<String, (usize, Finding)>| {
        let results: Vec<(String, Vec<Finding>)> = batch
            .par_iter()
            .map(|(id, bytes)| {
                let (commit, path) = match origin.get(id) {
                    Some(o) => (Some(o.commit.clone()), o.path.clone()),
                    None => (None, head_blobs.get(id).cloned().unwrap_or_default()),
                };
                let ctx = FileContext {
                    tracked: true,
                    commit,
                    ..FileContext::default()
                };
                (
                    id.clone(),
                    scanner.scan_with_context(Path::new(&path), &path, bytes, &ctx),
                )
            })
            .collect();
        for (id, found) in results {
            let ord = origin.get(&id).map_or(usize::MAX, |o| o.order);
            let in_head = head_blobs.contains_key(&id);
            for f in found {
                if in_head {
                    hist.head_fps.insert(f.fingerprint.clone());
                }
                match best.get(&f.fingerprint) {
                    Some((o, _)) if *o <= ord => {}
                    _ => {
                        best.insert(f.fingerprint.clone(), (ord, f));
                    }
                }
            }
        }
        batch.clear();
    };
    while done < ids.len() {
        header.clear();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        done += 1;
        let parts: Vec<&str> = header.trim_end().split(' ').collect();
        if parts.len() != 3 {
            continue; // "<id> missing"
        }
        let Ok(size) = parts[2].parse::<u64>() else {
            break;
        };
        let id = parts[0].to_owned();
        if size > max || parts[1] != "blob" {
            if std::io::copy(&mut reader.by_ref().take(size + 1), &mut std::io::sink()).is_err() {
                break;
            }
            continue;
        }
        let mut buf = Vec::with_capacity(size as usize);
        if reader.by_ref().take(size).read_to_end(&mut buf).is_err() {
            break;
        }
        let mut nl = [0u8; 1];
        if reader.read_exact(&mut nl).is_err() {
            break;
        }
        hist.blobs += 1;
        hist.bytes += size;
        if walk::is_binary(&buf) {
            continue;
        }
        batch_bytes += buf.len();
        batch.push((id, buf));
        if batch_bytes > 64 << 20 {
            flush(&mut batch, &mut hist, &mut best);
            batch_bytes = 0;
        }
    }
    flush(&mut batch, &mut hist, &mut best);
    let _ = writer.join();
    let _ = child.wait();

    for (fp, (_, mut f)) in best {
        let in_head = hist.head_fps.contains(&fp);
        let ctx = FileContext {
            tracked: true,
            commit: f.commit.clone(),
            in_head: Some(in_head),
            ..FileContext::default()
        };
        let (risk, reason) = risk::rate(f.kind, &ctx);
        f.in_head = Some(in_head);
        f.risk = risk;
        f.risk_reason = reason;
        if let Some(c) = &f.commit {
            hist.first_commit.insert(fp, c.clone());
        }
        hist.findings.push(f);
    }
    Ok(hist)
}
