//! The appender: one exclusive lock per append, shared by every process that
//! writes to the same home.

use std::fmt;
use std::fs::{self, File, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_home::{Home, ensure_private_dir};
use jiff::Timestamp;

use crate::chain::{ANCHOR_FILE, Advanced, Anchor, AnchorState, Keyed, Mac};
use crate::error::AuditError;
use crate::files;
use crate::record::{Event, Kind, canonical_body, format_ts, line_from_body, split_line};

/// Name of the lock file inside the audit directory.
pub const LOCK_FILE: &str = ".lock";
/// Default size at which a log file is rotated: 16 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 16 << 20;

/// How old a record written for a group commit gets before
/// [`AuditLog::flush_if_due`] makes it durable itself (its writer stopped waiting).
const ABANDONED_AFTER: Duration = Duration::from_millis(100);

/// How long an anchor overwritten in place may stay unsynced before
/// [`AuditLog::flush_if_due`] fdatasyncs it (a flush or close does at once).
/// Bounds how far the anchor *on disk* can lag behind the durable log after a
/// power loss; the anchor other processes see is never behind.
pub(crate) const ANCHOR_SYNC_AFTER: Duration = Duration::from_secs(1);

/// When appended records are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// Every record is fsynced, and the anchor updated, before `append` returns.
    /// What DESIGN §7.5 asks for: the caller answers only once its record is on
    /// disk, and an error from `append` means the request must fail. The default.
    Always,
    /// Records are written at once (other processes and `airlock logs` see them),
    /// but fsynced and anchored only every `max_records` records, or at the first
    /// append after `max_delay`, or on [`AuditLog::flush`] / drop.
    ///
    /// Trade-off: a power loss or kernel crash can lose up to a batch of records
    /// whose requests were already answered, and tail deletion is detected only
    /// down to the last anchored record. A crash of the process alone loses
    /// nothing (the data is in the page cache). Call [`AuditLog::flush_if_due`]
    /// from a timer so that `max_delay` holds when traffic stops.
    Batch {
        /// Fsync after this many records.
        max_records: u32,
        /// Fsync when the oldest unsynced record is this old.
        max_delay: Duration,
    },
}

/// Settings of an [`AuditLog`].
#[derive(Clone)]
pub struct Options {
    fsync: FsyncPolicy,
    max_file_bytes: u64,
    lock_timeout: Duration,
    clock: Option<Arc<dyn Fn() -> Timestamp + Send + Sync>>,
}

