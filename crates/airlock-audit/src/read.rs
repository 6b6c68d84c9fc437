//! Reading for `airlock logs`: an iterator over every record across rotated files,
//! with filters, and a poll-based follow mode that survives rotation.
//!
//! Reading does not verify MACs (it needs no key); `airlock audit verify` does.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::Timestamp;

use crate::error::{AuditError, LineError};
use crate::files::{self, LineRead};
use crate::record::{MAX_LINE, Record};

/// Which records `airlock logs` shows. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Filter {
    /// Only this capability (`--capability`).
    pub capability: Option<String>,
    /// Only this agent (`--agent`).
    pub agent: Option<String>,
    /// Only records at or after this instant (`--since 10m` → now − 10 min).
    pub since: Option<Timestamp>,
}

impl Filter {
    /// Matches every record.
    pub fn all() -> Filter {
        Filter::default()
    }
    /// Only `capability`.
    pub fn capability(mut self, capability: &str) -> Filter {
        self.capability = Some(capability.to_owned());
        self
    }
    /// Only `agent`.
    pub fn agent(mut self, agent: &str) -> Filter {
        self.agent = Some(agent.to_owned());
        self
    }
    /// Only records at or after `since`.
    pub fn since(mut self, since: Timestamp) -> Filter {
        self.since = Some(since);
        self
    }
    /// Whether `record` passes.
    pub fn matches(&self, record: &Record) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        eq(&self.capability, &record.event.capability)
            && eq(&self.agent, &record.event.agent)
            && self.since.is_none_or(|s| record.ts >= s)
    }
}

/// Every record of the log in `audit_dir`, oldest first, that passes `filter`.
///
/// A line that is not a record yields an [`AuditError::Malformed`] item and reading
/// goes on; an incomplete final line (a write in progress or a crash) is skipped.
pub fn records(audit_dir: &Path, filter: Filter) -> Result<Records, AuditError> {
    let files = files::list(audit_dir)?;
    Ok(Records {
        files: files.into(),
        current: None,
        filter,
        buf: Vec::new(),
    })
}

/// The iterator returned by [`records`].
#[derive(Debug)]
pub struct Records {
    files: VecDeque<(u64, PathBuf)>,
    current: Option<(String, BufReader<File>, u64)>,
    filter: Filter,
    buf: Vec<u8>,
}

impl Iterator for Records {
    type Item = Result<Record, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some((name, reader, line_no)) = self.current.as_mut() else {
                let (index, path) = self.files.pop_front()?;
                match File::open(&path) {
                    Ok(f) => {
                        let reader = BufReader::with_capacity(64 * 1024, f);
                        self.current = Some((files::name_of(index), reader, 0));
                        continue;
                    }
                    Err(e) => {
                        return Some(Err(AuditError::io("cannot open the audit log", path, e)));
                    }
                }
            };
            let step = match files::next_line(reader, &mut self.buf) {
                Ok(step) => step,
                Err(e) => {
                    let path = PathBuf::from(name.as_str());
                    self.current = None;
                    return Some(Err(AuditError::io("cannot read the audit log", path, e)));
                }
            };
            *line_no += 1;
            let malformed = |reason: LineError| AuditError::Malformed {
                file: name.clone(),
                line: *line_no,
                reason,
            };
            match step {
                LineRead::Eof => {
                    self.current = None;
                    continue;
                }
                LineRead::Partial if self.files.is_empty() => {
                    // The newest file's incomplete tail: a write in progress or a
                    // crash; not a record (yet).
                    self.current = None;
                    continue;
                }
                LineRead::Partial => {
                    let err = malformed(LineError::Incomplete);
                    self.current = None;
                    return Some(Err(err));
                }
                LineRead::TooLong => {
                    let err = malformed(LineError::TooLong { max: MAX_LINE });
                    if reader.skip_until(b'\n').is_err() {
                        self.current = None;
                    }
                    return Some(Err(err));
                }
                LineRead::Complete => match Record::parse_line(&self.buf) {
                    Ok(record) if self.filter.matches(&record) => return Some(Ok(record)),
                    Ok(_) => {}
                    Err(reason) => return Some(Err(malformed(reason))),
                },
            }
        }
    }
}

