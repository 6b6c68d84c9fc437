//! A capability compiled for exec: the allow-list, workdirs, guards and environment.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use airlock_config::{Capability, Mode, Network, Service};
use secrecy::{ExposeSecret as _, SecretSlice};
use zeroize::Zeroizing;

use crate::confine::{Protected, Sandbox, Support};
use crate::error::{ExecError, PolicyError, Refusal, shown};
use crate::guard::{self, DenyArgs};
use crate::home::{GitCredential, PrivateHome};
use crate::launch::{Launch, Limits, Stdin};
use crate::program::{AllowedProgram, ProgramKind};

/// The fixed part of the child's `PATH`, after the directories the allowed
/// programs were found in.
pub const SAFE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// How long a command may run when the capability sets no `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The variables every exec child gets, besides the capability's `env`,
/// `GIT_ASKPASS` (always; empty without a token) and the `GIT_CONFIG_*` triplets
/// of [`GIT_CONFIG_OVERRIDES`]. Nothing is inherited from airlock's own
/// environment except the *values* of `LANG` and `TERM`.
pub const BASE_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "TERM",
    "PAGER",
    "GIT_PAGER",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "GIT_TERMINAL_PROMPT",
    "GIT_ASKPASS",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_GLOBAL",
    "GIT_ALLOW_PROTOCOL",
    "GIT_CONFIG_COUNT",
];

/// The transports git may use (`GIT_ALLOW_PROTOCOL`): when set, this list alone
/// decides, whatever any `protocol.*.allow` configuration says — a
/// repository's `.git/config` cannot allow `ext::` (runs a command), `file`
/// (local repositories outside the workdirs, their `uploadpack`) or `ssh` (the
/// owner's own keys from `~/.ssh`, not the capability's secret).
const GIT_ALLOWED_PROTOCOLS: &str = "https:http";

/// `diff.external` for every exec child: an agent-written `.git/config` may name
/// any program as `diff.external`, which `git diff`, `log -p` and `show` run, and
/// the command line cannot unset a key (an empty value makes git try to run ""
/// and fail). This overrides it with an ordinary unified diff of the two files
/// git hands over (`$1` path, `$2` old file, `$5` new file, `$8` new path of a
/// rename; only `$1` for an unmerged path). git runs the value through `sh -c`
/// with those as positional parameters, quoted here: a file name is never
/// code. `diff` exits 1 when the files differ, which git would take for a crash.
const DIFF_EXTERNAL: &str = concat!(
    r#"airlock_diff() { [ $# -ge 7 ] || { echo "* Unmerged path $1"; return 0; }; "#,
    r#"diff -u --label "a/$1" --label "b/${8:-$1}" -- "$2" "$5"; [ $? -le 1 ]; }; "#,
    "airlock_diff",
);

/// Git configuration given to every exec child through `GIT_CONFIG_COUNT` /
/// `GIT_CONFIG_KEY_n` / `GIT_CONFIG_VALUE_n`. Command-line configuration wins over
/// the repository's `.git/config`, which the agent may be able to write: these
/// neutralize the well-known keys that name a program to run, a file to read, or
/// a credential store. The `protocol.*` entries repeat `GIT_ALLOW_PROTOCOL`
/// (`https:http`, set in every child) for a git started without that variable (`protocol.file.allow = never` also
/// stops a local-path remote's `remote.<name>.uploadpack`; `git clone /local/dir`
/// is refused as a result). `safe.bareRepository = explicit`: git does not
/// enter a bare repository it finds (one committed inside a checkout, with its
/// own `config`) unless told to with `--bare`.
pub const GIT_CONFIG_OVERRIDES: &[(&str, &str)] = &[
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("diff.external", DIFF_EXTERNAL),
    ("commit.template", "/dev/null"),
    ("safe.bareRepository", "explicit"),
    ("core.sshCommand", "ssh"),
    ("core.pager", "cat"),
    ("core.editor", "true"),
    ("sequence.editor", "true"),
    ("credential.helper", ""),
    ("credential.useHttpPath", "false"),
    ("protocol.allow", "never"),
    ("protocol.https.allow", "always"),
    ("protocol.http.allow", "always"),
    ("protocol.ext.allow", "never"),
    ("protocol.file.allow", "never"),
    ("protocol.git.allow", "never"),
    ("protocol.ssh.allow", "never"),
    ("gpg.program", "gpg"),
    ("gpg.ssh.program", "ssh-keygen"),
    ("gpg.x509.program", "gpgsm"),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("log.showSignature", "false"),
];

