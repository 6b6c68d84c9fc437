//! `airlock audit verify`: walk the whole chain and name the first bad record.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use airlock_home::Home;

use crate::chain::{ANCHOR_FILE, Anchor, AnchorState, Keyed, Mac};
use crate::error::AuditError;
use crate::files::{self, LineRead};
use crate::log::LOCK_FILE;
use crate::record::{parse_body, split_line};

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Records that verified (before the problem, if any).
    pub records: u64,
    /// Log files walked.
    pub files: usize,
    /// The sequence number of the last record that verified.
    pub last_seq: Option<u64>,
    /// The anchor's sequence number, if the anchor verified.
    pub anchor_seq: Option<u64>,
    /// The verdict.
    pub outcome: Outcome,
    /// Write-ahead decision records (an allowed `request` or `exec`, written
    /// before anything was sent) that no `outcome` record completes, oldest
    /// first: requests still in flight when the log was read, or interrupted by
    /// a crash between sending and recording how they ended. Not a chain
    /// failure: the decision is on record, only the outcome is missing.
    pub without_outcome: Vec<u64>,
}

/// The verdict of `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Every record verifies and the newest matches (or is ahead of) the anchor.
    Intact,
    /// Every complete record verifies, and the final line is an incomplete write
    /// that no anchor covers: a crash during an append, not tampering. The next
    /// append removes it (and records that it did).
    TornTail {
        /// The log file.
        file: String,
        /// 1-based line number of the incomplete record.
        line: u64,
    },
    /// The first bad record or file.
    Broken(Problem),
}

/// Where the chain breaks, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The log file (or the anchor's path, for anchor problems).
    pub file: String,
    /// 1-based line number, when the problem is a line.
    pub line: Option<u64>,
    /// The record's sequence number as written, when it could be read.
    pub seq: Option<u64>,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// What is wrong with the first bad record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The line is not an audit record, or its fields do not parse.
    Unreadable {
        /// Why.
        reason: String,
    },
    /// The record's MAC does not verify: it was changed, or inserted by someone
    /// without the key.
    BadMac,
    /// Neither the first record nor the anchor verifies: the key is not the one the
    /// log was written with.
    WrongKey,
    /// The sequence number skips: records before this one were deleted.
    SeqGap {
        /// The sequence number that should have come.
        expected: u64,
    },
    /// The sequence number goes back or repeats: records were reordered or
    /// duplicated.
    SeqOutOfOrder {
        /// The sequence number that should have come.
        expected: u64,
    },
    /// `prev` is not the previous record's MAC: a record was replaced by another
    /// validly MAC'd one (a replayed or spliced record).
    BrokenLink,
    /// A line without its newline in a file that is not the newest.
    Incomplete,
    /// A log file is missing between (or before) the others.
    MissingFile,
    /// The log ends before the anchored head: the newest records were deleted.
    Truncated {
        /// The last sequence number found.
        last_seq: u64,
        /// The anchored sequence number.
        anchor_seq: u64,
    },
    /// The record at the anchored sequence number is not the anchored one.
    AnchorMismatch {
        /// The anchor's file.
        anchor_file: String,
    },
    /// The log has records but the anchor file is gone.
    AnchorMissing,
    /// The anchor does not parse or does not verify.
    AnchorInvalid {
        /// Why.
        reason: String,
    },
}

impl VerifyReport {
    /// Whether `airlock audit verify` should exit 0: intact, or intact up to a torn
    /// final write.
    pub fn is_ok(&self) -> bool {
        !matches!(self.outcome, Outcome::Broken(_))
    }

    /// The first bad record, if any.
    pub fn problem(&self) -> Option<&Problem> {
        match &self.outcome {
            Outcome::Broken(p) => Some(p),
            _ => None,
        }
    }

