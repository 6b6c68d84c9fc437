//! The airlock home directory: layout, private permissions, atomic writes and locks.
//!
//! Everything airlock keeps lives under one directory, `$AIRLOCK_HOME` (default
//! `~/.airlock`). This crate knows where each file goes, creates the directory
//! private (0700) and files private (0600), refuses to use secret-bearing files that
//! others can read, and provides the two primitives every writer relies on:
//!
//! * [`write_atomic`]: temp file in the same directory, fsync, rename, fsync the
//!   directory — a crash at any instant leaves either the old or the new file;
//! * [`Home::lock`]: an exclusive advisory lock on `.lock`, held across a whole
//!   read-modify-write so two processes never lose each other's writes.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Name of the environment variable that overrides the home directory.
pub const HOME_ENV: &str = "AIRLOCK_HOME";
/// How long a writer waits for another airlock process to release the lock, in
/// milliseconds (default 10 000). Mostly useful for scripts and tests.
pub const LOCK_TIMEOUT_ENV: &str = "AIRLOCK_LOCK_TIMEOUT_MS";

/// Errors about the home directory and its files. Each message names the path and
/// says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HomeError {
    /// Neither `AIRLOCK_HOME` nor `HOME` is set.
    #[error(
        "cannot find a home directory: set AIRLOCK_HOME (or HOME) to where airlock should keep its files"
    )]
    NoHome,
    /// A file or directory is more open than airlock allows.
    #[error(
        "{} is accessible by other users (mode {mode:04o}); run `chmod {want:o} {}` and retry",
        path.display(),
        path.display()
    )]
    Permissions {
        /// The offending path.
        path: PathBuf,
        /// Its current mode bits.
        mode: u32,
        /// The mode airlock expects.
        want: u32,
    },
    /// Another airlock process holds the lock for longer than the timeout.
    #[error(
        "the airlock home {} is locked by another airlock process (lock file {}); wait for it to finish and retry",
        home.display(),
        lock.display()
    )]
    Locked {
        /// The home directory.
        home: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// An I/O error on a named path.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What airlock was doing ("cannot read", "cannot create"…).
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error (part of the message, not a separate cause, so the
        /// CLI's one-line error does not repeat it).
        source: io::Error,
    },
}

impl HomeError {
    /// Wraps an I/O error with the action and path it concerns.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        HomeError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// The airlock home directory and the names of the files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The home named by `AIRLOCK_HOME`, or `~/.airlock`.
    pub fn from_env() -> Result<Home, HomeError> {
        if let Some(dir) = std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
            return Ok(Home::at(PathBuf::from(dir)));
        }
        let home = std::env::home_dir().ok_or(HomeError::NoHome)?;
        Ok(Home::at(home.join(".airlock")))
    }

    /// A home at an explicit path.
    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `airlock.toml`: configuration, never a secret value.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("airlock.toml")
    }
    /// `vault.json`: the encrypted secret store.
    pub fn vault_path(&self) -> PathBuf {
        self.root.join("vault.json")
    }
    /// `master.key`: 32 random bytes, key-file mode only.
    pub fn master_key_path(&self) -> PathBuf {
        self.root.join("master.key")
    }
    /// `audit/`: the audit log.
    pub fn audit_dir(&self) -> PathBuf {
        self.root.join("audit")
    }
    /// `state/`: sessions, revocations, hashed agent tokens.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }
    /// `.lock`: the advisory lock every writer holds.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join(".lock")
    }

    /// Creates the directory (mode 0700) if it does not exist, and checks that an
    /// existing one is private.
    pub fn ensure_dir(&self) -> Result<(), HomeError> {
        ensure_private_dir(&self.root)
    }

    /// Takes the exclusive writer lock, waiting up to `AIRLOCK_LOCK_TIMEOUT_MS`
    /// (default 10 s). The lock is released when the guard drops — also when the
    /// process dies, since it is an OS file lock.
    pub fn lock(&self) -> Result<HomeLock, HomeError> {
        let timeout = std::env::var(LOCK_TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Duration::from_secs(10), Duration::from_millis);
        self.lock_with_timeout(timeout)
    }

    /// [`Home::lock`] with an explicit timeout.
    pub fn lock_with_timeout(&self, timeout: Duration) -> Result<HomeLock, HomeError> {
        let path = self.lock_path();
        let file = open_private(
            &path,
            OpenOptions::new().create(true).truncate(false).write(true),
        )
        .map_err(|e| HomeError::io("cannot open the lock file", &path, e))?;
        let deadline = Instant::now() + timeout;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(HomeLock { _file: file }),
                Err(fs::TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return Err(HomeError::Locked {
                            home: self.root.clone(),
                            lock: path,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(HomeError::io("cannot lock", &path, e));
                }
            }
        }
    }
}