/// Variables a capability's `env` may not set: airlock owns them, or they load
/// code into the child (dynamic loader, shell start-up files, interpreter hooks).
pub const FORBIDDEN_ENV: &[(&str, &str)] = &[
    ("PATH", "airlock sets PATH"),
    ("HOME", "airlock sets HOME to a private directory"),
    ("TMPDIR", "airlock sets TMPDIR inside the private HOME"),
    ("GIT_ASKPASS", "airlock provides the askpass helper"),
    ("SSH_ASKPASS", "it names a program to run"),
    (
        "GIT_CONFIG_COUNT",
        "airlock sets git configuration overrides",
    ),
    (
        "GIT_CONFIG_PARAMETERS",
        "it is command-line git configuration",
    ),
    ("GIT_CONFIG", "it replaces git configuration"),
    (
        "GIT_CONFIG_GLOBAL",
        "airlock sets git's global configuration to a file in the private HOME",
    ),
    (
        "GIT_CONFIG_NOSYSTEM",
        "airlock keeps the system's git configuration out",
    ),
    (
        "GIT_ALLOW_PROTOCOL",
        "airlock sets which transports git may use",
    ),
    ("GIT_CONFIG_SYSTEM", "it replaces git configuration"),
    ("GIT_EXEC_PATH", "it chooses where git finds programs"),
    ("GIT_SSH", "it names a program to run"),
    ("GIT_SSH_COMMAND", "it names a program to run"),
    ("GIT_PROXY_COMMAND", "it names a program to run"),
    ("GIT_EXTERNAL_DIFF", "it names a program to run"),
    ("GIT_EDITOR", "it names a program to run"),
    ("GIT_SEQUENCE_EDITOR", "it names a program to run"),
    ("GIT_PAGER", "it names a program to run"),
    ("PAGER", "it names a program to run"),
    ("EDITOR", "it names a program to run"),
    ("VISUAL", "it names a program to run"),
    ("BROWSER", "it names a program to run"),
    ("BASH_ENV", "the shell runs it at start-up"),
    ("ENV", "the shell runs it at start-up"),
    ("SHELLOPTS", "it changes shell start-up"),
    ("BASHOPTS", "it changes shell start-up"),
    ("PROMPT_COMMAND", "the shell runs it"),
    ("PS4", "the shell expands it"),
    ("IFS", "it changes how shells split words"),
    ("NODE_OPTIONS", "it loads code into node"),
    ("PYTHONSTARTUP", "it loads code into python"),
    ("PYTHONPATH", "it loads code into python"),
    ("PYTHONHOME", "it loads code into python"),
    ("PERL5OPT", "it loads code into perl"),
    ("PERL5LIB", "it loads code into perl"),
    ("RUBYOPT", "it loads code into ruby"),
    ("RUBYLIB", "it loads code into ruby"),
    ("JAVA_TOOL_OPTIONS", "it loads code into the JVM"),
    ("GCONV_PATH", "it loads code into libc"),
    ("HOSTALIASES", "it redirects host names"),
    ("LOCALDOMAIN", "it redirects host names"),
    ("RES_OPTIONS", "it changes name resolution"),
];

/// The placeholder for the capability's secret in `env` values.
const PLACEHOLDER: &str = "{{secret}}";

/// Why `env` may not set `key`, if it may not.
fn forbidden_env(key: &str) -> Option<&'static str> {
    if key.starts_with("LD_") {
        return Some("it makes the dynamic loader load code");
    }
    if key.starts_with("DYLD_") {
        return Some("it makes the dynamic loader load code");
    }
    if key.starts_with("GIT_CONFIG_KEY_") || key.starts_with("GIT_CONFIG_VALUE_") {
        return Some("airlock sets git configuration overrides");
    }
    if key.starts_with("BASH_FUNC_") {
        return Some("bash imports it as a function");
    }
    FORBIDDEN_ENV
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, why)| *why)
}

/// What the owner's environment contributes when a capability is compiled.
#[derive(Debug, Clone)]
pub struct OwnerEnv {
    /// The owner's `PATH`, searched for bare command names (absolute entries only).
    pub path: OsString,
    /// The owner's home, for `~/` in `workdirs`.
    pub home: Option<PathBuf>,
    /// `LANG` for the child (`C.UTF-8` when unset).
    pub lang: Option<OsString>,
    /// `TERM` for the child (`dumb` when unset: agents read plain text).
    pub term: Option<OsString>,
    /// Where private homes are created (the system temporary directory when
    /// `None`).
    pub temp_root: Option<PathBuf>,
    /// `$AIRLOCK_HOME`: no workdir or program directory may overlap it.
    pub airlock_home: Option<PathBuf>,
}

