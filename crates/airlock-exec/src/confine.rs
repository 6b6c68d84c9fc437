//! The kernel sandbox around every program airlock starts for an agent
//! (DESIGN.md §7 invariant 11; the full statement is docs/exec.md, *Confinement*).
//!
//! A [`Sandbox`] is compiled once per capability (or per `airlock run --confine`):
//! which directories the child may write (the workdirs), which it may only read
//! and execute (the system's read-only paths, the allowed programs' own
//! directories), and what network it may reach. At each spawn it becomes a
//! Landlock ruleset, plus the per-call private HOME, and a seccomp-BPF program;
//! `airlock-confine` applies both in the child between `fork` and `exec`.
//!
//! Landlock (best ABI the kernel offers, up to the last one vetted here, v7):
//! * files: read+write+execute beneath the writable directories; read+execute
//!   beneath `/usr`, `/bin`, `/sbin`, `/lib*`, the programs' directories; read of
//!   `/etc` entry by entry, secret-shaped ones left out ([`hidden_in_etc`]); a few
//!   device files; a handful of `/proc` and `/sys` files, and the child's own
//!   `/proc/self`. Nothing else: not `$AIRLOCK_HOME`, not the owner's home, not
//!   `/tmp`, not other users' files, not `/proc/<other pid>`.
//! * TCP (ABI ≥ 4): no `bind`, no `connect` — but to the egress proxy's port
//!   when the sandbox has one ([`Sandbox::allow_proxy`], `airlock run --confine
//!   --proxy`; refused on a kernel before ABI 4) — unless the capability says
//!   `network = "direct"`. Landlock matches the port, not the address.
//! * scopes (ABI ≥ 6): no signals to processes outside the sandbox, no abstract
//!   UNIX sockets created outside it.
//!
//! seccomp, only for holes Landlock leaves, each named:
//! * `socket()` — Landlock does not mediate UDP, raw or netlink sockets, nor
//!   `connect()` to a pathname UNIX socket (before ABI 9), and `control.sock`
//!   answers revocations. With `network = "none"` no socket can be created at
//!   all; with `"direct"`, only `AF_UNIX` is refused; with the egress proxy,
//!   only TCP sockets (`AF_INET`/`AF_INET6`, `SOCK_STREAM`, protocol TCP) can.
//! * `io_uring_setup` — io_uring creates sockets (`IORING_OP_SOCKET`) without the
//!   `socket()` system call the filter sees.
//! * `ioctl(TIOCSTI | TIOCLINUX)` — a terminal inherited from `airlock run` is
//!   an open descriptor Landlock never re-checks; TIOCSTI types into it.
//! * `truncate()` on kernels before Landlock ABI 3, which did not mediate it.

use std::collections::BTreeMap;
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};

use airlock_config::Network;
use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, Scope,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::ExecError;

/// The last Landlock ABI whose rights this code was written and tested against.
/// A newer kernel is used at this level (its extra rights stay unhandled).
const VETTED_ABI: ABI = ABI::V7;

/// System directories a child may read and execute from, where they exist.
pub const SYSTEM_READ_EXEC: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/nix/store",
];

/// Device files a child may read and write. `/dev/tty` is the child's own
/// controlling terminal, if any; `/dev/pts/*` (the owner's other terminals,
/// whose keystrokes could be read) is not granted: an inherited terminal needs
/// no open.
const DEVICES_RW: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"];
/// Device files a child may read.
const DEVICES_RO: &[&str] = &["/dev/random", "/dev/urandom"];
/// System-wide `/proc` and `/sys` files a child may read (CPU count, memory,
/// kernel version: what runtimes read at start-up). Its own `/proc/self` is
/// added in the child.
const PROC_SYS_RO: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/loadavg",
    "/proc/uptime",
    "/proc/version",
    "/proc/filesystems",
    "/sys/devices/system/cpu",
    "/sys/kernel/mm/transparent_hugepage",
];
/// `/etc` subdirectories looked into entry by entry (they mix public files and
/// keys); every other `/etc` entry is granted or hidden whole.
const ETC_DESCEND: &[&str] = &[
    "ssh",
    "ssl",
    "pki",
    "security",
    "ppp",
    "docker",
    "NetworkManager",
    "cups",
];

