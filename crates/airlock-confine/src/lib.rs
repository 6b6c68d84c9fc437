//! The only unsafe code in airlock: the system calls that confine a child
//! between `fork` and `exec`.
//!
//! Everything that can be prepared in the parent is prepared there, with safe
//! code, by `airlock-exec`: the Landlock ruleset (a file descriptor holding every
//! rule) and the seccomp-BPF program (a `Vec`). What remains must run in the child
//! itself, after `fork` and before `execve`, because Landlock and seccomp restrict
//! the *calling* task and are inherited across `execve`:
//!
//! 1. add one rule for the child's own `/proc/self` (its pid is only known there),
//! 2. `prctl(PR_SET_NO_NEW_PRIVS)` (required by both, and stops set-uid gains),
//! 3. `landlock_restrict_self(ruleset)`,
//! 4. `seccomp(SECCOMP_SET_MODE_FILTER, program)`.
//!
//! Between `fork` and `exec` of a multi-threaded parent only async-signal-safe
//! work is allowed: no allocation, no locks. The hook below makes only raw system
//! calls on values captured before the fork, and reports failure through the
//! `errno` that std passes back to the parent's `spawn` (so a child that could not
//! be confined never runs: `spawn` fails).
#![cfg_attr(not(target_os = "linux"), forbid(unsafe_code))]

use std::fmt;

/// Why the kernel cannot confine programs.
#[derive(Debug)]
pub enum Unavailable {
    /// Not Linux: Landlock and seccomp are Linux interfaces.
    NotLinux,
    /// The kernel was built without Landlock (`ENOSYS`).
    NotImplemented,
    /// Landlock is built in but not enabled at boot (`EOPNOTSUPP`): add
    /// `landlock` to the `lsm=` kernel parameter.
    NotEnabled,
    /// Any other error of the probe.
    Other(std::io::Error),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NotLinux => f.write_str("this OS has no Landlock (Linux only)"),
            Unavailable::NotImplemented => {
                f.write_str("this kernel was built without Landlock (Linux 5.13+ with CONFIG_SECURITY_LANDLOCK)")
            }
            Unavailable::NotEnabled => f.write_str(
                "Landlock is not enabled on this kernel (add `landlock` to the `lsm=` boot parameter)",
            ),
            Unavailable::Other(e) => write!(f, "the Landlock probe failed: {e}"),
        }
    }
}

impl std::error::Error for Unavailable {}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsRawFd as _, OwnedFd};
    use std::os::unix::process::CommandExt as _;

    use super::Unavailable;

    /// `LANDLOCK_CREATE_RULESET_VERSION`.
    const CREATE_RULESET_VERSION: libc::c_uint = 1;
    /// `LANDLOCK_RULE_PATH_BENEATH`.
    const RULE_PATH_BENEATH: libc::c_int = 1;

    /// `struct landlock_path_beneath_attr` (packed in the kernel's UAPI).
    #[repr(C, packed)]
    struct PathBeneathAttr {
        allowed_access: u64,
        parent_fd: i32,
    }

    /// The Landlock ABI version the running kernel offers (1 = Linux 5.13 …).
    pub fn landlock_abi() -> Result<u32, Unavailable> {
        // SAFETY: landlock_create_ruleset(NULL, 0, VERSION) only returns a number;
        // the kernel reads no memory when attr is NULL and size is 0.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<libc::c_void>(),
                0usize,
                CREATE_RULESET_VERSION,
            )
        };
        if rc >= 1 {
            return Ok(u32::try_from(rc).unwrap_or(u32::MAX));
        }
        let err = std::io::Error::last_os_error();
        Err(match err.raw_os_error() {
            Some(libc::ENOSYS) => Unavailable::NotImplemented,
            Some(libc::EOPNOTSUPP) => Unavailable::NotEnabled,
            _ => Unavailable::Other(err),
        })
    }

    /// What the child applies to itself before `execve`.
    pub struct Hook {
        /// The Landlock ruleset, rules added (`landlock` crate,
        /// `RulesetCreated` → `Option<OwnedFd>`).
        pub ruleset: OwnedFd,
        /// Access rights granted beneath the child's own `/proc/self` (0 = none).
        pub proc_self_access: u64,
        /// The seccomp-BPF program (`seccompiler`), installed last.
        pub filter: seccompiler::BpfProgram,
    }

    /// Makes `cmd` confine its child with `hook` between `fork` and `exec`. If any
    /// step fails in the child, the child exits before `exec` and `spawn` returns
    /// that step's error: an unconfined child never runs.
    pub fn confine_on_exec(cmd: &mut std::process::Command, hook: Hook) {
        let Hook {
            ruleset,
            proc_self_access,
            filter,
        } = hook;
        let closure = move || -> std::io::Result<()> {
            let ruleset = ruleset.as_raw_fd();
            if proc_self_access != 0 {
                add_proc_self(ruleset, proc_self_access)?;
            }
            // SAFETY: prctl with integer arguments; no memory is passed.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: landlock_restrict_self takes an fd we own (kept alive by
            // this closure, which the Command owns until after the fork) and flags.
            let rc = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // seccompiler's apply_filter makes two system calls (prctl, seccomp)
            // on the prepared program: no allocation.
            seccompiler::apply_filter(&filter).map_err(|e| match e {
                seccompiler::Error::Prctl(e) | seccompiler::Error::Seccomp(e) => e,
                _ => std::io::Error::from_raw_os_error(libc::EINVAL),
            })?;
            Ok(())
        };
        // SAFETY: the closure runs in the forked child before exec. It only makes
        // raw system calls (open, landlock_add_rule, close, prctl,
        // landlock_restrict_self, seccomp) on values captured before the fork: it
        // allocates nothing, takes no lock and touches no shared state, so it is
        // async-signal-safe as `pre_exec` requires. Errors are built from errno
        // (`io::Error::last_os_error`, `from_raw_os_error`), which does not allocate.
        unsafe {
            cmd.pre_exec(closure);
        }
    }

    /// In the child: one rule granting `access` beneath its own `/proc/self`.
    fn add_proc_self(ruleset: libc::c_int, access: u64) -> std::io::Result<()> {
        // SAFETY: open with a NUL-terminated static path; returns a new fd or -1.
        let fd = unsafe {
            libc::open(
                c"/proc/self".as_ptr(),
                libc::O_PATH | libc::O_CLOEXEC | libc::O_DIRECTORY,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let attr = PathBeneathAttr {
            allowed_access: access,
            parent_fd: fd,
        };
        // SAFETY: the kernel reads the attribute struct through the pointer, which
        // lives on this stack frame for the duration of the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset,
                RULE_PATH_BENEATH,
                &attr as *const PathBeneathAttr,
                0u32,
            )
        };
        let err = std::io::Error::last_os_error();
        // SAFETY: closes the fd opened above, which nothing else refers to.
        unsafe { libc::close(fd) };
        if rc != 0 {
            return Err(err);
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
pub use linux::{Hook, confine_on_exec, landlock_abi};

/// The Landlock ABI version the running kernel offers.
#[cfg(not(target_os = "linux"))]
pub fn landlock_abi() -> Result<u32, Unavailable> {
    Err(Unavailable::NotLinux)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn probe_answers() {
        // Either a version or a reason: never a panic. On the CI kernel (6.x with
        // Landlock) it is a version.
        match super::landlock_abi() {
            Ok(v) => assert!(v >= 1),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}