/// Whether `name` is acceptable as a secret, service, capability or agent name:
/// 1–64 of `A-Z a-z 0-9 _ . -`, starting with a letter or digit. Names appear in
/// URLs (`/<capability>/…`), in `airlock://NAME` references, in file names and in
/// AEAD associated data, so they are kept boring on purpose.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The one-line rule for names, for error messages.
pub const NAME_RULE: &str =
    "use 1-64 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit";

/// Holds the home's exclusive writer lock until dropped.
#[derive(Debug)]
pub struct HomeLock {
    _file: File,
}

#[cfg(unix)]
fn open_private(path: &Path, opts: &mut OpenOptions) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    opts.mode(0o600).open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path, opts: &mut OpenOptions) -> io::Result<File> {
    opts.open(path)
}

/// Creates `dir` with mode 0700 if missing; refuses an existing directory that
/// group or others can access.
pub fn ensure_private_dir(dir: &Path) -> Result<(), HomeError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => check_mode(dir, &meta, 0o700),
        Ok(_) => Err(HomeError::io(
            "expected a directory at",
            dir,
            io::Error::new(io::ErrorKind::AlreadyExists, "a file is in the way"),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder
                .create(dir)
                .map_err(|e| HomeError::io("cannot create", dir, e))
        }
        Err(e) => Err(HomeError::io("cannot read", dir, e)),
    }
}

/// Refuses a secret-bearing file that group or others can read or write.
pub fn check_private_file(path: &Path) -> Result<(), HomeError> {
    let meta = fs::metadata(path).map_err(|e| HomeError::io("cannot read", path, e))?;
    check_mode(path, &meta, 0o600)
}

#[cfg(unix)]
fn check_mode(path: &Path, meta: &fs::Metadata, want: u32) -> Result<(), HomeError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(HomeError::Permissions {
            path: path.to_path_buf(),
            mode,
            want,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _meta: &fs::Metadata, _want: u32) -> Result<(), HomeError> {
    Ok(())
}

/// Reads a file, mapping errors to [`HomeError::Io`] with the path.
pub fn read(path: &Path) -> Result<Vec<u8>, HomeError> {
    fs::read(path).map_err(|e| HomeError::io("cannot read", path, e))
}

/// Replaces `path` with `bytes` atomically and durably, creating it with mode 0600.
///
/// The data goes to a temporary file in the same directory, which is fsynced, then
/// renamed over `path`, then the directory is fsynced so the rename itself survives a
/// crash. Readers see either the old content or the new, never a mix. Callers that
/// read-modify-write must hold [`Home::lock`], which also makes the fixed temporary
/// name safe: a leftover from a killed writer is simply overwritten.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HomeError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| -> io::Result<()> {
        let mut file = open_private(
            &tmp,
            OpenOptions::new().create(true).write(true).truncate(true),
        )?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        HomeError::io("cannot write", path, e)
    })
}

/// Creates a new file with `bytes` (mode 0600), failing if it already exists.
/// Used for files that must never be overwritten, such as `master.key`.
pub fn create_new(path: &Path, bytes: &[u8]) -> Result<(), HomeError> {
    let result = (|| -> io::Result<()> {
        let mut file = open_private(path, OpenOptions::new().write(true).create_new(true))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    })();
    result.map_err(|e| HomeError::io("cannot create", path, e))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        check_private_file(&path).unwrap();
        assert!(!dir.path().join(".f.tmp").exists(), "temp file left behind");
    }

    #[cfg(unix)]
    #[test]
    fn loose_permissions_are_refused_with_remedy() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        fs::write(&path, b"x").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = check_private_file(&path).unwrap_err().to_string();
        assert!(err.contains("mode 0644"), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn create_new_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        create_new(&path, b"first").unwrap();
        assert!(create_new(&path, b"second").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"first");
    }

    #[test]
    fn second_lock_times_out_while_first_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("h"));
        home.ensure_dir().unwrap();
        let held = home.lock().unwrap();
        let err = home
            .lock_with_timeout(Duration::from_millis(50))
            .unwrap_err();
        assert!(matches!(err, HomeError::Locked { .. }), "{err}");
        drop(held);
        home.lock_with_timeout(Duration::from_millis(50)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn home_dir_is_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("a/b"));
        home.ensure_dir().unwrap();
        let mode = fs::metadata(home.root()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