/// Whether an `/etc` entry (at any depth looked at) is secret-shaped and left out
/// of what a child may read: password hashes, sudo rules, host and TLS private
/// keys, Kerberos keytabs, VPN and Wi-Fi credentials.
pub fn hidden_in_etc(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    const WORDS: &[&str] = &[
        "shadow",
        "sudoers",
        "secret",
        "private",
        "keytab",
        "credential",
        "password",
        "opasswd",
        "wireguard",
        "letsencrypt",
        "openvpn",
        "ipsec",
        "sssd",
        "system-connections",
        "key.json",
    ];
    WORDS.iter().any(|w| n.contains(w))
        || n.ends_with("_key")
        || n.ends_with(".key")
        || n.ends_with("-key.pem")
        || n.ends_with("_key.pem")
}

/// What the kernel offers, for `doctor` and for refusing to run without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Landlock works; the ABI version the kernel offers.
    Landlock {
        /// The kernel's Landlock ABI (1 = Linux 5.13 … 7 = Linux 6.15).
        abi: u32,
    },
    /// No Landlock; why, in one line.
    Unavailable(String),
}

impl Support {
    /// Probes the running kernel.
    pub fn probe() -> Support {
        match airlock_confine::landlock_abi() {
            Ok(abi) => Support::Landlock { abi },
            Err(e) => Support::Unavailable(e.to_string()),
        }
    }

    /// What a confined child gets on this kernel, and what it misses, in one line
    /// each (for `doctor`).
    pub fn describe(&self) -> Vec<String> {
        let Support::Landlock { abi } = self else {
            return Vec::new();
        };
        let abi = *abi;
        let mut out = vec![format!(
            "Landlock ABI {abi}: files confined; seccomp: sockets, io_uring and terminal injection refused"
        )];
        if abi < 3 {
            out.push("ABI < 3: truncate(2) is refused by seccomp instead".into());
        }
        if abi < 4 {
            out.push("ABI < 4: TCP is confined by seccomp only (no socket at all with network = \"none\")".into());
        }
        if abi < 5 {
            out.push(
                "ABI < 5: ioctl on device files opened in the sandbox is not restricted".into(),
            );
        }
        if abi < 6 {
            out.push(
                "ABI < 6: a child can signal other processes of the same user (upgrade to Linux 6.12+)"
                    .into(),
            );
        }
        out
    }
}

/// Why a directory may not be made writable (or readable) for a child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlap {
    /// It is `$AIRLOCK_HOME`, inside it, or contains it.
    AirlockHome(PathBuf),
    /// It is the owner's home directory or contains it.
    OwnerHome(PathBuf),
    /// It contains the directory where each call's private HOME is made.
    TempRoot(PathBuf),
}

impl std::fmt::Display for Overlap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Overlap::AirlockHome(h) => write!(
                f,
                "it overlaps the airlock home {} (the key, vault, config and state), which nothing an agent runs may reach; choose a project directory outside it",
                h.display()
            ),
            Overlap::TempRoot(t) => write!(
                f,
                "it contains {}, where airlock makes each call's private HOME, so other calls' homes would be writable; choose a directory below it",
                t.display()
            ),
            Overlap::OwnerHome(h) => write!(
                f,
                "it contains your home directory {} (your keys, shell and tool configuration); choose a project directory inside it instead",
                h.display()
            ),
        }
    }
}

/// Places a child must never reach: checked against every directory a sandbox
/// grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protected {
    /// `$AIRLOCK_HOME`, canonical when it exists.
    pub airlock_home: Option<PathBuf>,
    /// The owner's home directory, canonical when it exists.
    pub owner_home: Option<PathBuf>,
    /// Where private HOMEs are made (the system temporary directory by default):
    /// no writable directory may contain it.
    pub temp_root: Option<PathBuf>,
}

