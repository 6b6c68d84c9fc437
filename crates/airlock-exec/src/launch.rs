//! Spawning and supervising a child: no shell, exactly the environment given, its
//! own process group, a timeout that kills the group, scrubbed and capped output.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use airlock_engine::scrub::{Scrubber, StreamScrubber};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use secrecy::{ExposeSecret as _, SecretSlice};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use zeroize::Zeroizing;

use crate::confine::Sandbox;
use crate::error::ExecError;
use crate::home::PrivateHome;

/// Default cap on each of stdout and stderr for buffered output (1 MiB).
pub const DEFAULT_MAX_OUTPUT: usize = 1 << 20;

/// Appended (on its own line) to a stream that was cut at its cap by
/// [`Output::to_json`].
pub const TRUNCATION_NOTE: &str = "[airlock: output truncated at the size limit]";

/// How long, after the program exits (or is killed), its pipes may stay open
/// before airlock stops reading them: a process that left the group (`setsid`)
/// and kept the pipe cannot hold the call forever.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What the child reads on stdin.
#[derive(Default)]
pub enum Stdin {
    /// `/dev/null` (the default).
    #[default]
    Null,
    /// These bytes, then end of file.
    Bytes(Vec<u8>),
    /// airlock's own stdin (for `airlock run`).
    Inherit,
    /// A pipe the caller writes to: take it with [`Running::take_stdin`] before
    /// finishing (for `airlock wrap`'s relay). Dropping it closes the child's stdin.
    Piped,
}

impl fmt::Debug for Stdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stdin::Null => f.write_str("Null"),
            Stdin::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Stdin::Inherit => f.write_str("Inherit"),
            Stdin::Piped => f.write_str("Piped"),
        }
    }
}

/// Caps on what is kept of the child's (scrubbed) output. Beyond a cap the rest
/// is read and dropped (the child is not blocked and not killed), and the
/// `*_truncated` flag is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of stdout kept; `None` = no cap.
    pub max_stdout: Option<usize>,
    /// Most bytes of stderr kept; `None` = no cap.
    pub max_stderr: Option<usize>,
}

impl Default for Limits {
    /// [`DEFAULT_MAX_OUTPUT`] each.
    fn default() -> Self {
        Limits {
            max_stdout: Some(DEFAULT_MAX_OUTPUT),
            max_stderr: Some(DEFAULT_MAX_OUTPUT),
        }
    }
}

impl Limits {
    /// No cap (streaming to a terminal).
    pub fn unlimited() -> Self {
        Limits {
            max_stdout: None,
            max_stderr: None,
        }
    }
}

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The exit status, if it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Whether airlock killed it at the timeout.
    pub timed_out: bool,
    /// Wall time from spawn to reaping.
    pub duration: Duration,
}

impl Exit {
    /// One number, shell style: the exit status, or 128 + the signal (137 for a
    /// kill at the timeout). What `airlock run` exits with and what the `exec` tool
    /// returns as `exit_code`.
    pub fn exit_code(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => 1,
        }
    }

    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Buffered result (the MCP `exec` tool): scrubbed stdout and stderr, capped.
#[derive(Clone, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub exit: Exit,
    /// Scrubbed stdout (at most the cap).
    pub stdout: Vec<u8>,
    /// Scrubbed stderr (at most the cap).
    pub stderr: Vec<u8>,
    /// stdout went over its cap.
    pub stdout_truncated: bool,
    /// stderr went over its cap.
    pub stderr_truncated: bool,
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Scrubbed, so printable; shown lossily for test failures.
        f.debug_struct("Output")
            .field("exit", &self.exit)
            .field("stdout", &String::from_utf8_lossy(&self.stdout))
            .field("stderr", &String::from_utf8_lossy(&self.stderr))
            .field("stdout_truncated", &self.stdout_truncated)
            .field("stderr_truncated", &self.stderr_truncated)
            .finish()
    }
}

impl Output {
    /// Whether either stream was cut.
    pub fn truncated(&self) -> bool {
        self.stdout_truncated || self.stderr_truncated
    }