/// Where [`Follow`] puts what it reads: parsed records (and unreadable
/// lines), or the raw lines, for [`Follow::poll_newest`] to parse from the end.
enum Sink<'a> {
    All(&'a mut Vec<Result<Record, AuditError>>),
    Raw(&'a mut Lines),
}

/// Complete lines, back to back in one buffer.
#[derive(Default)]
struct Lines {
    bytes: Vec<u8>,
    ranges: Vec<std::ops::Range<usize>>,
}

impl Lines {
    fn push(&mut self, line: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(line);
        self.ranges.push(start..self.bytes.len());
    }
}

/// A poll-based tail of the log (`airlock logs -f`). It reads only complete lines,
/// so it never shows half a record, and moves to the next file when the log
/// rotates.
#[derive(Debug)]
pub struct Follow {
    dir: PathBuf,
    filter: Filter,
    index: u64,
    offset: u64,
    line_no: u64,
}

impl Follow {
    /// Follows from the first record of the log.
    pub fn from_start(audit_dir: &Path, filter: Filter) -> Result<Follow, AuditError> {
        let index = files::list(audit_dir)?.first().map_or(1, |(i, _)| *i);
        Ok(Follow {
            dir: audit_dir.to_path_buf(),
            filter,
            index,
            offset: 0,
            line_no: 0,
        })
    }

    /// Follows from after the newest complete record: only new records are shown.
    pub fn from_end(audit_dir: &Path, filter: Filter) -> Result<Follow, AuditError> {
        let mut follow = Follow::from_start(audit_dir, filter)?;
        if let Some((index, path)) = files::list(audit_dir)?.pop() {
            let mut bytes = Vec::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(|e| AuditError::io("cannot read the audit log", &path, e))?;
            let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            follow.index = index;
            follow.offset = end as u64;
            follow.line_no = bytes[..end].iter().filter(|&&b| b == b'\n').count() as u64;
        }
        Ok(follow)
    }

    /// Returns the records appended since the last call (possibly none).
    pub fn poll(&mut self) -> Result<Vec<Result<Record, AuditError>>, AuditError> {
        let mut out = Vec::new();
        self.poll_into(&mut Sink::All(&mut out))?;
        Ok(out)
    }

    /// Like [`Follow::poll`], but only the newest `n` records that pass the
    /// filter and `keep`: lines are parsed from the newest back until `n` are found, so a
    /// reader that shows only the latest records (the dashboard's live view)
    /// does not parse every record a busy log gains. Lines that cannot be read
    /// are skipped, not reported (`airlock audit verify` reports them).
    pub fn poll_newest(
        &mut self,
        n: usize,
        keep: impl Fn(&Record) -> bool,
    ) -> Result<Vec<Record>, AuditError> {
        let mut lines = Lines::default();
        self.poll_into(&mut Sink::Raw(&mut lines))?;
        let mut newest = Vec::new();
        for range in lines.ranges.iter().rev() {
            if newest.len() == n {
                break;
            }
            if let Ok(record) = Record::parse_line(&lines.bytes[range.clone()])
                && self.filter.matches(&record)
                && keep(&record)
            {
                newest.push(record);
            }
        }
        newest.reverse();
        Ok(newest)
    }

    fn poll_into(&mut self, out: &mut Sink<'_>) -> Result<(), AuditError> {
        loop {
            let next_exists = self.dir.join(files::name_of(self.index + 1)).exists();
            // Once the next file exists, this one is final: read it to its end
            // (again, in case the last write landed after our previous read).
            self.read_current(out)?;
            if !next_exists {
                // Files may also be missing in between (deleted): jump to the next
                // one that exists, if any.
                let later = files::list(&self.dir)?
                    .into_iter()
                    .find(|(i, _)| *i > self.index);
                let current_exists = self.dir.join(files::name_of(self.index)).exists();
                match later {
                    Some((i, _)) if !current_exists => self.advance(i),
                    _ => return Ok(()),
                }
            } else {
                self.advance(self.index + 1);
            }
        }
    }

    fn advance(&mut self, index: u64) {
        self.index = index;
        self.offset = 0;
        self.line_no = 0;
    }

    fn read_current(&mut self, out: &mut Sink<'_>) -> Result<(), AuditError> {
        let name = files::name_of(self.index);
        let path = self.dir.join(&name);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(AuditError::io("cannot open the audit log", path, e)),
        };
        let len = file
            .metadata()
            .map_err(|e| AuditError::io("cannot read the audit log", &path, e))?
            .len();
        if len < self.offset {
            // The file shrank under us: not something airlock does to complete
            // records. Carry on from its new end; `audit verify` will say why.
            self.offset = len;
        }
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|e| AuditError::io("cannot read the audit log", &path, e))?;
        let mut reader = BufReader::new(file.take(len - self.offset));
        let mut buf = Vec::new();
        loop {
            let step = files::next_line(&mut reader, &mut buf)
                .map_err(|e| AuditError::io("cannot read the audit log", &path, e))?;
            match step {
                LineRead::Eof | LineRead::Partial => return Ok(()),
                LineRead::TooLong => {
                    // Skip the monster line entirely.
                    self.line_no += 1;
                    if let Sink::All(out) = out {
                        out.push(Err(AuditError::Malformed {
                            file: name.clone(),
                            line: self.line_no,
                            reason: LineError::TooLong { max: MAX_LINE },
                        }));
                    }
                    let skipped = reader
                        .skip_until(b'\n')
                        .map_err(|e| AuditError::io("cannot read the audit log", &path, e))?;
                    self.offset += (buf.len() + skipped) as u64;
                }
                LineRead::Complete => {
                    self.line_no += 1;
                    self.offset += buf.len() as u64 + 1;
                    match out {
                        Sink::Raw(lines) => lines.push(&buf),
                        Sink::All(out) => match Record::parse_line(&buf) {
                            Ok(record) if self.filter.matches(&record) => out.push(Ok(record)),
                            Ok(_) => {}
                            Err(reason) => out.push(Err(AuditError::Malformed {
                                file: name.clone(),
                                line: self.line_no,
                                reason,
                            })),
                        },
                    }
                }
            }
        }
    }

    /// Polls every `interval` and hands each new record to `on_record` until `stop`
    /// is set or `on_record` returns [`ControlFlow::Break`].
    pub fn run(
        &mut self,
        interval: Duration,
        stop: &AtomicBool,
        mut on_record: impl FnMut(Result<Record, AuditError>) -> ControlFlow<()>,
    ) -> Result<(), AuditError> {
        while !stop.load(Ordering::Relaxed) {
            for item in self.poll()? {
                if on_record(item).is_break() {
                    return Ok(());
                }
            }
            std::thread::sleep(interval);
        }
        Ok(())
    }
}