impl Protected {
    /// From the given paths (canonicalized when they exist).
    pub fn new(airlock_home: Option<&Path>, owner_home: Option<&Path>) -> Protected {
        let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        Protected {
            airlock_home: airlock_home.map(canon),
            owner_home: owner_home.map(canon),
            temp_root: Some(canon(&std::env::temp_dir())),
        }
    }

    /// Sets where private HOMEs are made (canonicalized when it exists).
    pub fn with_temp_root(mut self, dir: &Path) -> Protected {
        self.temp_root = Some(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()));
        self
    }

    /// Whether `dir` (canonical) may be made writable for a child: neither
    /// [`Protected::check_readable`] objects, nor does it contain the temp root.
    pub fn check(&self, dir: &Path) -> Result<(), Overlap> {
        self.check_readable(dir)?;
        if let Some(t) = &self.temp_root
            && t.starts_with(dir)
        {
            return Err(Overlap::TempRoot(t.clone()));
        }
        Ok(())
    }

    /// Whether `dir` (canonical) may be made readable for a child: it does not
    /// overlap the airlock home and does not contain the owner's home.
    pub fn check_readable(&self, dir: &Path) -> Result<(), Overlap> {
        if let Some(h) = &self.airlock_home
            && (dir.starts_with(h) || h.starts_with(dir))
        {
            return Err(Overlap::AirlockHome(h.clone()));
        }
        if let Some(h) = &self.owner_home
            && h.starts_with(dir)
        {
            return Err(Overlap::OwnerHome(h.clone()));
        }
        Ok(())
    }
}

/// A compiled sandbox: what a child may write, read and execute, and reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    writable: Vec<PathBuf>,
    read_exec: Vec<PathBuf>,
    network: Network,
    protected: Protected,
    proxy_port: Option<u16>,
}

/// The first Landlock ABI that can limit TCP connections (Linux 6.7).
const MIN_TCP_ABI: u32 = 4;

impl Sandbox {
    /// A sandbox with the system's read-only paths and nothing writable.
    pub fn new(network: Network, protected: Protected) -> Sandbox {
        Sandbox {
            writable: Vec::new(),
            read_exec: Vec::new(),
            network,
            protected,
            proxy_port: None,
        }
    }

    /// Lets the child open TCP connections to `port` (the egress proxy's) and
    /// nowhere else, when its network is not `direct` (Landlock matches the
    /// port only: docs/exec.md says what that leaves).
    pub fn allow_proxy(&mut self, port: u16) {
        self.proxy_port = Some(port);
    }

    /// The egress proxy's port the child may connect to, if any (`None` too
    /// when the network is `direct`: then any port).
    pub fn proxy_port(&self) -> Option<u16> {
        self.proxy_port.filter(|_| self.network != Network::Direct)
    }

    /// Lets the child write (and read, and execute) beneath `dir` (canonical).
    pub fn allow_write(&mut self, dir: &Path) -> Result<(), Overlap> {
        self.protected.check(dir)?;
        if !self.writable.iter().any(|d| d == dir) {
            self.writable.push(dir.to_path_buf());
        }
        Ok(())
    }

    /// Lets the child read and execute beneath `dir` (an allowed program's own
    /// directory).
    pub fn allow_read_exec(&mut self, dir: &Path) -> Result<(), Overlap> {
        self.protected.check_readable(dir)?;
        if !self.read_exec.iter().any(|d| d == dir) {
            self.read_exec.push(dir.to_path_buf());
        }
        Ok(())
    }

    /// Lets the child read and run `program` (as found, e.g. a symlink in a
    /// `bin` directory): grants the directory it was found in and the one it
    /// really is in; for a program inside `node_modules`, its whole package.
    /// Directories under the system paths are granted anyway and skipped.
    pub fn allow_program(&mut self, program: &Path) -> Result<(), Overlap> {
        let canonical = program
            .canonicalize()
            .unwrap_or_else(|_| program.to_path_buf());
        for p in [program, canonical.as_path()] {
            let components: Vec<_> = p.components().collect();
            let package = components
                .iter()
                .position(|c| c.as_os_str() == "node_modules")
                .filter(|i| i + 2 < components.len())
                .map(|i| components[..i + 2].iter().collect::<PathBuf>());
            let Some(dir) = package.or_else(|| p.parent().map(Path::to_path_buf)) else {
                continue;
            };
            let dir = self.install_prefix(&dir).unwrap_or(dir);
            if SYSTEM_READ_EXEC.iter().any(|s| dir.starts_with(s)) {
                continue;
            }
            self.allow_read_exec(&dir)?;
        }
        Ok(())
    }

