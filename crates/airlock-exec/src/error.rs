//! Error taxonomy: configuration problems ([`PolicyError`], the owner's to fix),
//! refused agent requests ([`Refusal`], the agent's), and failures while running
//! ([`ExecError`], internal or the program's). No message ever holds a secret value.

use std::path::PathBuf;

/// Why a path is not an executable regular file ([`PolicyError::NotExecutable`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotExecutable {
    /// It cannot be looked at (missing, a dangling link, no permission).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// It is a directory or a special file.
    #[error("not a regular file")]
    NotAFile,
    /// No execute permission bit is set.
    #[error("not executable")]
    NoExecuteBit,
}

/// A capability cannot be compiled into an [`ExecPolicy`](crate::ExecPolicy). The
/// owner's configuration is wrong; each message names the capability and the remedy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A `commands` entry is neither a bare name nor an absolute path.
    #[error(
        "capability \"{capability}\": command \"{command}\" is a relative path; write a bare name (looked up in your PATH when airlock loads) or an absolute path"
    )]
    RelativeCommand {
        /// The capability.
        capability: String,
        /// The entry as written.
        command: String,
    },
    /// A bare name was not found in the owner's `PATH`.
    #[error(
        "capability \"{capability}\": command \"{command}\" was not found in PATH; install it or write its absolute path in `commands`"
    )]
    CommandNotFound {
        /// The capability.
        capability: String,
        /// The entry as written.
        command: String,
    },
    /// An absolute path does not name an executable regular file.
    #[error(
        "capability \"{capability}\": command \"{command}\" ({}) is not an executable file: {reason}",
        path.display()
    )]
    NotExecutable {
        /// The capability.
        capability: String,
        /// The entry as written.
        command: String,
        /// The path looked at.
        path: PathBuf,
        /// Why it was rejected (in the message, so not a `source`).
        reason: NotExecutable,
    },
    /// A `workdirs` entry does not exist or is not a directory.
    #[error(
        "capability \"{capability}\": workdir \"{workdir}\" cannot be used: {reason}; create it or fix `workdirs`"
    )]
    Workdir {
        /// The capability.
        capability: String,
        /// The entry as written.
        workdir: String,
        /// Why.
        reason: String,
    },
    /// A `workdirs` entry (or a program's directory) would let a child reach the
    /// airlock home or the owner's home.
    #[error(
        "capability \"{capability}\": {what} \"{path}\" cannot be given to a confined program: {reason}"
    )]
    Reach {
        /// The capability.
        capability: String,
        /// `workdir` or `program directory`.
        what: &'static str,
        /// The entry as written (or resolved).
        path: String,
        /// Why.
        reason: String,
    },
    /// The kernel cannot confine programs and the capability did not opt out.
    #[error(
        "capability \"{capability}\" cannot run: {reason}; airlock never runs an agent's program unconfined silently — set `confine = false` on the capability to accept that (doctor and list will warn)"
    )]
    Unconfinable {
        /// The capability.
        capability: String,
        /// Why the kernel cannot confine (one line).
        reason: String,
    },
    /// `env` sets a variable airlock owns or one that loads code into the child.
    #[error(
        "capability \"{capability}\": env variable \"{key}\" is not allowed ({reason}); remove it from `env`"
    )]
    ForbiddenEnv {
        /// The capability.
        capability: String,
        /// The variable.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// `env` uses a `{{…}}` placeholder other than `{{secret}}`.
    #[error(
        "capability \"{capability}\": env variable \"{key}\" uses an unknown placeholder; only {{{{secret}}}} is supported"
    )]
    UnknownPlaceholder {
        /// The capability.
        capability: String,
        /// The variable.
        key: String,
    },
    /// The capability is not an exec capability.
    #[error("capability \"{capability}\" is not mode = \"exec\"")]
    NotExec {
        /// The capability.
        capability: String,
    },
}

/// The agent's request was refused. The message says which check refused it and is
/// meant to be returned to the agent as a tool error (and audited).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// `command` was empty.
    #[error("empty command: give the program and its arguments as an array")]
    EmptyCommand,
    /// `command[0]` is a relative path (`./x`, `../x`, `bin/x`).
    #[error("program \"{program}\" is a relative path; use one of the allowed names: {allowed}")]
    RelativeProgram {
        /// What the agent asked for.
        program: String,
        /// The allowed names, comma-separated.
        allowed: String,
    },
    /// `command[0]` is not on the capability's allow-list.
    #[error(
        "program \"{program}\" is not allowed by capability \"{capability}\"; allowed: {allowed}"
    )]
    ProgramNotAllowed {
        /// What the agent asked for.
        program: String,
        /// The capability.
        capability: String,
        /// The allowed names and paths, comma-separated.
        allowed: String,
    },
    /// An argument was refused by a built-in guard or by `deny_args`.
    #[error("argument \"{arg}\" to {program} is refused: {reason}")]
    Argument {
        /// The program's allowed name.
        program: String,
        /// The argument (escaped).
        arg: String,
        /// Which guard and why.
        reason: String,
    },
    /// A string contains a NUL byte.
    #[error("{what} contains a NUL byte")]
    Nul {
        /// Which input.
        what: &'static str,
    },
    /// The capability has no `workdirs`, so the agent may not choose a cwd.
    #[error(
        "capability \"{capability}\" has no `workdirs`: commands run in a fresh empty directory and `cwd` is refused"
    )]
    CwdNotAllowed {
        /// The capability.
        capability: String,
    },
    /// The cwd does not exist or is not a directory.
    #[error("cwd \"{cwd}\" cannot be used: {reason}")]
    CwdInvalid {
        /// The cwd as given (escaped).
        cwd: String,
        /// Why.
        reason: String,
    },
    /// The cwd (resolved) is outside every workdir.
    #[error("cwd \"{cwd}\" resolves to {resolved}, outside the capability's workdirs: {workdirs}")]
    CwdOutside {
        /// The cwd as given (escaped).
        cwd: String,
        /// Its canonical form.
        resolved: String,
        /// The workdirs, comma-separated.
        workdirs: String,
    },
}

/// Running a program failed (not a refusal). The source decides who is at fault:
/// the secret missing from the vault is the owner's; spawn or IO failures are
/// internal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The program could not be started.
    #[error("cannot start {}: {source}", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The private HOME or the askpass helper could not be created.
    #[error("cannot create the private HOME for the child: {0}")]
    Home(std::io::Error),
    /// Reading the child's output or writing ours failed.
    #[error("child output: {0}")]
    Io(std::io::Error),
    /// The redaction automaton could not be built.
    #[error(transparent)]
    Scrubber(#[from] airlock_engine::scrub::ScrubberError),
    /// A launch setting is invalid (a NUL in an environment variable, a bad name…).
    #[error("invalid launch setting: {0}")]
    Invalid(String),
    /// The child could not be confined, so it was not started.
    #[error("cannot confine the program: {0}")]
    Confine(String),
}

/// `s` with control characters escaped, cut to a readable length, for messages.
pub(crate) fn shown(s: &str) -> String {
    const MAX: usize = 200;
    let mut out: String = s.chars().take(MAX).flat_map(char::escape_debug).collect();
    if s.chars().count() > MAX {
        out.push('…');
    }
    out
}