impl OwnerEnv {
    /// From airlock's own process environment: `PATH`, `HOME` and `LANG`. `TERM`
    /// is left unset (so `dumb`): the MCP tool returns text to an agent.
    pub fn from_process() -> OwnerEnv {
        OwnerEnv {
            path: std::env::var_os("PATH").unwrap_or_default(),
            home: std::env::var_os("HOME")
                .map(PathBuf::from)
                .or_else(std::env::home_dir),
            lang: std::env::var_os("LANG"),
            term: None,
            temp_root: None,
            airlock_home: airlock_home::Home::from_env()
                .ok()
                .map(|h| h.root().to_path_buf()),
        }
    }
}

/// A capability compiled for exec. Build once per configuration load with
/// [`ExecPolicy::new`]; cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct ExecPolicy {
    capability: String,
    secret_name: Option<String>,
    programs: Vec<AllowedProgram>,
    workdirs: Vec<PathBuf>,
    deny_args: DenyArgs,
    env: BTreeMap<String, String>,
    timeout: Duration,
    credential: Option<GitCredential>,
    path: OsString,
    lang: OsString,
    term: OsString,
    temp_root: Option<PathBuf>,
    warnings: Vec<String>,
    sandbox: Option<Sandbox>,
}

/// A request that passed every check: run it with [`ExecPolicy::prepare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The allowed program it resolved to.
    pub program: AllowedProgram,
    /// The arguments after `argv[0]`, as the agent gave them.
    pub args: Vec<String>,
    /// The canonical working directory, or `None` for the fresh private HOME.
    pub cwd: Option<PathBuf>,
}

impl ExecPolicy {
    /// Compiles `capability` (which must be `mode = "exec"`) of `service`.
    ///
    /// `commands` are resolved now, through `owner.path`, to canonical paths;
    /// `workdirs` are canonicalized (`~/` expands to `owner.home`); `env` keys are
    /// checked against [`FORBIDDEN_ENV`]. The service's first auth secret is the
    /// value of `{{secret}}`; when `env` puts it in `GH_TOKEN` or `GITHUB_TOKEN`,
    /// git gets it through the askpass helper for the service's origin (see
    /// [`GitCredential::for_service`]).
    pub fn new(
        capability: &Capability,
        service: &Service,
        owner: &OwnerEnv,
    ) -> Result<ExecPolicy, PolicyError> {
        if capability.mode != Mode::Exec {
            return Err(PolicyError::NotExec {
                capability: capability.name.clone(),
            });
        }
        let mut policy = ExecPolicy::from_parts(
            &capability.name,
            &capability.commands,
            &capability.workdirs,
            &capability.deny_args,
            &capability.env,
            owner,
        )?;
        if !capability.confine {
            policy = policy.unconfined();
        } else {
            policy = policy.with_network(capability.network);
            if let Support::Unavailable(reason) = Support::probe() {
                return Err(PolicyError::Unconfinable {
                    capability: capability.name.clone(),
                    reason,
                });
            }
        }
        policy.secret_name = service.auth.secrets().first().map(|s| s.to_string());
        if let Some(t) = capability.timeout {
            policy.timeout = t;
        }
        policy.credential = GitCredential::for_capability_env(&service.url, &policy.env);
        Ok(policy)
    }

