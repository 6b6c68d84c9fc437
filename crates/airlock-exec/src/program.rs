//! Allowed programs: resolved once, through the owner's `PATH`, to canonical paths.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::error::{NotExecutable, PolicyError};

/// Programs whose arguments get a built-in guard, or that are flagged when allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgramKind {
    /// `git`: global options, sub-commands and transport options are guarded.
    Git,
    /// `gh`: `alias`/`extension` refused; git options after `--` guarded.
    Gh,
    /// `npm`: `exec`/`x`/`explore`/`init <pkg>`/`--call`/`--script-shell` refused.
    Npm,
    /// `env`: may print the environment, may not run a program.
    Env,
    /// `find`: `-exec`, `-execdir`, `-ok`, `-okdir`, `-fprint*`, `-fls` refused.
    Find,
    /// A shell, interpreter or pure trampoline (`sh`, `python`, `xargs`, `sudo`…):
    /// not guarded, since allowing it allows everything; [`ExecPolicy::warnings`]
    /// says so.
    ///
    /// [`ExecPolicy::warnings`]: crate::ExecPolicy::warnings
    Runner,
    /// Anything else: only the capability's `deny_args` apply.
    Other,
}

/// Programs that run whatever they are told to (flagged at load time).
const RUNNERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh", "ash", "busybox", "xargs",
    "sudo", "doas", "su", "runuser", "nohup", "timeout", "nice", "ionice", "setsid", "stdbuf",
    "chroot", "unshare", "nsenter", "taskset", "strace", "ltrace", "gdb", "watch", "flock",
    "script", "time", "parallel", "python", "python3", "python2", "perl", "ruby", "node", "nodejs",
    "deno", "bun", "php", "lua", "tclsh", "awk", "gawk", "mawk", "nawk", "npx", "pnpx", "bunx",
    "uvx", "pipx", "make", "ssh", "docker", "podman", "kubectl",
];

impl ProgramKind {
    /// The kind for a file name (`git`, `python3.12` → runner…).
    pub fn of(name: &str) -> ProgramKind {
        match name {
            "git" => ProgramKind::Git,
            "gh" => ProgramKind::Gh,
            "npm" => ProgramKind::Npm,
            "env" => ProgramKind::Env,
            "find" => ProgramKind::Find,
            n if RUNNERS.contains(&n) => ProgramKind::Runner,
            // python3.12, perl5.36, node18…
            n if ["python", "perl", "ruby", "node", "php", "lua"]
                .iter()
                .any(|p| {
                    n.strip_prefix(p)
                        .is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
                }) =>
            {
                ProgramKind::Runner
            }
            _ => ProgramKind::Other,
        }
    }
}

/// One entry of a capability's `commands`, resolved when the capability loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedProgram {
    /// The bare name the agent may use (the file name of the entry as written).
    /// Also the child's `argv[0]`, so multi-call binaries (busybox, git) behave as
    /// the name the owner allowed.
    pub name: String,
    /// Where it was found (owner's `PATH` entry joined with the name, or the
    /// absolute path as written).
    pub found: PathBuf,
    /// `found` with every symlink resolved: what is executed.
    pub canonical: PathBuf,
    /// Which guard applies.
    pub kind: ProgramKind,
}