    /// For a program in a `bin` directory, the installation it belongs to (its
    /// `lib/`, `share/`…: a Python or Node installed by pyenv or nvm needs its
    /// standard library): the `bin` directory's parent — unless that is the
    /// owner's home or a directory directly in it (`~/.local`, `~/.cargo` hold
    /// keyrings and registry tokens), or overlaps the airlock home.
    fn install_prefix(&self, dir: &Path) -> Option<PathBuf> {
        if dir.file_name()? != "bin" {
            return None;
        }
        let prefix = dir.parent()?;
        if prefix == Path::new("/") {
            return None;
        }
        if let Some(h) = &self.protected.owner_home
            && (h.starts_with(prefix) || prefix.parent() == Some(h.as_path()))
        {
            return None;
        }
        if let Some(h) = &self.protected.airlock_home
            && (h.starts_with(prefix) || prefix.starts_with(h))
        {
            return None;
        }
        Some(prefix.to_path_buf())
    }

    /// The directories the child may write.
    pub fn writable(&self) -> &[PathBuf] {
        &self.writable
    }

    /// Sets the network it may reach.
    pub fn set_network(&mut self, network: Network) {
        self.network = network;
    }

    /// The network it may reach.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The Landlock ruleset and seccomp program for one child, whose private
    /// HOME (writable) is `private`.
    pub(crate) fn hook(&self, private: Option<&Path>) -> Result<airlock_confine::Hook, ExecError> {
        let abi = match airlock_confine::landlock_abi() {
            Ok(v) => v,
            Err(e) => {
                return Err(ExecError::Confine(format!(
                    "{e}; the program was not started. Set `confine = false` on the capability to run it unconfined (doctor will warn)"
                )));
            }
        };
        let all = AccessFs::from_all(VETTED_ABI);
        let mut ruleset = Ruleset::default()
            .handle_access(all)
            .map_err(|e| build_error("file rights", &e))?
            .scope(Scope::from_all(VETTED_ABI))
            .map_err(|e| build_error("scopes", &e))?;
        if self.network != Network::Direct {
            ruleset = ruleset
                .handle_access(AccessNet::from_all(VETTED_ABI))
                .map_err(|e| build_error("network rights", &e))?;
        }
        // This sandbox's own grants, opened now.
        let mut own: Vec<Grant> = Vec::new();
        for p in &self.read_exec {
            Grant::open(p, read_exec(), &mut own)?;
        }
        if self.network == Network::Direct {
            // Name resolution on systemd hosts: /etc/resolv.conf links here.
            Grant::open(Path::new("/run/systemd/resolve"), read(), &mut own)?;
        }
        for p in self.writable.iter().map(PathBuf::as_path).chain(private) {
            Grant::open(p, all, &mut own)?;
        }
        // The system's grants, shared by every sandbox and re-opened only when
        // /etc (or one of the directories looked into) changed.
        let system = system_grants()?;
        let rules = system
            .iter()
            .chain(own.iter())
            .map(|g| Ok::<_, landlock::RulesetError>(PathBeneath::new(g.fd.as_fd(), g.access)));
        let created = ruleset
            .create()
            .map_err(|e| build_error("ruleset", &e))?
            .add_rules(rules)
            .map_err(|e| build_error("rules", &e))?;
        let created = match self.proxy_port() {
            None => created,
            Some(port) => {
                if abi < MIN_TCP_ABI {
                    return Err(ExecError::Confine(format!(
                        "this kernel's Landlock (ABI {abi}) cannot limit TCP connections to the egress proxy (ABI {MIN_TCP_ABI}, Linux 6.7, can); the program was not started"
                    )));
                }
                created
                    .add_rule(landlock::NetPort::new(port, AccessNet::ConnectTcp))
                    .map_err(|e| build_error("the proxy's port", &e))?
            }
        };
        let ruleset: Option<std::os::fd::OwnedFd> = created.into();
        let ruleset = ruleset.ok_or_else(|| {
            ExecError::Confine("the kernel refused to create a Landlock ruleset".into())
        })?;
        Ok(airlock_confine::Hook {
            ruleset,
            proc_self_access: read().bits(),
            filter: seccomp_program(self.net_mode(), abi)?,
        })
    }
}

