//! The audit writer: one dedicated thread owns the audit log.
//!
//! Ownership. The [`SharedLog`] is the writer thread's; the rest of the server
//! holds an [`AuditWriter`], which sends it records. So no async worker ever
//! waits for the log's cross-process file lock, an fsync or a repair: an async
//! request awaits a one-shot answer instead. One exception costs no wait: a
//! record that is answered once written, not synced — an outcome, or any record
//! under `audit_fsync = "batch"` — is written by the request's own thread (one
//! `write` to the page cache, [`SharedLog::try_write_now`]) when the log is free
//! that instant, the thread keeps the file lock (below) and no batch fsync is
//! due; otherwise it goes to the thread like the rest. That saves two thread
//! wake-ups per record (issue 16).
//!
//! On the current-thread runtime that serves MCP over stdio (one client), the
//! same holds for a record that must be durable (a decision under
//! `audit_fsync = "always"`) when no other such record is waiting at that
//! moment ([`AuditWriter::record`] counts them): there is nobody to share an
//! fsync with, so the serving thread writes it and leads the fsync itself
//! ([`SharedLog::wait`]). The call then waits for one fdatasync, not for the
//! writer thread to wake up and then wake it (issue 16). A record that arrives
//! while one is waiting goes to the thread, and its group commit; so does
//! every record of a multi-thread runtime (the network doors), where syncing
//! on a worker costs more than the hand-off saves (see `sync_now`).
//!
//! Group commit. The thread takes every record queued at that moment, writes them
//! in order ([`SharedLog::write`]), makes them durable with one fsync
//! ([`SharedLog::wait`] on each: the first leads the sync, the others find their
//! record covered) and then answers each sender with its sequence number or the
//! error. Records queued during that fsync form the next group. Under
//! `audit_fsync = "batch"` the log itself decides when to sync, and the thread
//! calls [`SharedLog::flush_if_due`] every [`TICK`] (the server needs no timer of
//! its own).
//!
//! Records that need not wait. An outcome record follows a decision record that
//! is already durable ([`AuditWriter::record_written`]): it is answered as soon
//! as it is written (in the page cache, visible to every reader; a crash of the
//! process cannot lose it), and the next group's fsync — or, when traffic stops,
//! the tick at most [`TICK`] after it is due — makes it durable. So a request
//! costs one fsync (its decision), not two.
//!
//! Order. One thread, one queue: records reach the log in the order they were
//! sent.
//!
//! The cross-process lock. While records keep coming (less than [`HOLD_IDLE`]
//! apart) the thread keeps the log's append lock between them
//! ([`SharedLog::hold_lock`]), so a record costs no `flock` and no `stat` of the
//! log files (issue 16). It lets go when the stream pauses, and after holding it
//! for [`HOLD_MAX`] it appends record by record for [`HOLD_GAP`], so another
//! process's append (the CLI's, another server's, `audit verify`'s snapshot)
//! waits at most about [`HOLD_MAX`].
//!
//! Shutdown. Dropping the writer closes the queue; the thread writes what is still
//! queued, flushes and anchors the log, and the drop waits for it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use airlock_audit::{AuditError, Event, SharedLog, Written};
use tokio::sync::oneshot;

use super::report;

/// How often the thread makes batched (or abandoned) records durable when due.
const TICK: Duration = Duration::from_millis(100);

/// At most this many records in one group (bounds one sender's wait).
const MAX_GROUP: usize = 1024;

/// The append lock is let go when no record came for this long.
const HOLD_IDLE: Duration = Duration::from_millis(10);

/// The append lock is kept at most this long at a time...
const HOLD_MAX: Duration = Duration::from_millis(250);

/// ... and then not taken again for this long: records are appended one by one
/// (each taking and releasing the lock), so a process polling for it gets it.
const HOLD_GAP: Duration = Duration::from_millis(5);

/// The sequence number of a durable record, or why it is not on record.
type Answer = Result<u64, AuditWriteError>;