    /// "; N request(s) without outcome: seq a, b, …" (at most 20 listed).
    fn open_requests(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.without_outcome.len();
        if n == 0 {
            return Ok(());
        }
        let noun = if n == 1 { "request" } else { "requests" };
        write!(f, "; {n} {noun} without outcome: seq ")?;
        for (i, seq) in self.without_outcome.iter().take(20).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{seq}")?;
        }
        if n > 20 {
            write!(f, " and {} more", n - 20)?;
        }
        f.write_str(
            " (allowed and possibly sent, but how it ended was never recorded: in flight while verify ran, or airlock stopped before the outcome was written)",
        )
    }

    fn summary(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files = if self.files == 1 { "file" } else { "files" };
        write!(f, "{} records in {} {files}", self.records, self.files)?;
        match (self.last_seq, self.anchor_seq) {
            (Some(last), Some(anchor)) if last > anchor => write!(
                f,
                ", anchored at seq {anchor} ({} newest not yet anchored)",
                last - anchor
            ),
            (_, Some(anchor)) => write!(f, ", anchored at seq {anchor}"),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Intact => {
                f.write_str("audit log intact: ")?;
                self.summary(f)?;
                self.open_requests(f)
            }
            Outcome::TornTail { file, line } => {
                f.write_str("audit log intact up to the last complete record (")?;
                self.summary(f)?;
                write!(
                    f,
                    "); the last record in {file} line {line} is incomplete: a crash during a write; everything before it verifies"
                )?;
                self.open_requests(f)
            }
            Outcome::Broken(problem) => {
                let records = if self.records == 1 {
                    "record"
                } else {
                    "records"
                };
                write!(
                    f,
                    "audit log BROKEN: {problem} ({} {records} before it verify)",
                    self.records
                )
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        f.write_str(": ")?;
        let seq = self.seq.unwrap_or(0);
        match &self.kind {
            ProblemKind::Unreadable { reason } => write!(f, "unreadable record: {reason}"),
            ProblemKind::BadMac => f.write_str(
                "the MAC does not verify: the record was changed or inserted after it was written",
            ),
            ProblemKind::WrongKey => f.write_str(
                "neither this record nor the anchor verifies: wrong key (is AIRLOCK_HOME the vault that wrote this log?)",
            ),
            ProblemKind::SeqGap { expected } => write!(
                f,
                "expected seq {expected}: {} record(s) before it were deleted",
                seq - expected
            ),
            ProblemKind::SeqOutOfOrder { expected } => write!(
                f,
                "expected seq {expected}: records were reordered or duplicated"
            ),
            ProblemKind::BrokenLink => {
                f.write_str("\"prev\" is not the previous record's MAC: a record was replaced")
            }
            ProblemKind::Incomplete => f.write_str(
                "the record is incomplete, yet newer log files follow: the file was cut",
            ),
            ProblemKind::MissingFile => f.write_str("this log file is missing: it was deleted"),
            ProblemKind::Truncated {
                last_seq,
                anchor_seq,
            } => write!(
                f,
                "the log ends at seq {last_seq} but the anchor state/{ANCHOR_FILE} records seq {anchor_seq}: \
                 the newest {} record(s) were deleted",
                anchor_seq - last_seq
            ),
            ProblemKind::AnchorMismatch { anchor_file } => write!(
                f,
                "this record is not the one the anchor state/{ANCHOR_FILE} names (in {anchor_file}): \
                 records from here on were rewritten"
            ),
            ProblemKind::AnchorMissing => write!(
                f,
                "the anchor state/{ANCHOR_FILE} is missing, so deleting the newest records would go unnoticed; \
                 it is rewritten at the next append"
            ),
            ProblemKind::AnchorInvalid { reason } => {
                write!(f, "the anchor state/{ANCHOR_FILE} is invalid: {reason}")
            }
        }
    }
}

/// [`verify`] on a home's `audit/` and `state/`.
pub fn verify_home(home: &Home, key: &[u8; 32]) -> Result<VerifyReport, AuditError> {
    verify(&home.audit_dir(), &home.state_dir(), key)
}

/// Walks every log file in order and checks that each line is a record, that `seq`
/// goes up by one, that `prev` is the previous record's MAC, that each MAC verifies
/// with `key`, and that the newest record matches the anchor in `state_dir`.
/// Stops at the first bad record and names it.
///
/// Read-only. To see a consistent log while servers append, it briefly takes the
/// append lock to note the anchor and the newest file's length, then verifies
/// that snapshot without holding the lock. Errors are I/O failures only; a bad log
/// is an `Ok` report.
pub fn verify(
    audit_dir: &Path,
    state_dir: &Path,
    key: &[u8; 32],
) -> Result<VerifyReport, AuditError> {
    let key = Keyed::new(key);
    let snapshot = Snapshot::take(audit_dir, state_dir)?;
    let anchor = match &snapshot.anchor {
        None => AnchorState::Missing,
        Some(bytes) => Anchor::parse(bytes, &key),
    };
    let anchor_valid = match &anchor {
        AnchorState::Valid(a) => Some(a.clone()),
        _ => None,
    };
    let mut walk = Walk {
        key,
        anchor: anchor_valid.clone(),
        anchor_bad: matches!(anchor, AnchorState::BadMac),
        expected: 1,
        prev: Mac::ZERO,
        records: 0,
        open: std::collections::BTreeSet::new(),
    };
    let report = |walk: &Walk, files: usize, outcome: Outcome| VerifyReport {
        records: walk.records,
        files,
        last_seq: (walk.records > 0).then(|| walk.expected - 1),
        anchor_seq: anchor_valid.as_ref().map(|a| a.seq),
        outcome,
        without_outcome: walk.open.iter().copied().collect(),
    };

    let count = snapshot.files.len();
    let mut torn = None;
    for (n, (index, path)) in snapshot.files.iter().enumerate() {
        let name = files::name_of(*index);
        let expected_index = snapshot
            .files
            .get(n.wrapping_sub(1))
            .map_or(1, |(i, _)| i + 1);
        if *index != expected_index {
            let problem = Problem {
                file: files::name_of(expected_index),
                line: None,
                seq: None,
                kind: ProblemKind::MissingFile,
            };
            return Ok(report(&walk, n, Outcome::Broken(problem)));
        }
        let is_last = n + 1 == count;
        let file =
            File::open(path).map_err(|e| AuditError::io("cannot open the audit log", path, e))?;
        let limit = if is_last {
            snapshot.newest_len
        } else {
            u64::MAX
        };
        let mut reader = BufReader::with_capacity(64 * 1024, file.take(limit));
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            let step = files::next_line(&mut reader, &mut buf)
                .map_err(|e| AuditError::io("cannot read the audit log", path, e))?;
            if step == LineRead::Eof {
                break;
            }
            line_no += 1;
            let bad = |seq, kind| Problem {
                file: name.clone(),
                line: Some(line_no),
                seq,
                kind,
            };
            match step {
                LineRead::Complete => {}
                LineRead::Partial if is_last => {
                    torn = Some((name.clone(), line_no));
                    break;
                }
                LineRead::Partial => {
                    return Ok(report(
                        &walk,
                        n + 1,
                        Outcome::Broken(bad(None, ProblemKind::Incomplete)),
                    ));
                }
                LineRead::TooLong | LineRead::Eof => {
                    let kind = ProblemKind::Unreadable {
                        reason: format!("line is longer than {} bytes", crate::record::MAX_LINE),
                    };
                    return Ok(report(&walk, n + 1, Outcome::Broken(bad(None, kind))));
                }
            }
            if let Err((seq, kind)) = walk.check(&buf, &name) {
                return Ok(report(&walk, n + 1, Outcome::Broken(bad(seq, kind))));
            }
        }
    }

    let last_seq = walk.expected - 1;
    let anchor_path = state_dir.join(ANCHOR_FILE).display().to_string();
    let last_file = snapshot
        .files
        .last()
        .map_or_else(|| files::name_of(1), |(i, _)| files::name_of(*i));
    let broken = match (&anchor, &anchor_valid) {
        (_, Some(a)) if last_seq < a.seq => {
            // The newest records are gone. A torn line that the anchor covers was
            // acknowledged, so it is damage, not a crash.
            let (file, line) = match &torn {
                Some((file, line)) => (file.clone(), Some(*line)),
                None => (last_file, None),
            };
            Some(Problem {
                file,
                line,
                seq: None,
                kind: ProblemKind::Truncated {
                    last_seq,
                    anchor_seq: a.seq,
                },
            })
        }
        (AnchorState::Missing, _) if walk.records > 0 => Some(Problem {
            file: anchor_path,
            line: None,
            seq: None,
            kind: ProblemKind::AnchorMissing,
        }),
        (AnchorState::BadMac, _) => Some(Problem {
            file: anchor_path,
            line: None,
            seq: None,
            kind: ProblemKind::AnchorInvalid {
                reason: "its MAC does not verify with this key (it was edited or replaced)".into(),
            },
        }),
        (AnchorState::Unreadable(reason), _) => Some(Problem {
            file: anchor_path,
            line: None,
            seq: None,
            kind: ProblemKind::AnchorInvalid {
                reason: reason.clone(),
            },
        }),
        _ => None,
    };
    let outcome = match (broken, torn) {
        (Some(problem), _) => Outcome::Broken(problem),
        (None, Some((file, line))) => Outcome::TornTail { file, line },
        (None, None) => Outcome::Intact,
    };
    Ok(report(&walk, count, outcome))
}

