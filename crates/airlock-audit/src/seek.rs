//! Reading the log from a record number on ([`records_after`]) without reading
//! what comes before it: team mode's uploader resumes after the newest record
//! the team database holds (issue 15), and a log of 10^6 records should not be
//! read from its start at every upload.
//!
//! Records are appended with strictly increasing `seq`, so the log is sorted:
//! the start is found by reading the first record of each file from the
//! newest back (the first file that starts at or before the wanted record
//! holds it), then by bisecting that file's bytes (a probe reads from a byte
//! offset to the next line start and parses that one record) down to a
//! window of [`WINDOW`] bytes, which is read line by line. A line a probe
//! cannot parse only stops the bisection early: the window is then larger,
//! never wrong. Errors are those of [`crate::records`], with the same file
//! names and line numbers (counted only when there is an error to report).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{AuditError, LineError};
use crate::files::{self, LineRead};
use crate::record::{MAX_LINE, Record};

/// Bisection stops when the record wanted is known to start within this many
/// bytes; they are read line by line.
pub const WINDOW: u64 = 64 * 1024;

/// Every record of the log in `audit_dir` whose `seq` is greater than
/// `after`, oldest first, reading the log only from near the first of them.
///
/// As with [`crate::records`], a line that is not a record yields an
/// [`AuditError::Malformed`] item and reading goes on, and the newest file's
/// incomplete final line is skipped.
pub fn records_after(audit_dir: &Path, after: u64) -> Result<After, AuditError> {
    let mut list: VecDeque<(u64, PathBuf)> = files::list(audit_dir)?.into();
    let mut read = 0;
    // Earlier files hold only older records than the newest file that starts
    // at or before the one wanted.
    let mut start = 0;
    for i in (0..list.len()).rev() {
        let (_, path) = &list[i];
        let first = first_seq(path, &mut read)
            .map_err(|e| AuditError::io("cannot read the audit log", path, e))?;
        if first.is_some_and(|s| s <= after.saturating_add(1)) {
            start = i;
            break;
        }
    }
    list.drain(..start);
    let mut files: VecDeque<(u64, PathBuf, u64)> =
        list.into_iter().map(|(i, p)| (i, p, 0)).collect();
    if let Some((_, path, offset)) = files.front_mut() {
        *offset = bisect(path, after, &mut read)
            .map_err(|e| AuditError::io("cannot read the audit log", path.clone(), e))?;
    }
    Ok(After {
        files,
        current: None,
        after,
        buf: Vec::new(),
        read,
    })
}

/// The iterator returned by [`records_after`].
#[derive(Debug)]
pub struct After {
    /// Files still to read: index, path, byte offset to start at.
    files: VecDeque<(u64, PathBuf, u64)>,
    current: Option<Current>,
    after: u64,
    buf: Vec<u8>,
    read: u64,
}

#[derive(Debug)]
struct Current {
    index: u64,
    path: PathBuf,
    reader: BufReader<File>,
    /// Byte offset of the next line.
    offset: u64,
}

impl After {
    /// How many bytes of the log this reader has read so far, the search
    /// included (what makes resuming near the end of a large log cheap).
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    fn malformed(&self, index: u64, path: &Path, at: u64, reason: LineError) -> AuditError {
        AuditError::Malformed {
            file: files::name_of(index),
            line: line_number(path, at).unwrap_or(0),
            reason,
        }
    }
}