impl Sandbox {
    fn net_mode(&self) -> NetMode {
        match (self.network, self.proxy_port()) {
            (Network::Direct, _) => NetMode::Direct,
            (_, Some(_)) => NetMode::Proxy,
            _ => NetMode::None,
        }
    }
}

/// What sockets the seccomp program lets a child create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NetMode {
    /// None at all.
    None,
    /// TCP only (Landlock then limits it to the proxy's port).
    Proxy,
    /// All but `AF_UNIX`.
    Direct,
}

fn build_error(what: &str, e: &dyn std::fmt::Display) -> ExecError {
    ExecError::Confine(format!("building the sandbox ({what}): {e}"))
}

fn read() -> BitFlags<AccessFs> {
    AccessFs::ReadFile | AccessFs::ReadDir
}

fn read_exec() -> BitFlags<AccessFs> {
    read() | AccessFs::Execute
}

/// One path opened (`O_PATH`) with the rights granted beneath it.
struct Grant {
    fd: PathFd,
    access: BitFlags<AccessFs>,
}

impl Grant {
    /// Opens `path` and pushes its grant; a path that does not exist (no /lib32
    /// here) is skipped, any other failure fails the spawn. A file (not a
    /// directory) takes only file rights.
    fn open(
        path: &Path,
        access: BitFlags<AccessFs>,
        out: &mut Vec<Grant>,
    ) -> Result<(), ExecError> {
        let fd = match PathFd::new(path) {
            Ok(fd) => fd,
            Err(_) if !path.exists() => return Ok(()),
            Err(e) => return Err(build_error(&path.display().to_string(), &e)),
        };
        let access = if path.is_dir() {
            access
        } else {
            access & AccessFs::from_file(VETTED_ABI)
        };
        out.push(Grant { fd, access });
        Ok(())
    }
}

/// What the system grants were opened against: (path, inode, ctime) of `/etc`
/// and of the `/etc` directories looked into. A file replaced in `/etc` (by
/// rename, as package managers and `useradd` do) changes its directory's ctime.
type Stamp = Vec<(PathBuf, u64, i64, i64)>;

fn stamp() -> Stamp {
    use std::os::unix::fs::MetadataExt as _;
    std::iter::once(PathBuf::from("/etc"))
        .chain(ETC_DESCEND.iter().map(|d| Path::new("/etc").join(d)))
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            Some((p, m.ino(), m.ctime(), m.ctime_nsec()))
        })
        .collect()
}

/// The grants every sandbox shares: the system's read-only paths, `/etc` entry
/// by entry, the device files, the `/proc` and `/sys` files. Opened once and
/// reused while [`stamp`] is unchanged (a spawn then costs one `stat` per
/// stamped directory instead of ~200 `open`s).
fn system_grants() -> Result<std::sync::Arc<Vec<Grant>>, ExecError> {
    use std::sync::{Arc, Mutex, PoisonError};
    static CACHE: Mutex<Option<(Stamp, Arc<Vec<Grant>>)>> = Mutex::new(None);
    let now = stamp();
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((at, grants)) = cache.as_ref()
        && *at == now
    {
        return Ok(grants.clone());
    }
    let dev_rw = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev;
    let mut out = Vec::new();
    for p in SYSTEM_READ_EXEC {
        Grant::open(Path::new(p), read_exec(), &mut out)?;
    }
    for p in etc_entries() {
        Grant::open(&p, read(), &mut out)?;
    }
    for p in DEVICES_RW {
        Grant::open(Path::new(p), dev_rw, &mut out)?;
    }
    for p in DEVICES_RO.iter().chain(PROC_SYS_RO) {
        Grant::open(Path::new(p), read(), &mut out)?;
    }
    let grants = Arc::new(out);
    *cache = Some((now, grants.clone()));
    Ok(grants)
}