    /// Compiles the exec parts of a capability without a [`Capability`] value
    /// (tests, tools). No secret name, no askpass, [`DEFAULT_TIMEOUT`]; confined
    /// with no network (see [`ExecPolicy::unconfined`], [`ExecPolicy::with_network`]).
    pub fn from_parts(
        capability: &str,
        commands: &[String],
        workdirs: &[String],
        deny_args: &[String],
        env: &BTreeMap<String, String>,
        owner: &OwnerEnv,
    ) -> Result<ExecPolicy, PolicyError> {
        let mut programs = Vec::new();
        let mut warnings = Vec::new();
        let mut protected = Protected::new(owner.airlock_home.as_deref(), owner.home.as_deref());
        if let Some(t) = &owner.temp_root {
            protected = protected.with_temp_root(t);
        }
        let mut sandbox = Sandbox::new(Network::None, protected.clone());
        for command in commands {
            let program = AllowedProgram::resolve(capability, command, &owner.path)?;
            if program.kind == ProgramKind::Runner {
                warnings.push(format!(
                    "capability \"{capability}\": `{}` runs whatever it is told to; allowing it lets the agent run any program with the secret",
                    program.name
                ));
            }
            sandbox
                .allow_program(&program.found)
                .map_err(|e| PolicyError::Reach {
                    capability: capability.to_string(),
                    what: "program",
                    path: program.found.display().to_string(),
                    reason: e.to_string(),
                })?;
            if !programs
                .iter()
                .any(|p: &AllowedProgram| p.name == program.name)
            {
                programs.push(program);
            }
        }
        let mut dirs = Vec::new();
        for w in workdirs {
            let expanded = expand_workdir(w, owner.home.as_deref());
            let bad = |reason: String| PolicyError::Workdir {
                capability: capability.to_string(),
                workdir: w.clone(),
                reason,
            };
            if !expanded.is_absolute() {
                return Err(bad("not an absolute path".into()));
            }
            let canonical = expanded.canonicalize().map_err(|e| bad(e.to_string()))?;
            if !canonical.is_dir() {
                return Err(bad("not a directory".into()));
            }
            if canonical == Path::new("/") {
                warnings.push(format!(
                    "capability \"{capability}\": workdir \"/\" lets the agent run in any directory"
                ));
            }
            sandbox
                .allow_write(&canonical)
                .map_err(|e| PolicyError::Reach {
                    capability: capability.to_string(),
                    what: "workdir",
                    path: w.clone(),
                    reason: e.to_string(),
                })?;
            dirs.push(canonical);
        }
        for (key, value) in env {
            if let Some(reason) = forbidden_env(key) {
                return Err(PolicyError::ForbiddenEnv {
                    capability: capability.to_string(),
                    key: key.clone(),
                    reason,
                });
            }
            if value.replace(PLACEHOLDER, "").contains("{{") {
                return Err(PolicyError::UnknownPlaceholder {
                    capability: capability.to_string(),
                    key: key.clone(),
                });
            }
        }
        let mut path: Vec<PathBuf> = Vec::new();
        for dir in programs
            .iter()
            .filter_map(|p| p.dir().map(Path::to_path_buf))
            .chain(std::env::split_paths(SAFE_PATH))
        {
            if dir.is_absolute() && !path.contains(&dir) {
                path.push(dir);
            }
        }
        let path = std::env::join_paths(path).unwrap_or_else(|_| SAFE_PATH.into());
        Ok(ExecPolicy {
            capability: capability.to_string(),
            secret_name: None,
            programs,
            workdirs: dirs,
            deny_args: DenyArgs::new(deny_args.iter().cloned()),
            env: env.clone(),
            timeout: DEFAULT_TIMEOUT,
            credential: None,
            path,
            lang: owner.lang.clone().unwrap_or_else(|| "C.UTF-8".into()),
            term: owner.term.clone().unwrap_or_else(|| "dumb".into()),
            temp_root: owner.temp_root.clone(),
            warnings,
            sandbox: Some(sandbox),
        })
    }

    /// Runs children without the kernel sandbox (`confine = false`: the owner's
    /// explicit choice, which `doctor` and `list` report).
    pub fn unconfined(mut self) -> Self {
        self.sandbox = None;
        self
    }

    /// Sets what network a confined child may reach (default: none).
    pub fn with_network(mut self, network: Network) -> Self {
        if let Some(sb) = &mut self.sandbox {
            sb.set_network(network);
        }
        self
    }

    /// The sandbox children run in; `None` when unconfined.
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    /// Sets the timeout (replacing the capability's).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets or clears the git credential (replacing the one derived from the
    /// service).
    pub fn with_git_credential(mut self, credential: Option<GitCredential>) -> Self {
        self.credential = credential.filter(GitCredential::is_valid);
        self
    }

    /// The capability's name.
    pub fn capability(&self) -> &str {
        &self.capability
    }

    /// The vault secret that `{{secret}}` stands for (the service's auth secret).
    pub fn secret_name(&self) -> Option<&str> {
        self.secret_name.as_deref()
    }

    /// The allowed programs, resolved.
    pub fn programs(&self) -> &[AllowedProgram] {
        &self.programs
    }

    /// The canonical workdirs.
    pub fn workdirs(&self) -> &[PathBuf] {
        &self.workdirs
    }

    /// The timeout applied to each command.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The git credential the askpass helper serves, if any.
    pub fn git_credential(&self) -> Option<&GitCredential> {
        self.credential.as_ref()
    }