impl Iterator for After {
    type Item = Result<Record, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some(cur) = self.current.as_mut() else {
                let (index, path, offset) = self.files.pop_front()?;
                let opened = File::open(&path).and_then(|mut f| {
                    f.seek(SeekFrom::Start(offset))?;
                    Ok(f)
                });
                match opened {
                    Ok(f) => {
                        self.current = Some(Current {
                            index,
                            path,
                            reader: BufReader::with_capacity(64 * 1024, f),
                            offset,
                        });
                        continue;
                    }
                    Err(e) => {
                        return Some(Err(AuditError::io("cannot open the audit log", path, e)));
                    }
                }
            };
            let at = cur.offset;
            let step = match files::next_line(&mut cur.reader, &mut self.buf) {
                Ok(step) => step,
                Err(e) => {
                    let path = cur.path.clone();
                    self.current = None;
                    return Some(Err(AuditError::io("cannot read the audit log", path, e)));
                }
            };
            let len = self.buf.len() as u64 + u64::from(step == LineRead::Complete);
            cur.offset += len;
            self.read += len;
            let (index, path) = (cur.index, cur.path.clone());
            match step {
                LineRead::Eof => self.current = None,
                LineRead::Partial if self.files.is_empty() => self.current = None,
                LineRead::Partial => {
                    self.current = None;
                    return Some(Err(self.malformed(index, &path, at, LineError::Incomplete)));
                }
                LineRead::TooLong => {
                    match cur.reader.skip_until(b'\n') {
                        Ok(n) => {
                            cur.offset += n as u64;
                            self.read += n as u64;
                        }
                        Err(_) => self.current = None,
                    }
                    let reason = LineError::TooLong { max: MAX_LINE };
                    return Some(Err(self.malformed(index, &path, at, reason)));
                }
                LineRead::Complete => match Record::parse_line(&self.buf) {
                    Ok(record) if record.seq > self.after => return Some(Ok(record)),
                    Ok(_) => {}
                    Err(reason) => return Some(Err(self.malformed(index, &path, at, reason))),
                },
            }
        }
    }
}

/// The seq of a file's first record, if its first line is one.
fn first_seq(path: &Path, read: &mut u64) -> io::Result<Option<u64>> {
    let mut reader = BufReader::with_capacity(8 * 1024, File::open(path)?);
    Ok(line_from(&mut reader, read)?.map(|(_, seq)| seq))
}

/// Reads the line at the reader's position: its length with the newline and
/// its record's seq, if it is a complete record.
fn line_from(reader: &mut impl BufRead, read: &mut u64) -> io::Result<Option<(u64, u64)>> {
    let mut buf = Vec::new();
    let step = files::next_line(reader, &mut buf)?;
    *read += buf.len() as u64;
    if step != LineRead::Complete {
        return Ok(None);
    }
    *read += 1;
    Ok(Record::parse_line(&buf)
        .ok()
        .map(|r| (buf.len() as u64 + 1, r.seq)))
}