    /// The `exec` tool's result: `{exit_code, stdout, stderr, truncated,
    /// timed_out}`. Output is decoded as UTF-8 (invalid bytes become U+FFFD); a
    /// cut stream ends with [`TRUNCATION_NOTE`] on its own line, so the agent is
    /// told, not just the flag.
    pub fn to_json(&self) -> serde_json::Value {
        let text = |bytes: &[u8], cut: bool| {
            let mut s = String::from_utf8_lossy(bytes).into_owned();
            if cut {
                if !s.is_empty() && !s.ends_with('\n') {
                    s.push('\n');
                }
                s.push_str(TRUNCATION_NOTE);
            }
            s
        };
        serde_json::json!({
            "exit_code": self.exit.exit_code(),
            "stdout": text(&self.stdout, self.stdout_truncated),
            "stderr": text(&self.stderr, self.stderr_truncated),
            "truncated": self.truncated(),
            "timed_out": self.exit.timed_out,
        })
    }
}

/// Everything needed to start a child. Built by
/// [`ExecPolicy::prepare`](crate::ExecPolicy::prepare) for the `exec` tool, or
/// directly by `airlock run` / `wrap` (the owner's command).
///
/// The child's environment is exactly what is added with [`Launch::env`] /
/// [`Launch::env_bytes`] / [`Launch::envs`]: airlock's own environment is never
/// passed on implicitly. The program is executed directly (never through a
/// shell); a bare name is resolved with [`find_program`](crate::find_program)
/// against the `PATH` *given to the child* (an absolute path is used as is).
pub struct Launch {
    program: PathBuf,
    arg0: Option<OsString>,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, Zeroizing<Vec<u8>>)>,
    secrets: Vec<(String, SecretSlice<u8>)>,
    stdin: Stdin,
    timeout: Option<Duration>,
    limits: Limits,
    own_group: bool,
    home: Option<PrivateHome>,
    sandbox: Option<Sandbox>,
}

impl fmt::Debug for Launch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Launch")
            .field("program", &self.program)
            .field("arg0", &self.arg0)
            .field("args", &self.args)
            .field("cwd", &self.cwd)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field(
                "secrets",
                &self.secrets.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("stdin", &self.stdin)
            .field("timeout", &self.timeout)
            .field("limits", &self.limits)
            .field("own_group", &self.own_group)
            .field("confined", &self.sandbox.is_some())
            .finish()
    }
}

impl Launch {
    /// A launch of `program` with no arguments, an empty environment, stdin from
    /// `/dev/null`, no timeout, no caps, in its own process group.
    pub fn new(program: impl Into<PathBuf>) -> Launch {
        Launch {
            program: program.into(),
            arg0: None,
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            secrets: Vec::new(),
            stdin: Stdin::Null,
            timeout: None,
            limits: Limits::unlimited(),
            own_group: true,
            home: None,
            sandbox: None,
        }
    }