    /// Things the owner should know (`airlock doctor`, `list_services`): a shell or
    /// interpreter on the allow-list, a workdir of `/`.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn allowed_list(&self) -> String {
        self.programs
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks an agent's request: `command[0]` through the allow-list, the
    /// arguments through the guards and `deny_args`, `cwd` against `workdirs`.
    ///
    /// `command[0]` is either a bare name that an entry of `commands` was written
    /// as (or resolved to), or exactly the absolute path an entry was found at or
    /// canonicalizes to. It never goes through the agent's `PATH` or cwd: a
    /// relative path (`./git`, `bin/git`) is refused, and so is an absolute path not
    /// on the list — even a symlink to an allowed program.
    ///
    /// `cwd` must resolve (symlinks included) to a directory inside a workdir,
    /// compared by path components; a relative `cwd` is taken from the first
    /// workdir. With no `workdirs`, a `cwd` is refused and the command runs in its
    /// fresh private HOME.
    pub fn check(&self, command: &[String], cwd: Option<&str>) -> Result<Invocation, Refusal> {
        let Some((program, args)) = command.split_first() else {
            return Err(Refusal::EmptyCommand);
        };
        if command.iter().any(|a| a.contains('\0')) {
            return Err(Refusal::Nul { what: "command" });
        }
        let found = if program.contains('/') {
            if !program.starts_with('/') {
                return Err(Refusal::RelativeProgram {
                    program: shown(program),
                    allowed: self.allowed_list(),
                });
            }
            let p = Path::new(program);
            self.programs
                .iter()
                .find(|a| a.canonical == p || a.found == p)
        } else {
            self.programs.iter().find(|a| a.name == *program)
        };
        let Some(found) = found else {
            let mut allowed: Vec<String> = Vec::new();
            for p in &self.programs {
                allowed.push(p.name.clone());
                allowed.push(p.canonical.display().to_string());
            }
            return Err(Refusal::ProgramNotAllowed {
                program: shown(program),
                capability: self.capability.clone(),
                allowed: allowed.join(", "),
            });
        };
        guard::check(found.kind, &found.name, args)?;
        self.deny_args.check(&found.name, args)?;
        let cwd = match cwd {
            None => self.workdirs.first().cloned(),
            Some(c) => Some(self.check_cwd(c)?),
        };
        Ok(Invocation {
            program: found.clone(),
            args: args.to_vec(),
            cwd,
        })
    }