/// The readable `/etc` entries (secret-shaped ones left out).
fn etc_entries() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(top) = std::fs::read_dir("/etc") else {
        return out;
    };
    for e in top.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if hidden_in_etc(name) {
            continue;
        }
        if ETC_DESCEND.contains(&name) {
            if let Ok(inner) = std::fs::read_dir(e.path()) {
                for i in inner.flatten() {
                    let n = i.file_name();
                    if n.to_str().is_some_and(|n| !hidden_in_etc(n)) {
                        out.push(i.path());
                    }
                }
            }
            continue;
        }
        out.push(e.path());
    }
    out
}

/// The seccomp program: everything allowed except the named holes (see the
/// module docs), which fail with `EACCES` like a Landlock refusal.
fn seccomp_program(network: NetMode, abi: u32) -> Result<BpfProgram, ExecError> {
    use std::sync::OnceLock;
    // Six possible programs (network none/proxy/direct × truncate filtered or
    // not), each compiled once.
    static PROGRAMS: [OnceLock<BpfProgram>; 6] = [const { OnceLock::new() }; 6];
    let slot = &PROGRAMS[network as usize * 2 + usize::from(abi < 3)];
    if let Some(p) = slot.get() {
        return Ok(p.clone());
    }
    let p = build_seccomp_program(network, abi)?;
    Ok(slot.get_or_init(|| p).clone())
}

fn build_seccomp_program(network: NetMode, abi: u32) -> Result<BpfProgram, ExecError> {
    let cond = |arg: u8, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
    };
    fn bad(e: impl std::fmt::Display) -> ExecError {
        ExecError::Confine(format!("building the seccomp filter: {e}"))
    }
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    match network {
        NetMode::None => {
            // No socket at all (an empty rule list matches every call).
            rules.insert(libc::SYS_socket, Vec::new());
        }
        NetMode::Proxy => {
            // Refused (each rule is one way to fail): a family other than IPv4
            // or IPv6; a type other than a stream; a protocol other than TCP
            // (SCTP streams). What is left is TCP, which Landlock limits.
            let ne = |arg, v: i32| cond(arg, SeccompCmpOp::Ne, v as u64).map_err(bad);
            let family = vec![ne(0, libc::AF_INET)?, ne(0, libc::AF_INET6)?];
            let protocol = vec![ne(2, 0)?, ne(2, libc::IPPROTO_TCP)?];
            // The type's low bits (SOCK_CLOEXEC and SOCK_NONBLOCK are above).
            let mut socket = vec![
                SeccompRule::new(family).map_err(bad)?,
                SeccompRule::new(protocol).map_err(bad)?,
            ];
            for t in [
                libc::SOCK_DGRAM,
                libc::SOCK_RAW,
                libc::SOCK_RDM,
                libc::SOCK_SEQPACKET,
                libc::SOCK_DCCP,
            ] {
                let c = cond(1, SeccompCmpOp::MaskedEq(0xf), t as u64).map_err(bad)?;
                socket.push(SeccompRule::new(vec![c]).map_err(bad)?);
            }
            rules.insert(libc::SYS_socket, socket);
        }
        NetMode::Direct => {
            let unix = cond(0, SeccompCmpOp::Eq, libc::AF_UNIX as u64).map_err(bad)?;
            rules.insert(
                libc::SYS_socket,
                vec![SeccompRule::new(vec![unix]).map_err(bad)?],
            );
        }
    }
    rules.insert(libc::SYS_io_uring_setup, Vec::new());
    let tiocsti = cond(1, SeccompCmpOp::Eq, libc::TIOCSTI).map_err(bad)?;
    let tioclinux = cond(1, SeccompCmpOp::Eq, libc::TIOCLINUX).map_err(bad)?;
    rules.insert(
        libc::SYS_ioctl,
        vec![
            SeccompRule::new(vec![tiocsti]).map_err(bad)?,
            SeccompRule::new(vec![tioclinux]).map_err(bad)?,
        ],
    );
    if abi < 3 {
        rules.insert(libc::SYS_truncate, Vec::new());
    }
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| ExecError::Confine(format!("seccomp: {e}")))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EACCES as u32),
        arch,
    )
    .map_err(|e| ExecError::Confine(format!("building the seccomp filter: {e}")))?;
    let mut program = BpfProgram::try_from(filter)
        .map_err(|e| ExecError::Confine(format!("building the seccomp filter: {e}")))?;
    deny_x32(&mut program);
    Ok(program)
}