    /// Sets the child's `argv[0]` (default: the program as given).
    pub fn arg0(mut self, arg0: impl Into<OsString>) -> Self {
        self.arg0 = Some(arg0.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets the working directory (default: airlock's).
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Adds (or replaces) one environment variable.
    pub fn env(self, key: impl Into<OsString>, value: impl AsRef<OsStr>) -> Self {
        let value = Zeroizing::new(value.as_ref().as_bytes().to_vec());
        self.env_bytes(key, value)
    }

    /// Adds (or replaces) one environment variable whose value may be secret.
    pub fn env_bytes(mut self, key: impl Into<OsString>, value: Zeroizing<Vec<u8>>) -> Self {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value));
        self
    }

    /// Adds every variable of a resolved environment (`airlock run --env-file`,
    /// `wrap --env`), and registers the secrets it used for scrubbing.
    pub fn envs(mut self, resolved: crate::reference::ResolvedEnv) -> Self {
        let (vars, secrets) = resolved.into_parts();
        for (k, v) in vars {
            self = self.env_bytes(k, v);
        }
        for (name, value) in secrets {
            self = self.scrub_secret(&name, value);
        }
        self
    }

    /// Registers a secret the child holds, so its output is scrubbed of it (on top
    /// of the scrubber given to [`Launch::spawn`]).
    pub fn scrub_secret(mut self, name: &str, value: SecretSlice<u8>) -> Self {
        self.secrets.push((name.to_string(), value));
        self
    }

    /// Sets stdin.
    pub fn stdin(mut self, stdin: Stdin) -> Self {
        self.stdin = stdin;
        self
    }

    /// Sets the timeout (`None` = none). At the timeout the whole process group
    /// gets `SIGKILL`.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the output caps.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether the child leads its own process group (default `true`): then the
    /// timeout, [`Signaller::signal`] and the clean-up after exit reach every
    /// process it started. `airlock run` attached to a terminal may want `false`,
    /// so the child stays in the terminal's foreground group (it can read the
    /// terminal, and Ctrl-C reaches it directly); then only the child itself is
    /// signalled and nothing is cleaned up after it.
    pub fn own_process_group(mut self, own: bool) -> Self {
        self.own_group = own;
        self
    }

    /// Gives the launch a private home to delete once the child is reaped.
    pub fn private_home(mut self, home: PrivateHome) -> Self {
        self.home = Some(home);
        self
    }

    /// Runs the child in `sandbox` (Landlock + seccomp, applied between fork and
    /// exec); the private HOME, if any, is writable too. If the sandbox cannot be
    /// applied, [`Launch::spawn`] fails and nothing runs.
    pub fn confine(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = Some(sandbox);
        self
    }

    /// Lets a confined child reach the egress proxy on loopback `port` (TCP
    /// connections to that port only, unless its network is `direct`) and
    /// read `dir` (the proxy's CA files). No effect on an unconfined child.
    pub fn via_proxy(mut self, port: u16, dir: &std::path::Path) -> Result<Self, ExecError> {
        if let Some(sandbox) = &mut self.sandbox {
            sandbox.allow_proxy(port);
            sandbox
                .allow_read_exec(dir)
                .map_err(|e| ExecError::Confine(format!("the egress proxy's CA directory: {e}")))?;
        }
        Ok(self)
    }

    /// Whether the child will be confined.
    pub fn is_confined(&self) -> bool {
        self.sandbox.is_some()
    }

    /// The program that will be executed.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The names of the environment variables the child will get.
    pub fn env_keys(&self) -> impl Iterator<Item = &OsStr> {
        self.env.iter().map(|(k, _)| k.as_os_str())
    }

    /// Starts the child. `scrubber` is what the caller already redacts (the whole
    /// vault is the safest choice); the secrets registered on this launch are added.
    /// Must be called inside a Tokio runtime.
    pub fn spawn(self, scrubber: &Scrubber) -> Result<Running, ExecError> {
        let scrubber = scrubber.with_secrets(
            self.secrets
                .iter()
                .map(|(n, v)| (n.as_str(), v.expose_secret())),
        )?;
        let program = if self.program.as_os_str().as_bytes().contains(&b'/') {
            self.program.clone()
        } else {
            let path = self
                .env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| OsStr::from_bytes(v).to_os_string())
                .unwrap_or_default();
            let name = self.program.to_str().unwrap_or_default();
            crate::find_program(name, &path).ok_or_else(|| ExecError::Spawn {
                program: self.program.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not found in the child's PATH",
                ),
            })?
        };
        let mut cmd = tokio::process::Command::new(&program);
        cmd.arg0(self.arg0.as_deref().unwrap_or(self.program.as_os_str()));
        cmd.args(&self.args);
        cmd.env_clear();
        for (k, v) in &self.env {
            if k.is_empty() || k.as_bytes().contains(&b'=') || v.contains(&0) {
                return Err(ExecError::Invalid(format!(
                    "environment variable {:?} has an invalid name or a NUL in its value",
                    k
                )));
            }
            cmd.env(k, OsStr::from_bytes(v));
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd.stdin(match self.stdin {
            Stdin::Null => Stdio::null(),
            Stdin::Bytes(_) | Stdin::Piped => Stdio::piped(),
            Stdin::Inherit => Stdio::inherit(),
        });
        cmd.stdout(Stdio::piped());
        cmd.stderr(Stdio::piped());
        if self.own_group {
            cmd.process_group(0);
        }
        cmd.kill_on_drop(true);
        if let Some(sandbox) = &self.sandbox {
            let hook = sandbox.hook(self.home.as_ref().map(PrivateHome::path))?;
            airlock_confine::confine_on_exec(cmd.as_std_mut(), hook);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|source| ExecError::Spawn {
            program: program.clone(),
            source,
        })?;
        let raw = child.id().and_then(|id| i32::try_from(id).ok());
        let pid = raw
            .and_then(Pid::from_raw)
            .ok_or_else(|| ExecError::Io(std::io::Error::other("the child has no process id")))?;
        let stdin_task = match self.stdin {
            Stdin::Bytes(bytes) => child.stdin.take().map(|mut pipe| {
                tokio::spawn(async move {
                    // A child that does not read its stdin closes the pipe: not an
                    // error.
                    let _ = pipe.write_all(&bytes).await;
                    let _ = pipe.shutdown().await;
                })
            }),
            _ => None,
        };
        let (stdout, stderr) = match (child.stdout.take(), child.stderr.take()) {
            (Some(o), Some(e)) => (o, e),
            _ => return Err(ExecError::Io(std::io::Error::other("child pipes missing"))),
        };
        let guard = Arc::new(GroupGuard {
            pid,
            own_group: self.own_group,
            exited: Mutex::new(false),
        });
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("airlock-exec-wait".into())
            .spawn(move || {
                wait_exited_nowait(pid);
                let _ = exit_tx.send(());
            })
            .map_err(ExecError::Io)?;
        Ok(Running {
            child,
            guard,
            stdout,
            stderr,
            stdin_task,
            exit_rx,
            scrubber,
            timeout: self.timeout,
            limits: self.limits,
            started,
            _home: self.home,
        })
    }
}

