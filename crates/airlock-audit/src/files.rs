//! Log file names, listing, private creation and reading the tail of a file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::AuditError;
use crate::record::MAX_LINE;

/// The name of log file number `index` (from 1): `audit-000001.jsonl`.
pub(crate) fn name_of(index: u64) -> String {
    format!("audit-{index:06}.jsonl")
}

/// The index in a log file name, if it is one.
pub(crate) fn index_of(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let index: u64 = digits.parse().ok()?;
    (index >= 1 && name_of(index) == name).then_some(index)
}

/// The log files in `dir`, oldest first. A missing directory has none.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, AuditError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AuditError::io("cannot list the audit directory", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AuditError::io("cannot list the audit directory", dir, e))?;
        if let Some(index) = entry.file_name().to_str().and_then(index_of) {
            out.push((index, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Opens (creating 0600 if needed) a file for appending.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    open_private(path, OpenOptions::new().append(true).read(true))
}

/// Opens (creating 0600 if needed) the lock file.
pub(crate) fn open_lock(path: &Path) -> io::Result<File> {
    open_private(path, OpenOptions::new().truncate(false).write(true))
}

/// Opens `path` with `opts`, creating it readable and writable by its owner
/// only if it does not exist.
fn open_private(path: &Path, opts: &mut OpenOptions) -> io::Result<File> {
    opts.create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Makes a directory entry (a created file) durable.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Overwrites the start of `file` with `bytes` (one `pwrite` on Unix), leaving
/// its length as it is when `bytes` is no longer than the file.
#[cfg(unix)]
pub(crate) fn overwrite_at_start(file: &File, bytes: &[u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, 0)
}

#[cfg(not(unix))]
pub(crate) fn overwrite_at_start(mut file: &File, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(bytes)
}

/// fdatasyncs the file at `path` (an anchor overwritten in place). A missing
/// file has nothing to sync.
pub(crate) fn sync_data_at(path: &Path) -> io::Result<()> {
    match File::open(path) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The end of a file, as the appender needs it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TailInfo {
    /// The last complete line (without `\n`), if any.
    pub(crate) last_line: Option<Vec<u8>>,
    /// Offset just past the last `\n`: where the complete records end.
    pub(crate) end_of_complete: u64,
    /// Bytes after the last `\n` (a torn record), if any.
    pub(crate) torn_len: u64,
}

/// Reads the last complete line of `file` (of length `len`) by scanning backwards
/// in chunks, and measures any torn bytes after it.
pub(crate) fn read_tail(file: &mut File, len: u64) -> io::Result<TailInfo> {
    const CHUNK: u64 = 8192;
    let mut buf: Vec<u8> = Vec::new(); // bytes [pos, len)
    let mut pos = len;
    let mut last_nl: Option<u64> = None; // absolute offset of the final '\n'
    loop {
        // Find the last newline, then the one before it, within what is loaded.
        if last_nl.is_none() {
            last_nl = buf
                .iter()
                .rposition(|&b| b == b'\n')
                .map(|i| pos + i as u64);
        }
        if let Some(nl) = last_nl {
            let rel_end = (nl - pos) as usize;
            if let Some(prev) = buf[..rel_end].iter().rposition(|&b| b == b'\n') {
                return Ok(TailInfo {
                    last_line: Some(buf[prev + 1..rel_end].to_vec()),
                    end_of_complete: nl + 1,
                    torn_len: len - nl - 1,
                });
            }
            if pos == 0 {
                return Ok(TailInfo {
                    last_line: Some(buf[..rel_end].to_vec()),
                    end_of_complete: nl + 1,
                    torn_len: len - nl - 1,
                });
            }
            if nl - pos > MAX_LINE as u64 {
                // A "line" longer than any record: not ours; report it as the line so
                // the caller sees it does not parse.
                return Ok(TailInfo {
                    last_line: Some(buf[..rel_end].to_vec()),
                    end_of_complete: nl + 1,
                    torn_len: len - nl - 1,
                });
            }
        } else if pos == 0 {
            return Ok(TailInfo {
                last_line: None,
                end_of_complete: 0,
                torn_len: len,
            });
        } else if len - pos > MAX_LINE as u64 + 1 {
            // No newline in the last MiB: everything after the previous newline is
            // torn; find that newline without keeping the whole file in memory.
            let mut p = pos;
            let mut chunk = vec![0u8; CHUNK as usize];
            while p > 0 {
                let start = p.saturating_sub(CHUNK);
                let n = (p - start) as usize;
                file.seek(SeekFrom::Start(start))?;
                file.read_exact(&mut chunk[..n])?;
                if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
                    let end = start + i as u64 + 1;
                    let mut info = read_tail(file, end)?;
                    info.torn_len = len - end;
                    return Ok(info);
                }
                p = start;
            }
            return Ok(TailInfo {
                last_line: None,
                end_of_complete: 0,
                torn_len: len,
            });
        }
        let start = pos.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (pos - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        pos = start;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        assert_eq!(name_of(1), "audit-000001.jsonl");
        assert_eq!(index_of("audit-000001.jsonl"), Some(1));
        assert_eq!(index_of("audit-1234567.jsonl"), Some(1_234_567));
        for bad in [
            "audit-1.jsonl",
            "audit-000000.jsonl",
            "audit-0000001.jsonl",
            "x.jsonl",
            "audit-00000a.jsonl",
        ] {
            assert_eq!(index_of(bad), None, "{bad}");
        }
    }

    fn tail_of(content: &[u8]) -> TailInfo {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        File::create(&path).unwrap().write_all(content).unwrap();
        let mut f = File::open(&path).unwrap();
        read_tail(&mut f, content.len() as u64).unwrap()
    }

    #[test]
    fn tail_finds_the_last_complete_line_and_torn_bytes() {
        assert_eq!(
            tail_of(b""),
            TailInfo {
                last_line: None,
                end_of_complete: 0,
                torn_len: 0
            }
        );
        assert_eq!(
            tail_of(b"abc"),
            TailInfo {
                last_line: None,
                end_of_complete: 0,
                torn_len: 3
            }
        );
        assert_eq!(tail_of(b"a\n").last_line.as_deref(), Some(&b"a"[..]));
        let t = tail_of(b"a\nbb\ncc");
        assert_eq!(t.last_line.as_deref(), Some(&b"bb"[..]));
        assert_eq!((t.end_of_complete, t.torn_len), (5, 2));
        let long = [
            vec![b'x'; 20_000],
            b"\n".to_vec(),
            vec![b'y'; 30_000],
            b"\nz".to_vec(),
        ]
        .concat();
        let t = tail_of(&long);
        assert_eq!(t.last_line.unwrap().len(), 30_000);
        assert_eq!(t.torn_len, 1);
        let torn = [b"ok\n".to_vec(), vec![b'y'; MAX_LINE + 10_000]].concat();
        let t = tail_of(&torn);
        assert_eq!(t.last_line.as_deref(), Some(&b"ok"[..]));
        assert_eq!(t.torn_len, (MAX_LINE + 10_000) as u64);
    }
}

/// One step of [`next_line`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineRead {
    /// No more bytes.
    Eof,
    /// A line ending in `\n` (the newline is removed from the buffer).
    Complete,
    /// Bytes at the end of the input without a `\n`.
    Partial,
    /// More than [`MAX_LINE`] bytes without a `\n`.
    TooLong,
}

/// Reads one line into `buf`, never holding more than `MAX_LINE + 1` bytes.
pub(crate) fn next_line(reader: &mut impl io::BufRead, buf: &mut Vec<u8>) -> io::Result<LineRead> {
    buf.clear();
    let n = io::BufRead::read_until(&mut reader.take(MAX_LINE as u64 + 1), b'\n', buf)?;
    if n == 0 {
        Ok(LineRead::Eof)
    } else if buf.last() == Some(&b'\n') {
        buf.pop();
        Ok(LineRead::Complete)
    } else if buf.len() > MAX_LINE {
        Ok(LineRead::TooLong)
    } else {
        Ok(LineRead::Partial)
    }
}