impl AllowedProgram {
    /// Resolves one `commands` entry: a bare name through `owner_path` (absolute
    /// entries only; empty and relative entries such as `.` are skipped), or an
    /// absolute path as written. Relative paths are refused.
    pub fn resolve(
        capability: &str,
        command: &str,
        owner_path: &OsStr,
    ) -> Result<AllowedProgram, PolicyError> {
        let found = if command.starts_with('/') {
            PathBuf::from(command)
        } else if command.contains('/') || command == "." || command == ".." {
            return Err(PolicyError::RelativeCommand {
                capability: capability.to_string(),
                command: command.to_string(),
            });
        } else {
            find_program(command, owner_path).ok_or_else(|| PolicyError::CommandNotFound {
                capability: capability.to_string(),
                command: command.to_string(),
            })?
        };
        let not_exec = |path: &Path, reason: NotExecutable| PolicyError::NotExecutable {
            capability: capability.to_string(),
            command: command.to_string(),
            path: path.to_path_buf(),
            reason,
        };
        let canonical = found
            .canonicalize()
            .map_err(|e| not_exec(&found, e.into()))?;
        is_executable_file(&canonical).map_err(|r| not_exec(&canonical, r))?;
        let name = found
            .file_name()
            .and_then(OsStr::to_str)
            .unwrap_or(command)
            .to_string();
        let mut kind = ProgramKind::of(&name);
        if kind == ProgramKind::Other
            && let Some(real) = canonical.file_name().and_then(OsStr::to_str)
        {
            kind = ProgramKind::of(real);
        }
        Ok(AllowedProgram {
            name,
            found,
            canonical,
            kind,
        })
    }

    /// The directory the program was found in (joined into the child's `PATH`, so
    /// e.g. `gh` finds the `git` next to it).
    pub fn dir(&self) -> Option<&Path> {
        self.found.parent()
    }
}

/// The first executable regular file called `name` in the absolute entries of
/// `path` (a `PATH`-style list). Relative and empty entries are skipped: they
/// would resolve through the current directory. Returns the path as found (not
/// canonicalized).
pub fn find_program(name: &str, path: &OsStr) -> Option<PathBuf> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable_file(candidate).is_ok())
}

fn is_executable_file(path: &Path) -> Result<(), NotExecutable> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(NotExecutable::NotAFile);
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(NotExecutable::NoExecuteBit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file `name` holding `text` with permission bits `mode` in a new
    /// temporary directory (kept alive by the returned guard).
    fn file_in_tempdir(name: &str, text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        (dir, path)
    }

    #[test]
    fn kinds() {
        assert_eq!(ProgramKind::of("git"), ProgramKind::Git);
        assert_eq!(ProgramKind::of("python3.12"), ProgramKind::Runner);
        assert_eq!(ProgramKind::of("sh"), ProgramKind::Runner);
        assert_eq!(ProgramKind::of("pythonista"), ProgramKind::Other);
        assert_eq!(ProgramKind::of("ls"), ProgramKind::Other);
    }

    #[test]
    fn relative_path_entries_are_skipped() {
        let (dir, prog) = file_in_tempdir("tool", "#!/bin/sh\n", 0o755);
        let rel = OsStr::new(".:bin:");
        assert_eq!(find_program("tool", rel), None);
        let abs = std::env::join_paths([dir.path()]).unwrap();
        assert_eq!(find_program("tool", &abs), Some(prog));
        assert_eq!(find_program("./tool", &abs), None);
    }

    #[test]
    fn absolute_paths_that_cannot_run_say_why() {
        let (dir, data) = file_in_tempdir("data", "x", 0o644);
        let cmd = data.to_str().unwrap();
        let e = AllowedProgram::resolve("tools", cmd, OsStr::new("")).unwrap_err();
        assert!(
            matches!(
                e,
                PolicyError::NotExecutable {
                    reason: NotExecutable::NoExecuteBit,
                    ..
                }
            ),
            "{e:?}"
        );
        let canonical = data.canonicalize().unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "capability \"tools\": command \"{cmd}\" ({}) is not an executable file: not executable",
                canonical.display()
            )
        );
        let dir_cmd = dir.path().to_str().unwrap();
        let e = AllowedProgram::resolve("tools", dir_cmd, OsStr::new("")).unwrap_err();
        assert!(e.to_string().ends_with(": not a regular file"), "{e}");
        let missing = dir.path().join("missing");
        let e = AllowedProgram::resolve("tools", missing.to_str().unwrap(), OsStr::new(""))
            .unwrap_err();
        assert!(
            matches!(
                &e,
                PolicyError::NotExecutable {
                    reason: NotExecutable::Io(io),
                    ..
                } if io.kind() == std::io::ErrorKind::NotFound
            ),
            "{e:?}"
        );
    }
}