/// Blocks until `pid` has exited, without reaping it (`waitid(WEXITED|WNOWAIT)`):
/// while it is an unreaped zombie its pid, and so its process-group id, cannot be
/// reused, so killing the group afterwards cannot hit a stranger.
fn wait_exited_nowait(pid: Pid) {
    loop {
        match rustix::process::waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            _ => return,
        }
    }
}

/// Signals the child (or its group) for as long as it has not been reaped.
#[derive(Debug)]
struct GroupGuard {
    pid: Pid,
    own_group: bool,
    /// Set once the leader has exited and the group has been cleaned up; after
    /// that nothing is signalled (the pid may be reaped and reused).
    exited: Mutex<bool>,
}

impl GroupGuard {
    fn kill_now(&self, signal: Signal) -> bool {
        let exited = self.exited.lock().unwrap_or_else(PoisonError::into_inner);
        if *exited {
            return false;
        }
        self.send(signal);
        true
    }

    fn send(&self, signal: Signal) {
        // ESRCH (nothing left) is fine.
        let _ = if self.own_group {
            rustix::process::kill_process_group(self.pid, signal)
        } else {
            rustix::process::kill_process(self.pid, signal)
        };
    }

    /// The leader has exited (not yet reaped): kill what is left of its group and
    /// stop signalling.
    fn leader_exited(&self) {
        let mut exited = self.exited.lock().unwrap_or_else(PoisonError::into_inner);
        if !*exited && self.own_group {
            let _ = rustix::process::kill_process_group(self.pid, Signal::KILL);
        }
        *exited = true;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // Dropped before the child was reaped (the caller's future was cancelled):
        // take the whole group down with it.
        let exited = self
            .exited
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if !*exited {
            self.send(Signal::KILL);
        }
    }
}

/// Sends signals to a running child (to its process group when it has one), e.g.
/// to forward `SIGINT`/`SIGTERM` in `airlock run`. Cheap to clone; does nothing
/// once the child has exited.
#[derive(Debug, Clone)]
pub struct Signaller {
    guard: Arc<GroupGuard>,
}