/// A byte offset in `path` at a line start, such that every record before it
/// has a seq of at most `after`, and the first record after `after` starts at
/// most [`WINDOW`] bytes (and one line) after it.
fn bisect(path: &Path, after: u64, read: &mut u64) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let (mut lo, mut hi) = (0, file.metadata()?.len());
    while lo + WINDOW < hi {
        // `mid` > `lo` >= 0. The first line starting at or after `mid` starts
        // after the first newline at or after `mid - 1`.
        let mid = lo + (hi - lo) / 2;
        file.seek(SeekFrom::Start(mid - 1))?;
        let mut reader = BufReader::with_capacity(8 * 1024, &mut file);
        let skipped = reader.skip_until(b'\n')? as u64;
        *read += skipped;
        match line_from(&mut reader, read)? {
            Some((len, seq)) if seq <= after => lo = mid - 1 + skipped + len,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

/// The 1-based number of the line that starts at byte `at` (for an error).
fn line_number(path: &Path, at: u64) -> io::Result<u64> {
    let mut reader = BufReader::new(File::open(path)?.take(at));
    let mut buf = [0u8; 64 * 1024];
    let mut lines = 1;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::print_stderr)]

    use super::*;
    use crate::{AuditLog, Event, Filter, FsyncPolicy, Options};

    /// A log of `n` records (`max` bytes per file), in a temp dir.
    fn log(n: u64, max: u64) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options::default()
            .fsync(FsyncPolicy::Batch {
                max_records: 100_000,
                max_delay: std::time::Duration::from_secs(3600),
            })
            .max_file_bytes(max);
        let mut log = AuditLog::open(
            &dir.path().join("audit"),
            &dir.path().join("state"),
            &[7u8; 32],
            opts,
        )
        .unwrap();
        for i in 0..n {
            log.append(&Event::request("svc", "GET", &format!("/v1/items/{i}")))
                .unwrap();
        }
        log.close().unwrap();
        dir
    }

    fn seqs(it: impl Iterator<Item = Result<Record, AuditError>>) -> Vec<u64> {
        it.map(|r| r.unwrap().seq).collect()
    }

    #[test]
    fn it_yields_exactly_the_records_after_a_seq_across_rotated_files() {
        let dir = log(3_000, 64 * 1024);
        let audit = dir.path().join("audit");
        assert!(files::list(&audit).unwrap().len() > 5);
        let all = seqs(crate::records(&audit, Filter::all()).unwrap());
        assert_eq!(all.len(), 3_000);
        for after in [0, 1, 2, 499, 1_234, 1_235, 2_047, 2_999, 3_000, 3_005] {
            let want: Vec<u64> = all.iter().copied().filter(|s| *s > after).collect();
            assert_eq!(
                seqs(records_after(&audit, after).unwrap()),
                want,
                "after {after}"
            );
        }
        // Every file boundary: the first record of each file, and the one before.
        for (_, path) in files::list(&audit).unwrap() {
            let first = first_seq(&path, &mut 0).unwrap().unwrap();
            for after in [first - 1, first.saturating_sub(2)] {
                let got = seqs(records_after(&audit, after).unwrap());
                assert_eq!(got.first(), Some(&(after + 1)), "after {after}");
                assert_eq!(got.len() as u64, 3_000 - after);
            }
        }
    }

    #[test]
    fn a_missing_log_has_no_records_and_a_torn_tail_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            records_after(&dir.path().join("audit"), 0).unwrap().count(),
            0
        );
        let dir = log(50, 1 << 20);
        let audit = dir.path().join("audit");
        let (_, path) = files::list(&audit).unwrap().pop().unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"{\"ts\":\"2026-").unwrap();
        assert_eq!(
            seqs(records_after(&audit, 40).unwrap()),
            (41..=50).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_damaged_line_is_reported_with_its_file_and_line_and_reading_goes_on() {
        let dir = log(2_000, 1 << 30);
        let audit = dir.path().join("audit");
        let (_, path) = files::list(&audit).unwrap().pop().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        // Line 1_500 (seq 1_500) is no longer a record; a probe landing on it
        // must not misplace the start.
        lines[1_499] = "garbage".into();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let got: Vec<Result<Record, AuditError>> = records_after(&audit, 1_490).unwrap().collect();
        let bad: Vec<String> = got
            .iter()
            .filter_map(|r| r.as_ref().err().map(ToString::to_string))
            .collect();
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(
            bad[0].starts_with("audit-000001.jsonl line 1500: "),
            "{bad:?}"
        );
        let ok: Vec<u64> = got
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|r| r.seq))
            .collect();
        let want: Vec<u64> = (1_491..=2_000).filter(|s| *s != 1_500).collect();
        assert_eq!(ok, want);
        // Past the damage, it is not read at all.
        assert_eq!(
            seqs(records_after(&audit, 1_600).unwrap()),
            (1_601..=2_000).collect::<Vec<_>>()
        );
    }

    /// The figure in docs/team.md: a 200 000-record log (four 16 MiB files),
    /// its last 256 records read from the end instead of the start.
    #[test]
    fn the_tail_of_a_large_log_is_read_without_reading_the_log() {
        let n = 200_000;
        let dir = log(n, crate::DEFAULT_MAX_FILE_BYTES);
        let audit = dir.path().join("audit");
        let size: u64 = files::list(&audit)
            .unwrap()
            .iter()
            .map(|(_, p)| std::fs::metadata(p).unwrap().len())
            .sum();
        let t = std::time::Instant::now();
        let mut it = records_after(&audit, n - 256).unwrap();
        let tail: Vec<u64> = it.by_ref().map(|r| r.unwrap().seq).collect();
        let seek = t.elapsed();
        assert_eq!(tail, (n - 255..=n).collect::<Vec<_>>());
        let read = it.bytes_read();
        let t = std::time::Instant::now();
        let full = crate::records(&audit, Filter::all())
            .unwrap()
            .filter(|r| r.as_ref().unwrap().seq > n - 256)
            .count();
        let scan = t.elapsed();
        assert_eq!(full, 256);
        eprintln!(
            "{n} records, {size} bytes: the last 256 read {read} bytes in {seek:?}; the full read took {scan:?}"
        );
        // The window, the records themselves, and a few probes: not the log.
        assert!(read < 4 * WINDOW, "{read} bytes read of {size}");
    }
}
