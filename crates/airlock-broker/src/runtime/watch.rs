//! Whether the owner's files may have changed since a check last ran: the one
//! cheap check per request that stands in for a `stat` of each file (issue 16).
//!
//! Before it decides, a request checks `airlock.toml` and `vault.json` (reload),
//! `state/locked` and `state/revocations.json` (the owner's lock and
//! revocations), and at the gateway `state/tokens.json`. Each of those checks
//! used to `stat` its files on every request. Now one inotify instance watches
//! the home's top directory and `state/`, and a check first asks [`HomeWatch`]
//! for its generation: a non-blocking `read` of the inotify descriptor, which
//! returns at once when nothing happened. Only when the generation moved since
//! the check last ran does the check `stat` (and, when a file changed, re-read)
//! as before.
//!
//! Why this misses nothing. Every way the owner changes these files — the CLI
//! replacing a file (temp file and rename), creating or removing `locked`, an
//! editor saving `airlock.toml` in place or by rename — is an inotify event,
//! queued by the kernel before the system call that made the change returns. So
//! when `airlock lock` or `airlock revoke` has returned, the next request's
//! `read` finds the event, and the check runs. The generation is advanced under
//! a mutex, so a request that finds the queue empty because another request
//! just drained it waits until that one has advanced the generation, and then
//! runs its own check. Events `state/` sees on every request (the anchor
//! rewritten in place, `audit-head`) are not asked for: in `state/` only entries
//! created, removed, renamed or with changed attributes count, which is how every
//! writer of the state files writes them.
//!
//! Where inotify is missing (another OS, `max_user_watches` reached, a home on a
//! file system without it), or a watched directory is removed or moved, or the
//! event queue overflows and is lost, the generation moves at every call: each
//! check then runs its `stat`s at every request, as before.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use airlock_home::Home;

/// The home's change counter (see the module docs).
pub(crate) struct HomeWatch {
    #[cfg(target_os = "linux")]
    fd: Option<std::os::fd::OwnedFd>,
    /// Held while the queue is drained and the generation advanced.
    turn: Mutex<u64>,
    /// Set for good once the watch cannot be trusted any more.
    blind: AtomicBool,
}