/// The files, anchor and newest length, noted under the append lock.
struct Snapshot {
    files: Vec<(u64, PathBuf)>,
    anchor: Option<Vec<u8>>,
    newest_len: u64,
}

impl Snapshot {
    fn take(audit_dir: &Path, state_dir: &Path) -> Result<Snapshot, AuditError> {
        // Best effort: a read-only copy of a log (or a wedged writer) must still
        // verify, just without the consistency guarantee.
        let lock = audit_dir
            .is_dir()
            .then(|| files::open_lock(&audit_dir.join(LOCK_FILE)).ok())
            .flatten()
            .map(Arc::new);
        let _guard = lock
            .as_ref()
            .and_then(|l| crate::log::acquire_for_read(l, Duration::from_secs(2)));
        let files = files::list(audit_dir)?;
        let anchor_path = state_dir.join(ANCHOR_FILE);
        let anchor = match std::fs::read(&anchor_path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(AuditError::io(
                    "cannot read the audit anchor",
                    anchor_path,
                    e,
                ));
            }
        };
        let newest_len = match files.last() {
            Some((_, path)) => std::fs::metadata(path)
                .map_err(|e| AuditError::io("cannot read the audit log", path, e))?
                .len(),
            None => 0,
        };
        Ok(Snapshot {
            files,
            anchor,
            newest_len,
        })
    }
}