    fn check_cwd(&self, cwd: &str) -> Result<PathBuf, Refusal> {
        if cwd.contains('\0') {
            return Err(Refusal::Nul { what: "cwd" });
        }
        let Some(first) = self.workdirs.first() else {
            return Err(Refusal::CwdNotAllowed {
                capability: self.capability.clone(),
            });
        };
        let given = Path::new(cwd);
        let joined = if given.is_absolute() {
            given.to_path_buf()
        } else {
            first.join(given)
        };
        let invalid = |reason: String| Refusal::CwdInvalid {
            cwd: shown(cwd),
            reason,
        };
        let resolved = joined.canonicalize().map_err(|e| invalid(e.to_string()))?;
        if !resolved.is_dir() {
            return Err(invalid("not a directory".into()));
        }
        // canonicalize() leaves no `..`, but be explicit: component-wise prefix.
        let inside = !resolved.components().any(|c| c == Component::ParentDir)
            && self.workdirs.iter().any(|w| resolved.starts_with(w));
        if !inside {
            return Err(Refusal::CwdOutside {
                cwd: shown(cwd),
                resolved: resolved.display().to_string(),
                workdirs: self
                    .workdirs
                    .iter()
                    .map(|w| w.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(resolved)
    }

    /// Builds the launch for a checked invocation: a fresh private HOME, the
    /// minimal environment ([`BASE_ENV`], [`GIT_CONFIG_OVERRIDES`], the
    /// capability's `env` with `{{secret}}` replaced by `secret`), the askpass
    /// helper when the capability has a git credential, the timeout, and the
    /// default output caps. `secret` is also registered for scrubbing under
    /// [`ExecPolicy::secret_name`] (or the capability's name).
    pub fn prepare(
        &self,
        invocation: Invocation,
        secret: Option<&SecretSlice<u8>>,
        stdin: Stdin,
    ) -> Result<Launch, ExecError> {
        let home = PrivateHome::create(self.temp_root.as_deref()).map_err(ExecError::Home)?;
        let mut env: Vec<(OsString, Zeroizing<Vec<u8>>)> = Vec::new();
        let mut set = |k: &str, v: &[u8]| env.push((k.into(), Zeroizing::new(v.to_vec())));
        set("PATH", self.path.as_encoded_bytes());
        set("HOME", home.path().as_os_str().as_encoded_bytes());
        set("TMPDIR", home.tmp().as_os_str().as_encoded_bytes());
        set("LANG", self.lang.as_encoded_bytes());
        set("TERM", self.term.as_encoded_bytes());
        set("PAGER", b"cat");
        set("GIT_PAGER", b"cat");
        set("GIT_EDITOR", b"true");
        set("GIT_SEQUENCE_EDITOR", b"true");
        set("GIT_TERMINAL_PROMPT", b"0");
        set("GIT_CONFIG_NOSYSTEM", b"1");
        let git_config = home
            .write_git_config(&self.workdirs)
            .map_err(ExecError::Home)?;
        set(
            "GIT_CONFIG_GLOBAL",
            git_config.as_os_str().as_encoded_bytes(),
        );
        set("GIT_ALLOW_PROTOCOL", GIT_ALLOWED_PROTOCOLS.as_bytes());
        set(
            "GIT_CONFIG_COUNT",
            GIT_CONFIG_OVERRIDES.len().to_string().as_bytes(),
        );
        for (i, (k, v)) in GIT_CONFIG_OVERRIDES.iter().enumerate() {
            set(&format!("GIT_CONFIG_KEY_{i}"), k.as_bytes());
            set(&format!("GIT_CONFIG_VALUE_{i}"), v.as_bytes());
        }
        let askpass = match (&self.credential, secret) {
            (Some(cred), Some(_)) => home.write_askpass(cred).map_err(ExecError::Home)?,
            _ => PathBuf::new(),
        };
        set("GIT_ASKPASS", askpass.as_os_str().as_encoded_bytes());
        for (key, template) in &self.env {
            let value = expand(template, secret);
            set(key, &value);
        }
        let mut launch = Launch::new(&invocation.program.canonical)
            .arg0(OsStr::new(&invocation.program.name))
            .args(invocation.args.iter())
            .cwd(invocation.cwd.unwrap_or_else(|| home.path().to_path_buf()))
            .stdin(stdin)
            .timeout(Some(self.timeout))
            .limits(Limits::default());
        for (k, v) in env {
            launch = launch.env_bytes(k, v);
        }
        if let Some(secret) = secret {
            let name = self.secret_name.as_deref().unwrap_or(&self.capability);
            launch = launch.scrub_secret(name, secret.clone());
        }
        if let Some(sandbox) = &self.sandbox {
            launch = launch.confine(sandbox.clone());
        }
        Ok(launch.private_home(home))
    }
}

/// A `workdirs` entry as a path: `~` and `~/…` are the owner's home (`home`);
/// anything else as written. Shared by exec capabilities and `run --confine`.
pub fn expand_workdir(entry: &str, home: Option<&Path>) -> PathBuf {
    match (entry.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        (None, Some(home)) if entry == "~" => home.to_path_buf(),
        _ => PathBuf::from(entry),
    }
}

/// `template` with every `{{secret}}` replaced by the secret's bytes (by nothing
/// when there is no secret).
fn expand(template: &str, secret: Option<&SecretSlice<u8>>) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(template.len() + 64));
    let mut rest = template;
    while let Some(at) = rest.find(PLACEHOLDER) {
        out.extend_from_slice(&rest.as_bytes()[..at]);
        if let Some(s) = secret {
            out.extend_from_slice(s.expose_secret());
        }
        rest = &rest[at + PLACEHOLDER.len()..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_placeholder() {
        let s: SecretSlice<u8> = b"tok".to_vec().into();
        assert_eq!(
            expand("Bearer {{secret}}/{{secret}}", Some(&s)).as_slice(),
            b"Bearer tok/tok"
        );
        assert_eq!(expand("plain", Some(&s)).as_slice(), b"plain");
    }

    #[test]
    fn forbidden_keys() {
        for k in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "DYLD_INSERT_LIBRARIES",
            "BASH_ENV",
            "ENV",
            "PATH",
            "GIT_CONFIG_KEY_0",
        ] {
            assert!(forbidden_env(k).is_some(), "{k}");
        }
        for k in ["GH_TOKEN", "GIT_AUTHOR_NAME", "STRIPE_API_KEY"] {
            assert!(forbidden_env(k).is_none(), "{k}");
        }
    }
}