impl std::fmt::Debug for HomeWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HomeWatch")
            .field("blind", &self.blind.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl HomeWatch {
    /// Watches `home`'s top directory and its `state/` (which exists once the
    /// audit log is open). Never fails: without a watch every check runs.
    pub(crate) fn new(home: &Home) -> HomeWatch {
        #[cfg(target_os = "linux")]
        {
            let fd = linux::watch(home);
            HomeWatch {
                blind: AtomicBool::new(fd.is_none()),
                fd,
                turn: Mutex::new(1),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = home;
            HomeWatch {
                turn: Mutex::new(1),
                blind: AtomicBool::new(true),
            }
        }
    }

    /// A number that moves whenever a watched file may have changed since the
    /// previous call (and at every call without a usable watch). A check that
    /// last ran at this number can skip its `stat`s.
    pub(crate) fn generation(&self) -> u64 {
        let mut turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        if self.blind.load(Ordering::Relaxed) || self.drain() {
            *turn += 1;
        }
        *turn
    }

    /// Reads every queued event; whether there was any. Marks the watch blind
    /// when it can no longer be trusted.
    #[cfg(target_os = "linux")]
    fn drain(&self) -> bool {
        let Some(fd) = &self.fd else {
            return true;
        };
        match linux::drain(fd) {
            linux::Drained::Nothing => false,
            linux::Drained::Changed => true,
            linux::Drained::Lost => {
                self.blind.store(true, Ordering::Relaxed);
                true
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn drain(&self) -> bool {
        true
    }
}

/// Remembers the generation at which a check last found everything as it was.
#[derive(Debug, Default)]
pub(crate) struct Seen(AtomicU64);

impl Seen {
    /// Whether the check can be skipped: nothing changed since it last passed.
    pub(crate) fn unchanged(&self, generation: u64) -> bool {
        self.0.load(Ordering::Acquire) == generation
    }

    /// The check passed having started at `generation` (a change during the
    /// check moved the generation on, so the next request checks again).
    pub(crate) fn passed(&self, generation: u64) {
        self.0.fetch_max(generation, Ordering::AcqRel);
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::mem::MaybeUninit;
    use std::os::fd::OwnedFd;

    use airlock_home::Home;
    use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
    use rustix::io::Errno;

    pub(super) enum Drained {
        Nothing,
        Changed,
        /// A watched directory went away, or events were lost.
        Lost,
    }

    /// What makes a watched directory untrustworthy from then on.
    const GONE: WatchFlags = WatchFlags::DELETE_SELF.union(WatchFlags::MOVE_SELF);

    pub(super) fn watch(home: &Home) -> Option<OwnedFd> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).ok()?;
        let entries = WatchFlags::CREATE
            .union(WatchFlags::DELETE)
            .union(WatchFlags::MOVED_FROM)
            .union(WatchFlags::MOVED_TO)
            .union(WatchFlags::ATTRIB)
            .union(GONE)
            .union(WatchFlags::DONT_FOLLOW);
        // The owner edits airlock.toml in place too; nothing in the top
        // directory is written per request.
        let top = entries
            .union(WatchFlags::MODIFY)
            .union(WatchFlags::CLOSE_WRITE);
        inotify::add_watch(&fd, home.root(), top).ok()?;
        inotify::add_watch(&fd, home.state_dir(), entries).ok()?;
        Some(fd)
    }

    pub(super) fn drain(fd: &OwnedFd) -> Drained {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(fd, &mut buf);
        let mut seen = Drained::Nothing;
        loop {
            match reader.next() {
                Ok(event) => {
                    let flags = event.events();
                    if flags.intersects(
                        ReadFlags::IGNORED
                            | ReadFlags::QUEUE_OVERFLOW
                            | ReadFlags::UNMOUNT
                            | ReadFlags::DELETE_SELF
                            | ReadFlags::MOVE_SELF,
                    ) {
                        return Drained::Lost;
                    }
                    seen = Drained::Changed;
                }
                Err(Errno::AGAIN) => return seen,
                Err(Errno::INTR) => {}
                Err(_) => return Drained::Lost,
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn home() -> (tempfile::TempDir, Home) {
        let (d, h) = crate::test_util::home();
        airlock_home::ensure_private_dir(&h.state_dir()).unwrap();
        (d, h)
    }

    #[test]
    fn every_way_the_owner_changes_a_file_moves_the_generation() {
        let (_d, h) = home();
        let w = HomeWatch::new(&h);
        assert!(
            !w.blind.load(Ordering::Relaxed),
            "inotify is expected on Linux"
        );
        let mut g = w.generation();
        let mut moved = |what: &str, w: &HomeWatch| {
            let now = w.generation();
            assert_ne!(now, g, "{what} was not seen");
            assert_eq!(w.generation(), now, "nothing else happened after {what}");
            g = now;
        };
        crate::state::engage_lock(&h).unwrap();
        moved("engaging the lock", &w);
        crate::state::release_lock(&h).unwrap();
        moved("releasing the lock", &w);
        airlock_home::write_atomic(&h.state_dir().join("revocations.json"), b"{}").unwrap();
        moved("replacing revocations.json", &w);
        std::fs::write(h.config_path(), "# edited in place\n").unwrap();
        moved("writing airlock.toml in place", &w);
        airlock_home::write_atomic(&h.vault_path(), b"{}").unwrap();
        moved("replacing vault.json", &w);
        // The anchor is overwritten in place on every request: not a change.
        let anchor = h.state_dir().join("audit-head");
        std::fs::write(&anchor, "x").unwrap();
        let g2 = w.generation();
        std::fs::write(&anchor, "y").unwrap();
        assert_eq!(w.generation(), g2);
    }

    #[test]
    fn a_removed_state_directory_makes_every_check_run() {
        let (_d, h) = home();
        let w = HomeWatch::new(&h);
        let _ = w.generation();
        std::fs::remove_dir_all(h.state_dir()).unwrap();
        let g = w.generation();
        // Blind from now on: it moves at every call.
        assert_ne!(w.generation(), g);
        assert_ne!(w.generation(), w.generation());
    }

    #[test]
    fn seen_skips_only_at_the_generation_it_passed() {
        let s = Seen::default();
        assert!(!s.unchanged(1));
        s.passed(1);
        assert!(s.unchanged(1));
        assert!(!s.unchanged(2));
        s.passed(3);
        s.passed(2);
        assert!(s.unchanged(3));
    }
}
