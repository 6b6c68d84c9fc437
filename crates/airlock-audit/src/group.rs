//! Group commit: one fsync for every record waiting at that moment.
//!
//! With [`FsyncPolicy::Always`](crate::FsyncPolicy::Always) each record must be
//! durable before the request it describes is answered. Done one record at a
//! time, a server's throughput is one fsync of the log per record. A
//! [`SharedLog`] keeps the guarantee and lifts that ceiling: writers
//! append under the lock without syncing, then wait; the first waiter becomes the
//! leader, fsyncs the log file *outside* the lock (other writers keep appending
//! meanwhile), anchors the newest record it covered, and wakes every writer whose
//! record that covered. Those that arrived during the fsync form the next group.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::AuditError;
use crate::log::AuditLog;
use crate::record::Event;

/// An [`AuditLog`] shared by the threads (or tasks) of one process, with group
/// commit for the `Always` fsync policy. With the batch policy it is a plain
/// mutex around the log.
#[derive(Debug)]
pub struct SharedLog {
    log: Mutex<AuditLog>,
    sync: Mutex<SyncState>,
    synced: Condvar,
}

#[derive(Debug, Default)]
struct SyncState {
    /// Every record of this process up to this sequence number is durable.
    durable: u64,
    /// A leader is syncing.
    syncing: bool,
    /// Records up to this sequence number were in a group whose sync failed: they
    /// are not on record, whatever later syncs report (a failed fsync may have
    /// dropped the dirty pages).
    failed_upto: u64,
    failure: String,
}

/// A record written but perhaps not yet durable: pass it to [`SharedLog::wait`]
/// before answering the request it describes. A record nobody waits for (an
/// outcome, whose decision is durable) is made durable by the next wait's
/// fsync, or by [`SharedLog::flush_if_due`] once it is 100 ms old.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a written record is not on record until it is waited for"]
pub struct Written {
    /// Its sequence number.
    pub seq: u64,
    durable: bool,
}

impl Written {
    /// Whether the record is already durable (batch policy, or settled at once).
    pub fn is_durable(&self) -> bool {
        self.durable
    }
}

impl SharedLog {
    /// Shares `log`.
    pub fn new(log: AuditLog) -> SharedLog {
        SharedLog {
            log: Mutex::new(log),
            sync: Mutex::new(SyncState::default()),
            synced: Condvar::new(),
        }
    }

    fn log(&self) -> MutexGuard<'_, AuditLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn state(&self) -> MutexGuard<'_, SyncState> {
        self.sync.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a record and returns once it is durable (per the fsync policy):
    /// [`SharedLog::write`] then [`SharedLog::wait`]. Blocks the thread.
    pub fn append(&self, event: &Event) -> Result<u64, AuditError> {
        let written = self.write(event)?;
        self.wait(written)?;
        Ok(written.seq)
    }

    /// Writes a record (visible to readers at once) without waiting for its
    /// fsync. Cheap: it holds the lock only for the write.
    pub fn write(&self, event: &Event) -> Result<Written, AuditError> {
        let mut log = self.log();
        if !log.syncs_each_record() {
            let seq = log.append(event)?;
            return Ok(Written { seq, durable: true });
        }
        let (seq, durable) = log.append_deferred(event)?;
        drop(log);
        if durable {
            let mut st = self.state();
            st.durable = st.durable.max(seq);
        }
        Ok(Written { seq, durable })
    }

    /// Waits until `written` is durable and anchored, leading a group commit if
    /// no other thread is. Blocks the thread (from async code, call it on a
    /// blocking thread). An error means the record is not on record.
    pub fn wait(&self, written: Written) -> Result<(), AuditError> {
        if written.durable {
            return Ok(());
        }
        let seq = written.seq;
        let mut st = self.state();
        loop {
            if seq <= st.failed_upto {
                return Err(AuditError::NotDurable {
                    reason: st.failure.clone(),
                });
            }
            if st.durable >= seq {
                return Ok(());
            }
            if !st.syncing {
                st.syncing = true;
                drop(st);
                let (target, result) = self.sync_group();
                st = self.state();
                st.syncing = false;
                match &result {
                    Ok(()) => st.durable = st.durable.max(target),
                    Err(e) => {
                        st.failed_upto = st.failed_upto.max(target);
                        st.failure = e.to_string();
                    }
                }
                self.synced.notify_all();
                if result.is_err() && seq <= target {
                    return result;
                }
                continue;
            }
            st = self.synced.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Makes every record written so far durable; returns the sequence number it
    /// covered.
    fn sync_group(&self) -> (u64, Result<(), AuditError>) {
        let point = self.log().sync_point();
        match point {
            Some(point) => {
                let result = point.sync().and_then(|()| self.log().anchor_synced(&point));
                (point.seq(), result)
            }
            None => {
                let mut log = self.log();
                let target = log.written_seq();
                (target, log.flush())
            }
        }
    }

    /// [`AuditLog::hold_lock`]: keeps the append lock between records until
    /// [`SharedLog::release_lock`].
    pub fn hold_lock(&self) -> Result<(), AuditError> {
        self.log().hold_lock()
    }

    /// [`AuditLog::release_lock`].
    pub fn release_lock(&self) {
        self.log().release_lock();
    }

    /// [`AuditLog::holds_lock`].
    pub fn holds_lock(&self) -> bool {
        self.log().holds_lock()
    }

    /// Writes `event` on the calling thread if that costs no wait: the log is
    /// free this instant, it keeps the append lock ([`SharedLog::hold_lock`])
    /// and knows its head, and no batched fsync is due. The record is written
    /// (visible to every reader and process) but not synced — as
    /// [`SharedLog::write`] without [`SharedLog::wait`]: with `Always` the next
    /// group's fsync covers it, or [`SharedLog::flush_if_due`] once it is
    /// 100 ms old. `None` when it would have to wait (nothing is written): then
    /// write from a thread that may block.
    pub fn try_write_now(&self, event: &Event) -> Option<Result<u64, AuditError>> {
        self.try_write_deferred(event).map(|w| w.map(|w| w.seq))
    }

    /// [`SharedLog::try_write_now`] for a record that must be durable before
    /// its request is answered: the [`Written`] to pass to [`SharedLog::wait`],
    /// so the calling thread can lead the fsync itself when no other record
    /// waits (durable at once under the batch policy, as with
    /// [`SharedLog::write`]).
    pub fn try_write_deferred(&self, event: &Event) -> Option<Result<Written, AuditError>> {
        let mut log = self.log.try_lock().ok()?;
        let durable = !log.syncs_each_record();
        let seq = log.try_append_unsynced(event)?;
        Some(seq.map(|seq| Written { seq, durable }))
    }

    /// Whether records wait for an fsync of their own (`Always`).
    pub fn syncs_each_record(&self) -> bool {
        self.log().syncs_each_record()
    }

    /// The sequence number of the newest record this log wrote (0 if none).
    pub fn written_seq(&self) -> u64 {
        self.log().written_seq()
    }

    /// [`AuditLog::flush_if_due`] (batch policy; call from a timer).
    pub fn flush_if_due(&self) -> Result<(), AuditError> {
        self.log().flush_if_due()
    }

    /// Makes every record written so far durable and anchored, including those
    /// whose writers stopped waiting.
    pub fn flush(&self) -> Result<(), AuditError> {
        self.log().flush()
    }

    /// Flushes pending records and returns the log.
    pub fn into_inner(self) -> AuditLog {
        self.log
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