/// Why an audit record is not on record (or the log could not be flushed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditWriteError {
    /// The writer thread has stopped (the server is shutting down, or the thread
    /// ended): nothing more can be recorded.
    #[error("the audit writer has stopped")]
    Stopped,
    /// The log refused the record, or could not make it durable.
    #[error(transparent)]
    Log(#[from] AuditError),
}

/// Who waits for an answer.
enum Reply {
    /// An async task (the request path).
    Task(oneshot::Sender<Answer>),
    /// A thread that may block (the blocking pool, a test, shutdown).
    Thread(mpsc::SyncSender<Answer>),
}

impl Reply {
    fn send(self, answer: Answer) {
        match self {
            // A sender that stopped waiting (a client that hung up) still gets its
            // record written and synced; only the answer is dropped.
            Reply::Task(tx) => drop(tx.send(answer)),
            Reply::Thread(tx) => drop(tx.send(answer)),
        }
    }
}

enum Job {
    /// Write a record and make it durable.
    Append { event: Box<Event>, reply: Reply },
    /// Write a record; answer without waiting for its fsync.
    Write { event: Box<Event>, reply: Reply },
    /// Sync and anchor what is written: everything, or only what is due.
    Flush { due_only: bool, reply: Reply },
}

/// The handle the server holds: it sends records to the writer thread.
pub(super) struct AuditWriter {
    queue: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// The thread's log, for the records written without waiting.
    log: Arc<SharedLog>,
    /// Whether a decision record waits for an fsync of its own (`Always`).
    decisions_sync: bool,
    /// How many [`AuditWriter::record`] calls on a current-thread runtime wait
    /// for their fsync right now.
    syncing: AtomicUsize,
}

/// Whether the calling task runs on a current-thread runtime (the one that
/// serves MCP over stdio), where it may block for its record's fsync.
fn on_current_thread_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
}

/// One [`AuditWriter::record`] call counted in [`AuditWriter::syncing`].
struct Syncing<'a>(&'a AtomicUsize);

impl<'a> Syncing<'a> {
    /// Counts a call in; whether it is the only one.
    fn enter(count: &'a AtomicUsize) -> (Syncing<'a>, bool) {
        let before = count.fetch_add(1, Ordering::AcqRel);
        (Syncing(count), before == 0)
    }
}

impl Drop for Syncing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter").finish_non_exhaustive()
    }
}

impl AuditWriter {
    /// Starts the writer thread, which takes ownership of `log`.
    pub(super) fn start(log: SharedLog) -> std::io::Result<AuditWriter> {
        let (queue, jobs) = mpsc::channel();
        let log = Arc::new(log);
        let decisions_sync = log.syncs_each_record();
        let owned = Arc::clone(&log);
        let thread = std::thread::Builder::new()
            .name("airlock-audit".into())
            .spawn(move || run(&owned, &jobs))?;
        Ok(AuditWriter {
            queue: Some(queue),
            thread: Some(thread),
            log,
            decisions_sync,
            syncing: AtomicUsize::new(0),
        })
    }

    /// Writes `event` here and now when that costs no wait (see the module
    /// docs); `None` when it must go to the thread.
    fn write_now(&self, event: &Event) -> Option<Answer> {
        self.queue.as_ref()?;
        let written = self.log.try_write_now(event)?;
        Some(written.map_err(AuditWriteError::from))
    }

    fn send(&self, job: Job) -> Result<(), AuditWriteError> {
        self.queue
            .as_ref()
            .ok_or(AuditWriteError::Stopped)?
            .send(job)
            .map_err(|_| AuditWriteError::Stopped)
    }

    /// Appends `event` and waits until it is durable (per the fsync policy). An
    /// error means it is not on record.
    pub(super) async fn record(&self, event: &Event) -> Answer {
        // Counted only where a caller may sync its own record (see `sync_now`):
        // the network doors' runtime pays no shared counter per request.
        let counted = (self.decisions_sync && on_current_thread_runtime())
            .then(|| Syncing::enter(&self.syncing));
        let now = match &counted {
            _ if !self.decisions_sync => self.write_now(event),
            Some((_, true)) => self.sync_now(event),
            _ => None,
        };
        if let Some(answer) = now {
            return answer;
        }
        self.hand_over(|event, reply| Job::Append { event, reply }, event)
            .await
    }