impl Default for Options {
    fn default() -> Options {
        let lock_timeout = std::env::var(airlock_home::LOCK_TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Duration::from_secs(10), Duration::from_millis);
        Options {
            fsync: FsyncPolicy::Always,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            lock_timeout,
            clock: None,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("fsync", &self.fsync)
            .field("max_file_bytes", &self.max_file_bytes)
            .field("lock_timeout", &self.lock_timeout)
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl Options {
    /// Sets the fsync policy (default [`FsyncPolicy::Always`]).
    pub fn fsync(mut self, policy: FsyncPolicy) -> Options {
        self.fsync = policy;
        self
    }
    /// Sets the rotation size (default [`DEFAULT_MAX_FILE_BYTES`]). A file always
    /// takes at least one record, so tiny values mean one record per file.
    pub fn max_file_bytes(mut self, bytes: u64) -> Options {
        self.max_file_bytes = bytes;
        self
    }
    /// Sets how long `append` waits for another process's lock (default 10 s, or
    /// `AIRLOCK_LOCK_TIMEOUT_MS`).
    pub fn lock_timeout(mut self, timeout: Duration) -> Options {
        self.lock_timeout = timeout;
        self
    }
    /// Replaces the clock that stamps records (tests).
    pub fn clock(mut self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Options {
        self.clock = Some(Arc::new(clock));
        self
    }
}

/// The head of the chain: the newest record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Its sequence number (0 for an empty log).
    pub seq: u64,
    /// Its MAC ([`Mac::ZERO`] for an empty log).
    pub mac: Mac,
}

/// The file being appended to, and what this process knows about it.
struct Current {
    index: u64,
    path: PathBuf,
    /// Shared so that a group commit can fsync it outside the append lock.
    file: Arc<File>,
    id: FileId,
    len: u64,
    head: Head,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

#[cfg(unix)]
fn file_id(meta: &fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    FileId(meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn file_id(_meta: &fs::Metadata) -> FileId {
    FileId(0, 0)
}

/// An open audit log. Cheap to keep open: the file handle stays open and the head
/// is cached while no other process writes.
///
/// `append` takes `&mut self`; share one log between threads behind a `Mutex`.
/// Several `AuditLog`s (in one process or many) may append to the same directory at
/// once: each append holds an exclusive lock on `audit/.lock`.
pub struct AuditLog {
    audit_dir: PathBuf,
    state_dir: PathBuf,
    key: Keyed,
    opts: Options,
    lock: Arc<File>,
    lock_path: PathBuf,
    cur: Option<Current>,
    /// The newest record this log wrote: never chain below it, even if the files
    /// were cut behind our back.
    written: Option<Anchor>,
    /// Records written but not yet fsynced and anchored (batch policy).
    pending: u32,
    pending_since: Option<Instant>,
    /// Whether this log has replaced the anchor file once (and fsynced its
    /// directory).
    anchored: bool,
    /// Since when the anchor file holds a line this log overwrote in place and
    /// has not fsynced.
    anchor_unsynced_since: Option<Instant>,
    /// The append lock, when kept between appends ([`AuditLog::hold_lock`]).
    held: Option<LockGuard>,
    /// Whether the head was checked since the held lock was taken: while it is
    /// held no other appender can move it, so it is not checked again.
    held_fresh: bool,
    /// While the lock is held, the anchor file as this log last wrote it: no
    /// other appender can change it meanwhile, so the next anchor is written
    /// over it in place without opening, reading and checking the file again
    /// (six system calls and a MAC per group commit, issue 16). Dropped with
    /// the lock, and after any error.
    held_anchor: Option<HeldAnchor>,
}

/// The anchor file this log wrote last, open, and what it holds.
struct HeldAnchor {
    file: File,
    /// The sequence number the line names.
    seq: u64,
    /// The line's length (an in-place overwrite needs the same length).
    len: usize,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("audit_dir", &self.audit_dir)
            .field("state_dir", &self.state_dir)
            .field("opts", &self.opts)
            .field("head", &self.head())
            .finish_non_exhaustive()
    }
}

pub(crate) struct LockGuard(Arc<File>);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn acquire(lock: &Arc<File>, path: &Path, timeout: Duration) -> Result<LockGuard, AuditError> {
    let deadline = Instant::now() + timeout;
    let mut wait = Duration::from_micros(20);
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(LockGuard(Arc::clone(lock))),
            Err(TryLockError::WouldBlock) => {
                if Instant::now() >= deadline {
                    return Err(AuditError::Locked {
                        lock: path.to_path_buf(),
                    });
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(2));
            }
            Err(TryLockError::Error(e)) => {
                return Err(AuditError::io("cannot lock the audit log", path, e));
            }
        }
    }
}

/// Takes the append lock for a reader that wants a consistent snapshot; `None` if
/// it cannot within `timeout`.
pub(crate) fn acquire_for_read(lock: &Arc<File>, timeout: Duration) -> Option<LockGuard> {
    acquire(lock, Path::new(LOCK_FILE), timeout).ok()
}

impl AuditLog {
    /// Opens (creating them 0700 if needed) the audit log in `audit_dir` and its
    /// anchor in `state_dir`, keyed by `key`.
    ///
    /// Under the lock it finds the head and repairs what a crash can leave behind:
    /// a torn final record is cut off and the repair is itself recorded (kind
    /// `audit_repair`); a missing or unreadable anchor is rebuilt from the newest
    /// verifying record, also recorded. Fails with [`AuditError::WrongKey`] when
    /// neither the anchor nor the newest record verifies with `key`.
    pub fn open(
        audit_dir: &Path,
        state_dir: &Path,
        key: &[u8; 32],
        opts: Options,
    ) -> Result<AuditLog, AuditError> {
        ensure_private_dir(audit_dir)?;
        ensure_private_dir(state_dir)?;
        let lock_path = audit_dir.join(LOCK_FILE);
        let lock = files::open_lock(&lock_path)
            .map_err(|e| AuditError::io("cannot open the audit lock file", &lock_path, e))?;
        let mut log = AuditLog {
            audit_dir: audit_dir.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            key: Keyed::new(key),
            opts,
            lock: Arc::new(lock),
            lock_path,
            cur: None,
            written: None,
            pending: 0,
            pending_since: None,
            anchored: false,
            anchor_unsynced_since: None,
            held: None,
            held_fresh: false,
            held_anchor: None,
        };
        let _guard = acquire(&log.lock, &log.lock_path, log.opts.lock_timeout)?;
        let repaired = log.reload()?;
        log.settle(repaired)?;
        Ok(log)
    }

    /// [`AuditLog::open`] on a home's `audit/` and `state/`.
    pub fn open_home(home: &Home, key: &[u8; 32], opts: Options) -> Result<AuditLog, AuditError> {
        AuditLog::open(&home.audit_dir(), &home.state_dir(), key, opts)
    }

    /// The head as this log last saw it (other processes may have appended since).
    pub fn head(&self) -> Option<Head> {
        self.cur.as_ref().map(|c| c.head)
    }

    /// Appends one record and returns its sequence number. With
    /// [`FsyncPolicy::Always`] the record is durable and anchored when this returns;
    /// on error the caller must treat the decision as not audited (and fail the
    /// request). An invalid [`Kind::Other`] name is refused with
    /// [`AuditError::InvalidKind`] before anything is written.
    pub fn append(&mut self, event: &Event) -> Result<u64, AuditError> {
        if let Kind::Other(name) = &event.kind {
            // A name readers could not parse back would make the record unreadable.
            name.parse::<Kind>()?;
        }
        let _guard = self.guard()?;
        let force = self.refresh_head()?;
        let (seq, rotated) = self.write(event)?;
        self.settle(force || rotated)?;
        Ok(seq)
    }

    /// Makes every record written so far durable and anchors the head (a no-op
    /// when nothing is pending), and fdatasyncs an anchor this log overwrote in
    /// place.
    pub fn flush(&mut self) -> Result<(), AuditError> {
        if self.pending > 0 {
            let _guard = self.guard()?;
            if let Some(cur) = &self.cur {
                // Our records may be in a file another process has since rotated
                // away from: sync through our own handle first.
                cur.file
                    .sync_data()
                    .map_err(|e| AuditError::io("cannot sync the audit log", &cur.path, e))?;
            }
            self.refresh_head()?;
            self.sync_and_anchor()?;
        }
        self.sync_anchor()
    }

    /// fdatasyncs the anchor file if this log overwrote it in place since its
    /// last sync. No lock needed: whatever line the file holds names durable
    /// records, and a writer that replaced the file synced its own.
    fn sync_anchor(&mut self) -> Result<(), AuditError> {
        if self.anchor_unsynced_since.is_none() {
            return Ok(());
        }
        let path = self.state_dir.join(ANCHOR_FILE);
        files::sync_data_at(&path)
            .map_err(|e| AuditError::io("cannot sync the audit anchor", path, e))?;
        self.anchor_unsynced_since = None;
        Ok(())
    }

    /// Points the anchor at `anchor` (see [`Anchor::advance`]) and notes whether
    /// the anchor file now waits for a sync. Called under the lock.
    fn advance_anchor(&mut self, anchor: &Anchor) -> Result<(), AuditError> {
        if self.held.is_some()
            && let Some(held) = &mut self.held_anchor
        {
            if anchor.seq <= held.seq {
                return Ok(());
            }
            let line = anchor.to_bytes(&self.key);
            if line.len() == held.len {
                if let Err(e) = files::overwrite_at_start(&held.file, &line) {
                    self.held_anchor = None;
                    let path = self.state_dir.join(ANCHOR_FILE);
                    return Err(AuditError::io("cannot write the audit anchor", path, e));
                }
                held.seq = anchor.seq;
                self.anchor_unsynced_since.get_or_insert_with(Instant::now);
                return Ok(());
            }
        }
        self.held_anchor = None;
        match anchor.advance(&self.state_dir, &self.key, !self.anchored)? {
            Advanced::Already => return Ok(()),
            Advanced::InPlace => {
                self.anchor_unsynced_since.get_or_insert_with(Instant::now);
            }
            Advanced::Replaced => self.anchored = true,
        }
        // The file now holds exactly this anchor's line: keep it open while
        // the lock is held.
        if self.held.is_some() {
            let path = self.state_dir.join(ANCHOR_FILE);
            if let Ok(file) = fs::OpenOptions::new().write(true).open(&path) {
                self.held_anchor = Some(HeldAnchor {
                    file,
                    seq: anchor.seq,
                    len: anchor.to_bytes(&self.key).len(),
                });
            }
        }
        Ok(())
    }

    /// [`AuditLog::flush`] if the batch policy's `max_delay` has passed (or, with
    /// `Always`, if a record written for a group commit was left unsynced for
    /// 100 ms: its writer stopped waiting, or did not wait, as for an outcome
    /// record). Also fdatasyncs an anchor overwritten in place more than a
    /// second ago. Call it from a timer.
    pub fn flush_if_due(&mut self) -> Result<(), AuditError> {
        let max_delay = match self.opts.fsync {
            FsyncPolicy::Batch { max_delay, .. } => max_delay,
            // Records written for a group commit whose writers stopped waiting
            // (a client that hung up): anchor them once they are this old.
            FsyncPolicy::Always => ABANDONED_AFTER,
        };
        match self.pending_since {
            Some(since) if since.elapsed() >= max_delay => self.flush(),
            _ => match self.anchor_unsynced_since {
                Some(since) if since.elapsed() >= ANCHOR_SYNC_AFTER => self.sync_anchor(),
                _ => Ok(()),
            },
        }
    }

    /// Flushes pending records and closes the log, reporting a failure that drop
    /// would have to ignore.
    pub fn close(mut self) -> Result<(), AuditError> {
        self.flush()
    }

    /// Whether records wait for their own fsync ([`FsyncPolicy::Always`]): then a
    /// [`crate::SharedLog`] writes them with [`AuditLog::append_deferred`] and
    /// makes them durable in groups.
    pub(crate) fn syncs_each_record(&self) -> bool {
        self.opts.fsync == FsyncPolicy::Always
    }

    /// Writes one record without waiting for its fsync (group commit). Returns
    /// its sequence number and whether it is already durable and anchored: a
    /// record that starts a file, or follows a repair, is settled at once.
    pub(crate) fn append_deferred(&mut self, event: &Event) -> Result<(u64, bool), AuditError> {
        if let Kind::Other(name) = &event.kind {
            name.parse::<Kind>()?;
        }
        let _guard = self.guard()?;
        let force = self.refresh_head()?;
        let (seq, rotated) = self.write(event)?;
        if force || rotated {
            self.sync_and_anchor()?;
            return Ok((seq, true));
        }
        Ok((seq, false))
    }

    /// What a group commit must fsync to make every record this log wrote
    /// durable: the file holding the newest one and the anchor naming it. `None`
    /// when the newest record is not in the file being appended to (another
    /// process rotated past it, and fsynced it before doing so) or the file was
    /// dropped after an error; [`AuditLog::flush`] then does the work under the
    /// lock.
    pub(crate) fn sync_point(&self) -> Option<SyncPoint> {
        let cur = self.cur.as_ref()?;
        let written = self.written.clone()?;
        (written.file == files::name_of(cur.index)).then(|| SyncPoint {
            file: Arc::clone(&cur.file),
            path: cur.path.clone(),
            anchor: written,
        })
    }

    /// The sequence number of the newest record this log wrote (0 if none).
    pub(crate) fn written_seq(&self) -> u64 {
        self.written.as_ref().map_or(0, |w| w.seq)
    }

    /// Points the anchor at a record whose file was fsynced outside the lock
    /// (group commit), unless another writer already anchored a newer record.
    pub(crate) fn anchor_synced(&mut self, point: &SyncPoint) -> Result<(), AuditError> {
        let _guard = self.guard()?;
        if let Err(e) = self.advance_anchor(&point.anchor) {
            self.cur = None;
            return Err(e);
        }
        if self.written_seq() == point.anchor.seq {
            self.pending = 0;
            self.pending_since = None;
        }
        Ok(())
    }

    fn now(&self) -> Timestamp {
        self.opts
            .clock
            .as_ref()
            .map_or_else(Timestamp::now, |c| c())
    }

    /// Takes the append lock and keeps it until [`AuditLog::release_lock`] (or
    /// drop). Meanwhile appends take no lock of their own and check the head
    /// once, at the first of them, instead of at each (a `stat` of the file and
    /// one of the next file): no other appender can write while it is held.
    /// For a writer with a steady stream of records — a server's audit writer
    /// thread —, which must release it whenever the stream pauses and at short
    /// intervals, since every other appender (the CLI, other servers, `audit
    /// verify`'s snapshot) waits for it meanwhile. Waits for the lock as an
    /// append does. Durability is unchanged: the fsync policy applies as ever.
    pub fn hold_lock(&mut self) -> Result<(), AuditError> {
        if self.held.is_none() {
            self.held = Some(acquire(
                &self.lock,
                &self.lock_path,
                self.opts.lock_timeout,
            )?);
            self.held_fresh = false;
        }
        Ok(())
    }

    /// Releases the lock [`AuditLog::hold_lock`] took (a no-op without it).
    pub fn release_lock(&mut self) {
        self.held = None;
        self.held_fresh = false;
        self.held_anchor = None;
    }

    /// Whether this log keeps the append lock between appends.
    pub fn holds_lock(&self) -> bool {
        self.held.is_some()
    }

    /// Appends `event` with no wait at all, if that is possible: this log holds
    /// the lock ([`AuditLog::hold_lock`]) and has checked the head under it, the
    /// record neither starts nor fills a file, and no batched fsync is due. The
    /// record is written (visible to every reader and process), not synced: the
    /// next sync of the log covers it — with `Always`, the next group commit's
    /// or [`AuditLog::flush_if_due`]'s once it is 100 ms old; with `Batch`, the
    /// batch's. `None` when something would have to wait (nothing written).
    pub(crate) fn try_append_unsynced(&mut self, event: &Event) -> Option<Result<u64, AuditError>> {
        /// Room left in the file below which the record might rotate it (the
        /// longest record is a few KiB).
        const ROOM: u64 = 64 << 10;
        let cur = self.cur.as_ref()?;
        let full = cur.len + ROOM > self.opts.max_file_bytes;
        if self.held.is_none() || !self.held_fresh || full || cur.head.seq == 0 || self.sync_due() {
            return None;
        }
        if let Kind::Other(name) = &event.kind
            && let Err(e) = name.parse::<Kind>()
        {
            return Some(Err(e));
        }
        Some(self.write(event).map(|(seq, _)| seq))
    }

    /// Whether the batch policy wants its fsync now.
    fn sync_due(&self) -> bool {
        match self.opts.fsync {
            FsyncPolicy::Always => false,
            FsyncPolicy::Batch {
                max_records,
                max_delay,
            } => {
                self.pending >= max_records
                    || self.pending_since.is_some_and(|t| t.elapsed() >= max_delay)
            }
        }
    }

    /// The append lock for one operation: `None` when the lock is held already.
    fn guard(&self) -> Result<Option<LockGuard>, AuditError> {
        if self.held.is_some() {
            return Ok(None);
        }
        acquire(&self.lock, &self.lock_path, self.opts.lock_timeout).map(Some)
    }

    /// Finds the head again if another process may have moved it; returns
    /// whether repair records were written. Under a held lock only the first
    /// call checks. Called under the lock.
    fn refresh_head(&mut self) -> Result<bool, AuditError> {
        if self.held_fresh && self.cur.is_some() {
            return Ok(false);
        }
        let force = if self.is_fresh() {
            false
        } else {
            self.reload()?
        };
        self.held_fresh = self.held.is_some();
        Ok(force)
    }

    /// Whether the cached head is still the head: nobody else wrote to our file,
    /// replaced it, or rotated past it since our last append. Called under the lock.
    fn is_fresh(&self) -> bool {
        let Some(cur) = &self.cur else {
            return false;
        };
        match fs::metadata(&cur.path) {
            Ok(meta) if meta.len() == cur.len && file_id(&meta) == cur.id => {}
            _ => return false,
        }
        let next = self.audit_dir.join(files::name_of(cur.index + 1));
        fs::symlink_metadata(next).is_err()
    }

    /// Finds the head from the anchor and the newest record, repairing a torn tail
    /// and a lost anchor. Returns whether it wrote repair records. Called under the
    /// lock.
    fn reload(&mut self) -> Result<bool, AuditError> {
        self.cur = None;
        let list = files::list(&self.audit_dir)?;
        let anchor = Anchor::load(&self.state_dir, &self.key)?;
        let newest = list.last().map(|(i, _)| *i);

        let mut notes: Vec<String> = Vec::new();
        // A torn final line: (file index, where it starts, its length).
        let mut torn: Option<(u64, u64, u64)> = None;
        // The newest complete line: (file index, file name, verified head or None).
        let mut tail: Option<(u64, Option<Head>)> = None;
        for (index, path) in list.iter().rev() {
            let mut file = files::open_append(path)
                .map_err(|e| AuditError::io("cannot open the audit log", path, e))?;
            let len = file
                .metadata()
                .map_err(|e| AuditError::io("cannot read the audit log", path, e))?
                .len();
            let info = files::read_tail(&mut file, len)
                .map_err(|e| AuditError::io("cannot read the audit log", path, e))?;
            if info.torn_len > 0 && Some(*index) == newest && tail.is_none() {
                // A crash in the middle of a write: the record was never
                // acknowledged. It is replaced below by the record of its removal.
                torn = Some((*index, info.end_of_complete, info.torn_len));
            }
            if let Some(line) = info.last_line {
                let head = split_line(&line).ok().and_then(|split| {
                    if !self.key.verify_record(&split.body, &split.mac) {
                        return None;
                    }
                    let record = crate::record::parse_body(&split.body, split.mac).ok()?;
                    Some(Head {
                        seq: record.seq,
                        mac: record.mac,
                    })
                });
                tail = Some((*index, head));
                break;
            }
        }

        let anchor_valid = match &anchor {
            AnchorState::Valid(a) => Some(a.clone()),
            _ => None,
        };
        // The floor: never chain below what the anchor or this process knows.
        let floor = match (anchor_valid.clone(), self.written.clone()) {
            (Some(a), Some(w)) => Some(if w.seq > a.seq { w } else { a }),
            (a, w) => a.or(w),
        };
        let tail_head = tail.and_then(|(_, h)| h);
        let head = match (&floor, tail_head) {
            (Some(f), Some(t)) if t.seq > f.seq || (t.seq == f.seq && t.mac == f.head) => t,
            (Some(f), _) => Head {
                seq: f.seq,
                mac: f.head,
            },
            (None, Some(t)) => t,
            (None, None) => {
                if tail.is_some() || matches!(anchor, AnchorState::BadMac) {
                    return Err(AuditError::WrongKey {
                        audit_dir: self.audit_dir.clone(),
                        anchor: self.state_dir.join(ANCHOR_FILE),
                    });
                }
                Head {
                    seq: 0,
                    mac: Mac::ZERO,
                }
            }
        };
        if anchor_valid.is_none() && head.seq > 0 {
            let why = match &anchor {
                AnchorState::Missing => "was missing".to_owned(),
                AnchorState::BadMac => "did not verify".to_owned(),
                AnchorState::Unreadable(reason) => format!("was unreadable ({reason})"),
                AnchorState::Valid(_) => String::new(),
            };
            notes.push(format!(
                "the anchor state/{ANCHOR_FILE} {why}; re-anchored at seq {} from the newest verifying record",
                head.seq
            ));
        }

        let anchor_index = anchor_valid
            .as_ref()
            .and_then(|a| files::index_of(&a.file))
            .unwrap_or(1);
        let index = newest.unwrap_or(1).max(anchor_index);
        let mut repaired = false;
        if let Some((torn_index, end, torn_len)) = torn {
            let note = format!(
                "removed {torn_len} bytes of an incomplete record at the end of {} (a crash during a write)",
                files::name_of(torn_index)
            );
            if torn_index == index {
                self.overwrite_torn(index, end, head, &note)?;
                repaired = true;
            } else {
                // The head moved to a newer file (the anchor names one that is
                // gone): cut the torn bytes and record it there.
                let path = self.audit_dir.join(files::name_of(torn_index));
                files::open_append(&path)
                    .and_then(|f| f.set_len(end).and_then(|()| f.sync_all()))
                    .map_err(|e| AuditError::io("cannot repair the audit log", &path, e))?;
                notes.insert(0, note);
            }
        }
        if self.cur.is_none() {
            self.cur = Some(self.open_current(index, head)?);
        }
        for note in &notes {
            let event = Event::new(Kind::AuditRepair).detail(note);
            self.write(&event)?;
        }
        Ok(repaired || !notes.is_empty())
    }

    /// Replaces a torn final line (from `end` on) with the record of its removal.
    /// The record is written over the torn bytes and the file is cut after it, so
    /// a crash at any point leaves either torn bytes (which the next writer
    /// repairs, and records) or the repair record — never a silent cut.
    fn overwrite_torn(
        &mut self,
        index: u64,
        end: u64,
        head: Head,
        note: &str,
    ) -> Result<(), AuditError> {
        use std::io::{Seek, SeekFrom};
        let path = self.audit_dir.join(files::name_of(index));
        let (seq, mac, line) = self.next_line(&Event::new(Kind::AuditRepair).detail(note), head);
        let result = (|| -> io::Result<()> {
            let mut file = fs::OpenOptions::new().write(true).open(&path)?;
            file.seek(SeekFrom::Start(end))?;
            file.write_all(&line)?;
            file.set_len(end + line.len() as u64)?;
            file.sync_all()
        })();
        result.map_err(|e| AuditError::io("cannot repair the audit log", &path, e))?;
        self.cur = Some(self.open_current(index, Head { seq, mac })?);
        self.written = Some(Anchor {
            seq,
            head: mac,
            file: files::name_of(index),
        });
        self.pending += 1;
        self.pending_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// The record line that follows `head`: its sequence number, MAC and bytes.
    fn next_line(&self, event: &Event, head: Head) -> (u64, Mac, Vec<u8>) {
        let ts = format_ts(self.now());
        let seq = head.seq + 1;
        let body = canonical_body(&ts, seq, event, &head.mac);
        let mac = self.key.record(&body);
        (seq, mac, line_from_body(body, &mac))
    }

    fn open_current(&self, index: u64, head: Head) -> Result<Current, AuditError> {
        let path = self.audit_dir.join(files::name_of(index));
        let existed = path.exists();
        let file = files::open_append(&path)
            .map_err(|e| AuditError::io("cannot open the audit log", &path, e))?;
        if !existed {
            files::sync_dir(&self.audit_dir).map_err(|e| {
                AuditError::io("cannot sync the audit directory", &self.audit_dir, e)
            })?;
        }
        let meta = file
            .metadata()
            .map_err(|e| AuditError::io("cannot read the audit log", &path, e))?;
        Ok(Current {
            index,
            path,
            id: file_id(&meta),
            len: meta.len(),
            file: Arc::new(file),
            head,
        })
    }

    /// Writes one record after the cached head, rotating first if the file is full.
    /// Returns the sequence number and whether a new file was started.
    fn write(&mut self, event: &Event) -> Result<(u64, bool), AuditError> {
        let Some(head) = self.cur.as_ref().map(|c| c.head) else {
            return Err(AuditError::io(
                "cannot write the audit log",
                &self.audit_dir,
                io::Error::other("no current log file"),
            ));
        };
        let (seq, mac, line) = self.next_line(event, head);
        let Some(cur) = self.cur.as_mut() else {
            unreachable!("checked above")
        };

        let mut rotated = false;
        if cur.len > 0 && cur.len + line.len() as u64 > self.opts.max_file_bytes {
            // The old file is final from now on: make its tail durable first.
            cur.file
                .sync_data()
                .map_err(|e| AuditError::io("cannot sync the audit log", &cur.path, e))?;
            let (index, head) = (cur.index + 1, cur.head);
            let next = self.open_current(index, head)?;
            self.cur = Some(next);
            rotated = true;
        }
        let Some(cur) = self.cur.as_mut() else {
            unreachable!("set above")
        };
        if let Err(e) = (&*cur.file).write_all(&line) {
            // The file may now end in part of a line: forget what we know, so the
            // next append re-reads (and repairs) it.
            let path = cur.path.clone();
            self.cur = None;
            return Err(AuditError::io("cannot write the audit log", path, e));
        }
        cur.len += line.len() as u64;
        cur.head = Head { seq, mac };
        self.written = Some(Anchor {
            seq,
            head: mac,
            file: files::name_of(cur.index),
        });
        self.pending += 1;
        self.pending_since.get_or_insert_with(Instant::now);
        Ok((seq, rotated || seq == 1))
    }

    /// Applies the fsync policy after writes. Called under the lock.
    fn settle(&mut self, force: bool) -> Result<(), AuditError> {
        if self.pending == 0 {
            return Ok(());
        }
        let due = match self.opts.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::Batch {
                max_records,
                max_delay,
            } => {
                force
                    || self.pending >= max_records
                    || self.pending_since.is_some_and(|t| t.elapsed() >= max_delay)
            }
        };
        if due { self.sync_and_anchor() } else { Ok(()) }
    }

    /// fsync the current file, then point the anchor at its head. The order
    /// matters: the anchor never names a record that is not yet durable.
    fn sync_and_anchor(&mut self) -> Result<(), AuditError> {
        let Some(cur) = &self.cur else {
            return Ok(());
        };
        let anchor = Anchor {
            seq: cur.head.seq,
            head: cur.head.mac,
            file: files::name_of(cur.index),
        };
        let result = cur
            .file
            .sync_data()
            .map_err(|e| AuditError::io("cannot sync the audit log", &cur.path, e))
            .and_then(|()| self.advance_anchor(&anchor));
        if result.is_err() {
            self.cur = None;
            return result;
        }
        self.pending = 0;
        self.pending_since = None;
        Ok(())
    }
}

/// A record position to make durable outside the append lock.
pub(crate) struct SyncPoint {
    file: Arc<File>,
    path: PathBuf,
    anchor: Anchor,
}

impl SyncPoint {
    /// The record's sequence number.
    pub(crate) fn seq(&self) -> u64 {
        self.anchor.seq
    }

    /// fsyncs the file holding the record (and every record before it in it).
    pub(crate) fn sync(&self) -> Result<(), AuditError> {
        self.file
            .sync_data()
            .map_err(|e| AuditError::io("cannot sync the audit log", &self.path, e))
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Best effort; `close` reports the error.
        let _ = self.flush();
    }
}
