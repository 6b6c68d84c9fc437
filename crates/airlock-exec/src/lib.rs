//! airlock's exec mode: run allow-listed programs with a secret in their
//! environment only, and scrub what they print (DESIGN.md §4 `mode = "exec"`, §5
//! the `exec` tool, §7 invariants 4 and 10). The threat model is in `docs/exec.md`.
//!
//! # Three callers, two layers
//!
//! **Policy** ([`ExecPolicy`]) is for the MCP `exec` tool, where the *agent* picks
//! the command. It is compiled once from a capability when the configuration loads:
//! `commands` are resolved to canonical absolute paths through the *owner's* `PATH`,
//! `workdirs` canonicalized, `env` templates checked. Per request,
//! [`ExecPolicy::check`] resolves the agent's `command[0]` through that allow-list
//! only (never the agent's cwd or `PATH`), applies the argument guards for programs
//! known to run other programs ([`guard`]) and the capability's `deny_args`, and
//! checks the cwd against `workdirs`; [`ExecPolicy::prepare`] then builds the
//! [`Launch`]: a minimal environment, a private `HOME`, the git askpass helper.
//!
//! **Launch** ([`Launch`] → [`Running`]) is for everyone, including `airlock run`
//! and `airlock wrap`, where the *owner* picks the command: spawn without a shell,
//! with exactly the environment given, in its own process group, with a timeout that
//! kills the whole group and output caps; stdout and stderr pass through the
//! engine's [`StreamScrubber`](airlock_engine::scrub::StreamScrubber) as they
//! arrive. Collect with [`Running::output`] (buffered, for the MCP tool) or forward
//! with [`Running::stream`] (for `run`, keeping ANSI colours).
//!
//! **References** ([`reference`](mod@reference)): `airlock://NAME` in `.env` files, in the current
//! environment and in `wrap --env VAR=airlock://NAME`, resolved through a lookup
//! closure so this crate does not depend on the vault.
//!
//! Everything here needs a Tokio runtime with IO and time enabled (child processes).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod confine;
mod error;
pub mod guard;
mod home;
mod launch;
mod policy;
mod program;
pub mod reference;

pub use confine::{Sandbox, Support};
pub use error::{ExecError, NotExecutable, PolicyError, Refusal};
pub use home::{GitCredential, PrivateHome};
pub use launch::{
    DEFAULT_MAX_OUTPUT, Exit, Launch, Limits, Output, Running, Signaller, Stdin, TRUNCATION_NOTE,
};
pub use policy::{
    BASE_ENV, DEFAULT_TIMEOUT, ExecPolicy, FORBIDDEN_ENV, GIT_CONFIG_OVERRIDES, Invocation,
    OwnerEnv, SAFE_PATH, expand_workdir,
};
pub use program::{AllowedProgram, ProgramKind, find_program};
pub use reference::{REFERENCE_PREFIX, ReferenceError, ResolvedEnv, SecretLookup};

/// Re-exported so callers name the same scrubber type.
pub use airlock_config::Network;
pub use airlock_engine::scrub::Scrubber;