    /// Under `Always`, on a current-thread runtime (MCP over stdio: one client,
    /// which waits for this answer), for a record no other call is waiting to
    /// sync: writes it here and now when that costs no wait, then leads its
    /// fsync on this thread (see the module docs). `None` when it must go to the
    /// writer thread (nothing written). On a multi-thread runtime (a network
    /// door, many clients) records always go to the thread: syncing on a worker
    /// would need `block_in_place`, which hands the worker's other tasks to
    /// another thread at every record — measured 0.76× the gateway's `"always"`
    /// throughput at 16 connections for 1.04× at one (docs/benchmarks.md).
    fn sync_now(&self, event: &Event) -> Option<Answer> {
        self.queue.as_ref()?;
        let written = match self.log.try_write_deferred(event)? {
            Ok(written) => written,
            Err(e) => return Some(Err(e.into())),
        };
        let answer = self.log.wait(written).map(|()| written.seq);
        Some(answer.map_err(AuditWriteError::from))
    }

    /// Appends `event` and answers once it is written — visible to readers and
    /// other processes, so a crash of this process cannot lose it — without
    /// waiting for its fsync: the next group's fsync, or the writer's tick once
    /// the record is 100 ms old, makes it durable. Only for a record whose
    /// absence after a power loss is itself on record: an outcome, whose
    /// decision record is durable (`audit verify` then lists the request as
    /// without outcome). An error means it is not written.
    pub(super) async fn record_written(&self, event: &Event) -> Answer {
        if let Some(answer) = self.write_now(event) {
            return answer;
        }
        self.hand_over(|event, reply| Job::Write { event, reply }, event)
            .await
    }

    /// Hands `event` to the writer thread as the job `job` makes of it and its
    /// reply, and waits for the answer.
    async fn hand_over(&self, job: impl FnOnce(Box<Event>, Reply) -> Job, event: &Event) -> Answer {
        let (tx, rx) = oneshot::channel();
        self.send(job(Box::new(event.clone()), Reply::Task(tx)))?;
        rx.await.map_err(|_| AuditWriteError::Stopped)?
    }

    /// [`AuditWriter::record`] for a thread that may block.
    pub(super) fn record_blocking(&self, event: &Event) -> Answer {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Job::Append {
            event: Box::new(event.clone()),
            reply: Reply::Thread(tx),
        })?;
        rx.recv().map_err(|_| AuditWriteError::Stopped)?
    }

    /// Syncs and anchors every record written so far (or, with `due_only`, only
    /// batched records that are due); blocks the calling thread until done.
    pub(super) fn flush_blocking(&self, due_only: bool) -> Result<(), AuditWriteError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Job::Flush {
            due_only,
            reply: Reply::Thread(tx),
        })?;
        rx.recv().map_err(|_| AuditWriteError::Stopped)?.map(drop)
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            // The thread flushes and anchors what is queued, then ends.
            let _ = thread.join();
        }
    }
}

/// When the writer thread holds the append lock between records.
#[derive(Default)]
struct Hold {
    /// Since when it holds the lock.
    since: Option<Instant>,
    /// It does not take it again before this.
    not_before: Option<Instant>,
}

impl Hold {
    /// Takes the lock for the records to come, unless in a gap. A failure is
    /// not reported here: each append then takes the lock itself and reports.
    fn take(&mut self, log: &SharedLog) {
        let now = Instant::now();
        if self.since.is_some() || self.not_before.is_some_and(|t| now < t) {
            return;
        }
        if log.hold_lock().is_ok() {
            self.since = Some(now);
        }
    }

    /// Lets the lock go (when the stream pauses, or at shutdown).
    fn release(&mut self, log: &SharedLog) {
        if self.since.take().is_some() {
            log.release_lock();
        }
    }