impl Signaller {
    /// Sends `signal` (a raw signal number such as `libc::SIGINT` = 2). Returns
    /// whether it was sent (false once the child has exited or for an unknown
    /// signal number).
    pub fn signal(&self, signal: i32) -> bool {
        match Signal::from_named_raw(signal) {
            Some(s) => self.guard.kill_now(s),
            None => false,
        }
    }

    /// `SIGKILL` to the child (its group).
    pub fn kill(&self) -> bool {
        self.guard.kill_now(Signal::KILL)
    }
}

/// A started child. Finish it with [`Running::output`] or [`Running::stream`];
/// dropping it kills the child's process group.
pub struct Running {
    child: tokio::process::Child,
    guard: Arc<GroupGuard>,
    stdout: tokio::process::ChildStdout,
    stderr: tokio::process::ChildStderr,
    stdin_task: Option<tokio::task::JoinHandle<()>>,
    exit_rx: tokio::sync::oneshot::Receiver<()>,
    scrubber: Scrubber,
    timeout: Option<Duration>,
    limits: Limits,
    started: Instant,
    _home: Option<PrivateHome>,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("pid", &self.guard.pid)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Where one stream's scrubbed bytes go.
trait Sink {
    async fn put(&mut self, bytes: &[u8]) -> std::io::Result<()>;
}

/// Keeps up to `cap` bytes.
struct Capped {
    buf: Vec<u8>,
    cap: Option<usize>,
    truncated: bool,
}

impl Sink for Capped {
    async fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        put_capped(&mut self.buf, self.cap, &mut self.truncated, bytes);
        Ok(())
    }
}

fn put_capped(buf: &mut Vec<u8>, cap: Option<usize>, truncated: &mut bool, bytes: &[u8]) {
    let room = cap.map_or(bytes.len(), |c| c.saturating_sub(buf.len()));
    if bytes.len() > room {
        *truncated = true;
    }
    buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// Writes through (flushing each chunk, so output appears as it is produced),
/// counting against the cap.
struct Forward<'a, W> {
    out: &'a mut W,
    cap: Option<usize>,
    written: usize,
    truncated: bool,
}

impl<W: AsyncWrite + Unpin> Sink for Forward<'_, W> {
    async fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let room = self
            .cap
            .map_or(bytes.len(), |c| c.saturating_sub(self.written));
        if bytes.len() > room {
            self.truncated = true;
        }
        let bytes = &bytes[..bytes.len().min(room)];
        if !bytes.is_empty() {
            self.out.write_all(bytes).await?;
            self.out.flush().await?;
            self.written += bytes.len();
        }
        Ok(())
    }
}

/// One pipe: read, scrub, hand on.
struct Pump<R> {
    pipe: R,
    scrub: StreamScrubber,
    open: bool,
    buf: Box<[u8]>,
}

impl<R: AsyncRead + Unpin> Pump<R> {
    fn new(pipe: R, scrubber: &Scrubber) -> Self {
        Pump {
            pipe,
            scrub: scrubber.stream(),
            open: true,
            buf: vec![0; 16 * 1024].into_boxed_slice(),
        }
    }
}

impl Running {
    /// The child's process id (also its process-group id when it leads one).
    pub fn pid(&self) -> i32 {
        self.guard.pid.as_raw_nonzero().get()
    }

    /// The child's stdin pipe when launched with [`Stdin::Piped`] (once).
    pub fn take_stdin(&mut self) -> Option<tokio::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// A handle to signal the child while it runs.
    pub fn signaller(&self) -> Signaller {
        Signaller {
            guard: Arc::clone(&self.guard),
        }
    }

    /// Waits for the child, collecting its scrubbed output up to the caps (the
    /// MCP `exec` tool).
    pub async fn output(self) -> Result<Output, ExecError> {
        let limits = self.limits;
        let mut out = Capped {
            buf: Vec::new(),
            cap: limits.max_stdout,
            truncated: false,
        };
        let mut err = Capped {
            buf: Vec::new(),
            cap: limits.max_stderr,
            truncated: false,
        };
        let exit = self.drive(&mut out, &mut err).await?;
        Ok(Output {
            exit,
            stdout: out.buf,
            stderr: err.buf,
            stdout_truncated: out.truncated,
            stderr_truncated: err.truncated,
        })
    }