/// On x86-64, the x32 ABI reaches the same system calls with bit 30 set in the
/// number and the same audit architecture, so a filter that matches `socket` by
/// number misses x32's `socket`. Refuse every x32 call, right after seccompiler's
/// architecture check (its first three instructions; the jumps after them are
/// relative, so inserting before them keeps them right). Calls through the i386
/// ABI fail that architecture check and kill the process.
fn deny_x32(program: &mut BpfProgram) {
    if cfg!(target_arch = "x86_64") && program.len() >= 3 {
        use seccompiler::sock_filter;
        const BPF_LD_W_ABS: u16 = 0x20;
        const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
        const BPF_RET_K: u16 = 0x06;
        const X32_SYSCALL_BIT: u32 = 0x4000_0000;
        let deny = libc::SECCOMP_RET_ERRNO | libc::EACCES as u32;
        let block = [
            sock_filter {
                code: BPF_LD_W_ABS,
                jt: 0,
                jf: 0,
                k: 0,
            },
            sock_filter {
                code: BPF_JMP_JGE_K,
                jt: 0,
                jf: 1,
                k: X32_SYSCALL_BIT,
            },
            sock_filter {
                code: BPF_RET_K,
                jt: 0,
                jf: 0,
                k: deny,
            },
        ];
        program.splice(3..3, block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etc_secrets_hidden() {
        for n in [
            "shadow",
            "gshadow-",
            "sudoers",
            "sudoers.d",
            "ssh_host_ed25519_key",
            "private",
            "krb5.keytab",
            "ipsec.secrets",
            "wireguard",
            "chap-secrets",
        ] {
            assert!(hidden_in_etc(n), "{n}");
        }
        for n in [
            "passwd",
            "group",
            "hosts",
            "resolv.conf",
            "ssh_host_ed25519_key.pub",
            "ssh_config",
            "certs",
            "ca-certificates.crt",
            "gitconfig",
        ] {
            assert!(!hidden_in_etc(n), "{n}");
        }
    }

    #[test]
    fn protected_paths() {
        let p = Protected {
            airlock_home: Some("/home/o/.airlock".into()),
            owner_home: Some("/home/o".into()),
            temp_root: Some("/tmp".into()),
        };
        assert!(p.check(Path::new("/home/o/src/app")).is_ok());
        assert!(p.check(Path::new("/tmp/x")).is_ok());
        assert!(matches!(
            p.check(Path::new("/home/o/.airlock/state")),
            Err(Overlap::AirlockHome(_))
        ));
        assert!(matches!(
            p.check(Path::new("/home/o")),
            Err(Overlap::AirlockHome(_))
        ));
        assert!(matches!(
            p.check(Path::new("/")),
            Err(Overlap::AirlockHome(_))
        ));
        let q = Protected {
            airlock_home: Some("/srv/airlock".into()),
            owner_home: Some("/home/o".into()),
            temp_root: Some("/tmp".into()),
        };
        assert!(matches!(
            q.check(Path::new("/home")),
            Err(Overlap::OwnerHome(_))
        ));
        assert!(q.check(Path::new("/home/o/.airlockx")).is_ok());
        assert!(matches!(
            q.check(Path::new("/tmp")),
            Err(Overlap::TempRoot(_))
        ));
        assert!(q.check(Path::new("/tmp/project")).is_ok());
    }
}