/// The running state of the walk.
struct Walk {
    key: Keyed,
    anchor: Option<Anchor>,
    anchor_bad: bool,
    expected: u64,
    prev: Mac,
    records: u64,
    /// Write-ahead decision records not yet completed by an outcome.
    open: std::collections::BTreeSet<u64>,
}

impl Walk {
    /// Checks one complete line; on success it becomes the previous record.
    fn check(&mut self, line: &[u8], file: &str) -> Result<(), (Option<u64>, ProblemKind)> {
        let split = split_line(line).map_err(|reason| {
            (
                None,
                ProblemKind::Unreadable {
                    reason: reason.to_string(),
                },
            )
        })?;
        // For the message only: the seq as written, if the line has one.
        let claimed = || -> Option<u64> {
            serde_json::from_slice::<serde_json::Value>(&split.body)
                .ok()?
                .get("seq")?
                .as_u64()
        };
        if !self.key.verify_record(&split.body, &split.mac) {
            let kind = if self.records == 0 && self.anchor_bad {
                ProblemKind::WrongKey
            } else {
                ProblemKind::BadMac
            };
            return Err((claimed(), kind));
        }
        let record = parse_body(&split.body, split.mac).map_err(|reason| {
            (
                claimed(),
                ProblemKind::Unreadable {
                    reason: format!("{reason} (written by a newer airlock?)"),
                },
            )
        })?;
        let seq = Some(record.seq);
        if record.seq > self.expected {
            return Err((
                seq,
                ProblemKind::SeqGap {
                    expected: self.expected,
                },
            ));
        }
        if record.seq < self.expected {
            return Err((
                seq,
                ProblemKind::SeqOutOfOrder {
                    expected: self.expected,
                },
            ));
        }
        if record.prev != self.prev {
            return Err((seq, ProblemKind::BrokenLink));
        }
        if let Some(anchor) = &self.anchor
            && anchor.seq == record.seq
            && (anchor.head != record.mac || anchor.file != file)
        {
            return Err((
                seq,
                ProblemKind::AnchorMismatch {
                    anchor_file: anchor.file.clone(),
                },
            ));
        }
        if record.event.awaits_outcome() {
            self.open.insert(record.seq);
        } else if record.event.kind == crate::Kind::Outcome
            && let Some(of) = record.event.of
        {
            self.open.remove(&of);
        }
        self.prev = record.mac;
        self.expected += 1;
        self.records += 1;
        Ok(())
    }
}