    /// Lets the lock go for a gap once it was held for [`HOLD_MAX`].
    fn expire(&mut self, log: &SharedLog) {
        if self.since.is_some_and(|t| t.elapsed() >= HOLD_MAX) {
            self.release(log);
            self.not_before = Some(Instant::now() + HOLD_GAP);
        }
    }
}

/// The writer thread: groups, writes, syncs, answers; until the queue closes.
fn run(log: &SharedLog, jobs: &mpsc::Receiver<Job>) {
    let mut last_tick = Instant::now();
    let mut written: Vec<(Result<Written, AuditError>, Reply)> = Vec::new();
    let mut hold = Hold::default();
    // The newest record written, as of the last pause: records written by the
    // requests' own threads keep the lock held.
    let mut newest = 0;
    loop {
        let wait = if hold.since.is_some() {
            HOLD_IDLE
        } else {
            TICK
        };
        let first = match jobs.recv_timeout(wait) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = log.written_seq();
                if now == newest {
                    hold.release(log);
                } else {
                    hold.expire(log);
                }
                newest = now;
                if last_tick.elapsed() >= TICK {
                    tick(log);
                    last_tick = Instant::now();
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        hold.take(log);
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        for job in group {
            match job {
                Job::Append { event, reply } => written.push((log.write(&event), reply)),
                Job::Write { event, reply } => {
                    let answer = log.write(&event).map(|w| w.seq);
                    reply.send(answer.map_err(AuditWriteError::from));
                }
                Job::Flush { due_only, reply } => {
                    settle(log, &mut written);
                    let done = if due_only {
                        log.flush_if_due()
                    } else {
                        log.flush()
                    };
                    reply.send(done.map(|()| 0).map_err(AuditWriteError::from));
                }
            }
        }
        settle(log, &mut written);
        hold.expire(log);
        if last_tick.elapsed() >= TICK {
            tick(log);
            last_tick = Instant::now();
        }
    }
    if let Err(e) = log.flush() {
        report(&format!("audit flush at exit failed: {e}"));
    }
    hold.release(log);
}

/// Makes the written records durable (one fsync for the group) and answers
/// each sender, in order.
fn settle(log: &SharedLog, written: &mut Vec<(Result<Written, AuditError>, Reply)>) {
    for (w, reply) in written.drain(..) {
        let answer = w.and_then(|w| log.wait(w).map(|()| w.seq));
        reply.send(answer.map_err(AuditWriteError::from));
    }
}

/// Batched records due for their fsync (batch policy) are synced and anchored.
fn tick(log: &SharedLog) {
    if let Err(e) = log.flush_if_due() {
        report(&format!("audit flush failed: {e}"));
    }
}

#[cfg(test)]
mod tests {
    //! When the writer holds the audit file's lock and gives it up, and which
    //! records it answers without its thread. "Another appender" is a second
    //! [`AuditLog`] on the same directory: its own open file, so its lock
    //! contends with the writer's exactly as another process's would.

    use std::path::PathBuf;

    use airlock_audit::{AuditLog, Decision, Filter, FsyncPolicy, Kind, Options, Outcome, verify};

    use super::*;

    const KEY: [u8; 32] = [7; 32];

    struct Dirs {
        _tmp: tempfile::TempDir,
        audit: PathBuf,
        state: PathBuf,
    }

    fn dirs() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let (audit, state) = (tmp.path().join("audit"), tmp.path().join("state"));
        Dirs {
            _tmp: tmp,
            audit,
            state,
        }
    }

    /// Nothing batched is ever due: only the writer decides when records sync.
    const BATCH: FsyncPolicy = FsyncPolicy::Batch {
        max_records: 1_000_000,
        max_delay: Duration::from_secs(3600),
    };

    fn open(d: &Dirs, fsync: FsyncPolicy, lock_timeout: Duration) -> AuditLog {
        let opts = Options::default().fsync(fsync).lock_timeout(lock_timeout);
        AuditLog::open(&d.audit, &d.state, &KEY, opts).unwrap()
    }

    fn note(i: u64) -> Event {
        Event::new(Kind::TokenUse)
            .method("GET")
            .path(&format!("/note/{i}"))
            .decision(Decision::Deny)
            .status(401)
    }

    /// Whether another appender, waiting at most 20 ms, gets the lock.
    fn other_appends(other: &mut AuditLog, i: u64) -> bool {
        match other.append(&note(i)) {
            Ok(_) => true,
            Err(AuditError::Locked { .. }) => false,
            Err(e) => panic!("the other appender failed: {e}"),
        }
    }

    /// The paths of the records on disk, in order; the chain must verify.
    fn on_disk(d: &Dirs) -> Vec<String> {
        let report = verify(&d.audit, &d.state, &KEY).unwrap();
        assert_eq!(report.outcome, Outcome::Intact, "{report}");
        airlock_audit::records(&d.audit, Filter::default())
            .unwrap()
            .map(|r| r.unwrap().event.path.unwrap())
            .collect()
    }

    fn paths(ids: &[u64]) -> Vec<String> {
        ids.iter().map(|i| format!("/note/{i}")).collect()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    /// The runtime of the network doors: two workers.
    fn multi_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap()
    }

    /// A writer on a fresh `Always` log in `d`.
    fn always_writer(d: &Dirs) -> Arc<AuditWriter> {
        let log = open(d, FsyncPolicy::Always, Duration::from_secs(1));
        Arc::new(AuditWriter::start(SharedLog::new(log)).unwrap())
    }

    /// Another appender waits while the writer holds the lock and gets it as
    /// soon as the writer lets it go; taking it again while held changes
    /// nothing, nor does letting it go twice.
    #[test]
    fn another_appender_waits_while_the_lock_is_held_and_gets_it_once_released() {
        let d = dirs();
        let log = SharedLog::new(open(&d, FsyncPolicy::Always, Duration::from_secs(1)));
        let mut other = open(&d, FsyncPolicy::Always, Duration::from_millis(20));
        let mut hold = Hold::default();
        hold.take(&log);
        hold.take(&log);
        log.append(&note(1)).unwrap();
        assert!(!other_appends(&mut other, 2), "the lock was not held");
        hold.release(&log);
        assert!(other_appends(&mut other, 3), "the lock was not let go");
        hold.release(&log);
        hold.take(&log);
        log.append(&note(4)).unwrap();
        assert!(
            !other_appends(&mut other, 5),
            "the lock was not taken again"
        );
        hold.release(&log);
        assert!(other_appends(&mut other, 6));
        assert_eq!(on_disk(&d), paths(&[1, 3, 4, 6]));
    }

    /// The lock is kept at most HOLD_MAX (later groups do not restart that
    /// clock), then let go and not taken again for HOLD_GAP, so a process
    /// polling for it gets it; after the gap the writer takes it again.
    #[test]
    fn after_hold_max_the_lock_is_let_go_for_a_gap() {
        let d = dirs();
        let log = SharedLog::new(open(&d, FsyncPolicy::Always, Duration::from_secs(1)));
        let mut other = open(&d, FsyncPolicy::Always, Duration::from_millis(20));
        let mut hold = Hold::default();
        hold.take(&log);
        hold.expire(&log);
        assert!(!other_appends(&mut other, 1), "let go before HOLD_MAX");
        // Held for HOLD_MAX now; the next group's take keeps the clock.
        hold.since = Instant::now().checked_sub(HOLD_MAX);
        hold.take(&log);
        let expired = Instant::now();
        hold.expire(&log);
        assert!(other_appends(&mut other, 2), "kept past HOLD_MAX");
        let gap_end = hold.not_before.expect("no gap after HOLD_MAX");
        assert!(
            gap_end >= expired + HOLD_GAP,
            "the gap ends {:?} after the lock was let go, not {HOLD_GAP:?}",
            gap_end.saturating_duration_since(expired)
        );
        // During the gap (made long here, so that the test does not race it)
        // the writer does not take the lock; once it is over, it does.
        hold.not_before = Some(Instant::now() + Duration::from_secs(60));
        hold.take(&log);
        assert!(other_appends(&mut other, 3), "taken during the gap");
        hold.not_before = Instant::now().checked_sub(Duration::from_millis(1));
        hold.take(&log);
        assert!(!other_appends(&mut other, 4), "not taken after the gap");
        hold.release(&log);
        assert_eq!(on_disk(&d), paths(&[2, 3]));
    }

    /// While records keep coming less than HOLD_IDLE apart — here written by
    /// the callers themselves, none through the writer thread — the writer
    /// keeps the lock; once they pause, another appender gets it at once.
    #[test]
    fn records_written_by_callers_keep_the_lock_until_they_pause() {
        // A loaded machine may not schedule this thread often enough for a
        // stream; each try is a fresh log and writer.
        for _ in 0..10 {
            if stream_keeps_the_lock() {
                return;
            }
        }
        panic!("not one stream of 10 records in HOLD_MAX / 2 in 10 tries");
    }

    /// One try of `records_written_by_callers_keep_the_lock_until_they_pause`:
    /// false when fewer than 10 records came within HOLD_MAX / 2.
    fn stream_keeps_the_lock() -> bool {
        let d = dirs();
        let w =
            AuditWriter::start(SharedLog::new(open(&d, BATCH, Duration::from_secs(1)))).unwrap();
        let mut other = open(&d, BATCH, Duration::from_secs(1));
        let rt = runtime();
        // `last` is when this thread last called for a record: never later than
        // that record's write.
        let start = Instant::now();
        let mut last = start;
        w.record_blocking(&note(0)).unwrap();
        let mut i = 0;
        // Well within HOLD_MAX of the first record.
        while start.elapsed() < HOLD_MAX / 2 {
            i += 1;
            if w.log.holds_lock() {
                last = Instant::now();
                rt.block_on(w.record(&note(i))).unwrap();
            } else {
                // Only a pause (this thread not scheduled for HOLD_IDLE) lets
                // it go; then the next record goes to the thread, which takes
                // it again.
                assert!(
                    last.elapsed() >= HOLD_IDLE,
                    "the writer let the lock go {:?} after the last record",
                    last.elapsed()
                );
                last = Instant::now();
                w.record_blocking(&note(i)).unwrap();
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let paused = Instant::now();
        other.append(&note(i + 1)).unwrap();
        assert!(
            paused.elapsed() < HOLD_MAX,
            "another appender waited {:?} after the records stopped",
            paused.elapsed()
        );
        drop(w);
        assert_eq!(on_disk(&d), paths(&(0..=i + 1).collect::<Vec<_>>()));
        i >= 10
    }

    /// A record that need not wait for its fsync (an outcome; any record under
    /// the batch policy) is answered by the caller's own write when the log is
    /// free and its lock held: at once, even while the writer thread is busy
    /// (here: never reads its queue). So is a decision under `Always` that no
    /// other call waits to sync, after the caller's own fsync: it is anchored
    /// when answered. A decision that arrives while another one waits goes to
    /// the thread, to share its group's fsync.
    #[test]
    fn an_outcome_and_a_lone_decision_are_answered_by_the_caller_while_the_writer_is_busy() {
        let d = dirs();
        let log = Arc::new(SharedLog::new(open(
            &d,
            FsyncPolicy::Always,
            Duration::from_secs(1),
        )));
        // What the writer thread leaves after a group: the lock held, the head
        // known.
        log.hold_lock().unwrap();
        log.append(&note(1)).unwrap();
        let (queue, jobs) = mpsc::channel();
        let w = AuditWriter {
            queue: Some(queue),
            thread: None,
            log: Arc::clone(&log),
            decisions_sync: log.syncs_each_record(),
            syncing: AtomicUsize::new(0),
        };
        let rt = runtime();
        let answer = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), w.record_written(&note(2))).await
        });
        let seq = answer
            .expect("an outcome waited for the busy writer thread")
            .unwrap();
        assert_eq!(seq, 2);
        assert!(jobs.try_recv().is_err(), "the outcome went to the thread");
        let lone = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), w.record(&note(3))).await
        });
        let seq = lone
            .expect("a lone decision waited for the busy writer thread")
            .unwrap();
        assert_eq!(seq, 3);
        assert!(
            jobs.try_recv().is_err(),
            "the lone decision went to the thread"
        );
        let report = verify(&d.audit, &d.state, &KEY).unwrap();
        assert_eq!(
            report.anchor_seq,
            Some(3),
            "answered before its fsync: {report}"
        );
        // Another decision is waiting for its fsync meanwhile.
        let (other, alone) = Syncing::enter(&w.syncing);
        assert!(alone);
        let decision = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(200), w.record(&note(4))).await
        });
        assert!(
            decision.is_err(),
            "a second decision was answered without the writer thread: {decision:?}"
        );
        match jobs.try_recv() {
            Ok(Job::Append { event, .. }) => assert_eq!(event.path.as_deref(), Some("/note/4")),
            _ => panic!("the second decision was not handed to the writer thread"),
        }
        drop(other);
        drop(w);
        log.release_lock();
        log.flush().unwrap();
        assert_eq!(on_disk(&d), paths(&[1, 2, 3]));
    }

    /// Under `Always`, a decision answered is durable and anchored, even when
    /// the writer holds the lock: on a current-thread runtime (MCP over stdio),
    /// where the caller writes and syncs it itself, and on a multi-thread one
    /// both from `block_on` and from a spawned task, where the writer thread
    /// does.
    #[test]
    fn a_decision_is_anchored_when_it_is_answered() {
        let runtimes = [
            (runtime(), false),
            (multi_thread(), false),
            (multi_thread(), true),
        ];
        for (rt, spawned) in runtimes {
            let d = dirs();
            let w = always_writer(&d);
            for i in 0..5 {
                // The thread takes the lock for this one and keeps it a while.
                w.record_blocking(&note(2 * i)).unwrap();
                let seq = if spawned {
                    let w = Arc::clone(&w);
                    let task = rt.spawn(async move { w.record(&note(2 * i + 1)).await });
                    rt.block_on(task).unwrap().unwrap()
                } else {
                    rt.block_on(w.record(&note(2 * i + 1))).unwrap()
                };
                let report = verify(&d.audit, &d.state, &KEY).unwrap();
                assert_eq!(report.anchor_seq, Some(seq), "{report}");
            }
            drop(w);
            assert_eq!(on_disk(&d), paths(&(0..10).collect::<Vec<_>>()));
        }
    }

    /// Decisions from many tasks at once — on the stdio runtime some synced
    /// by their callers and some in the writer's groups, on the doors' runtime
    /// all in the writer's groups — all reach the log once each, in a chain
    /// that verifies and is anchored at its newest record.
    #[test]
    fn concurrent_decisions_are_each_on_record_once_and_anchored_when_answered() {
        for rt in [runtime(), multi_thread()] {
            concurrent_decisions(&rt);
        }
    }

    fn concurrent_decisions(rt: &tokio::runtime::Runtime) {
        let d = dirs();
        let w = always_writer(&d);
        let seqs: Vec<u64> = rt.block_on(async {
            let tasks: Vec<_> = (0..8u64)
                .map(|t| {
                    let w = Arc::clone(&w);
                    tokio::spawn(async move {
                        let mut seqs = Vec::new();
                        for i in 0..40 {
                            seqs.push(w.record(&note(1000 * t + i)).await.unwrap());
                        }
                        seqs
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        });
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 320, "a sequence number was answered twice");
        drop(w);
        let report = verify(&d.audit, &d.state, &KEY).unwrap();
        assert_eq!(report.anchor_seq, sorted.last().copied(), "{report}");
        let mut written = on_disk(&d);
        written.sort();
        let mut sent: Vec<String> = (0..8u64)
            .flat_map(|t| (0..40).map(move |i| format!("/note/{}", 1000 * t + i)))
            .collect();
        sent.sort();
        assert_eq!(written, sent);
    }
}