    /// Waits for the child, forwarding its scrubbed output to `stdout` / `stderr`
    /// as it arrives (`airlock run`; bytes other than secrets, ANSI colour codes
    /// included, pass unchanged). Caps, if set, stop forwarding; the returned flags
    /// say whether they did.
    pub async fn stream<O, E>(
        self,
        stdout: &mut O,
        stderr: &mut E,
    ) -> Result<(Exit, bool, bool), ExecError>
    where
        O: AsyncWrite + Unpin,
        E: AsyncWrite + Unpin,
    {
        let limits = self.limits;
        let mut out = Forward {
            out: stdout,
            cap: limits.max_stdout,
            written: 0,
            truncated: false,
        };
        let mut err = Forward {
            out: stderr,
            cap: limits.max_stderr,
            written: 0,
            truncated: false,
        };
        let exit = self.drive(&mut out, &mut err).await?;
        Ok((exit, out.truncated, err.truncated))
    }

    async fn drive(mut self, out: &mut impl Sink, err: &mut impl Sink) -> Result<Exit, ExecError> {
        let mut o = Pump::new(&mut self.stdout, &self.scrubber);
        let mut e = Pump::new(&mut self.stderr, &self.scrubber);
        let far = Duration::from_secs(100 * 365 * 24 * 3600);
        let kill_at = tokio::time::Instant::now() + self.timeout.unwrap_or(far);
        let mut drain_until: Option<tokio::time::Instant> = None;
        let mut exited = false;
        let mut timed_out = false;
        loop {
            if exited && !o.open && !e.open {
                break;
            }
            let deadline = drain_until.unwrap_or(kill_at);
            tokio::select! {
                r = o.pipe.read(&mut o.buf), if o.open => match r {
                    Ok(n) if n > 0 => {
                        let clean = o.scrub.push(&o.buf[..n]);
                        out.put(&clean).await.map_err(ExecError::Io)?;
                    }
                    _ => o.open = false,
                },
                r = e.pipe.read(&mut e.buf), if e.open => match r {
                    Ok(n) if n > 0 => {
                        let clean = e.scrub.push(&e.buf[..n]);
                        err.put(&clean).await.map_err(ExecError::Io)?;
                    }
                    _ => e.open = false,
                },
                _ = &mut self.exit_rx, if !exited => {
                    exited = true;
                    self.guard.leader_exited();
                    drain_until = Some(tokio::time::Instant::now() + DRAIN_GRACE);
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if drain_until.is_some() {
                        // Exited, but something outside the group holds the pipes.
                        break;
                    }
                    timed_out = true;
                    self.guard.kill_now(Signal::KILL);
                    // The exit arrives through `exit_rx`; drain after that.
                    drain_until = Some(tokio::time::Instant::now() + DRAIN_GRACE * 2);
                }
            }
        }
        out.put(&o.scrub.finish()).await.map_err(ExecError::Io)?;
        err.put(&e.scrub.finish()).await.map_err(ExecError::Io)?;
        if !exited {
            // Gave up draining before the exit was seen (cannot normally happen):
            // make sure it is dead, then reap.
            self.guard.kill_now(Signal::KILL);
            let _ = (&mut self.exit_rx).await;
            self.guard.leader_exited();
        }
        let status = self.child.wait().await.map_err(ExecError::Io)?;
        if let Some(task) = self.stdin_task.take() {
            task.abort();
        }
        Ok(Exit {
            code: status.code(),
            signal: status.signal(),
            timed_out,
            duration: self.started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps() {
        let mut buf = Vec::new();
        let mut t = false;
        put_capped(&mut buf, Some(5), &mut t, b"abc");
        assert!(!t);
        put_capped(&mut buf, Some(5), &mut t, b"defg");
        assert!(t);
        assert_eq!(buf, b"abcde");
    }

    #[test]
    fn exit_codes() {
        let e = Exit {
            code: None,
            signal: Some(9),
            timed_out: true,
            duration: Duration::ZERO,
        };
        assert_eq!(e.exit_code(), 137);
    }
}
