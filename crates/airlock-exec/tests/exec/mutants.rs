//! What the exec crate's tests missed under mutation (issue 20, item 1;
//! docs/testing.md, "Mutation testing"): which `/etc` files a confined child
//! may not read, what `airlock doctor` says the kernel's Landlock gives, and
//! what the sandbox grants (every workdir, the egress proxy's port).

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::time::Duration;

use airlock_exec::confine::hidden_in_etc;
use airlock_exec::{ExecPolicy, Launch, OwnerEnv, Scrubber, Stdin, Support};

use super::{cat_in, landlock, rt, strings};

/// TLS private keys named `*-key.pem` / `*_key.pem` (the usual names of
/// certbot's, cfssl's and many distributions' keys) are hidden from a confined
/// child by their suffix alone; the certificates beside them stay readable.
#[test]
fn pem_private_keys_are_hidden_by_their_suffix() {
    for n in [
        "server-key.pem",
        "ca_key.pem",
        "Host-Key.PEM",
        "tls_KEY.pem",
    ] {
        assert!(hidden_in_etc(n), "{n} must be hidden");
    }
    for n in ["server.pem", "ca-cert.pem", "key-usage.pem", "keyring.pem"] {
        assert!(!hidden_in_etc(n), "{n} must stay readable");
    }
}

/// `airlock doctor`: one line for what the child gets, then one line per
/// protection this kernel's Landlock ABI lacks; nothing without Landlock.
#[test]
fn doctor_lists_what_each_landlock_abi_lacks() {
    const HEAD: &str = "Landlock ABI {abi}: files confined; seccomp: sockets, io_uring and terminal injection refused";
    const LACKS: [(u32, &str); 4] = [
        (3, "ABI < 3: truncate(2) is refused by seccomp instead"),
        (
            4,
            "ABI < 4: TCP is confined by seccomp only (no socket at all with network = \"none\")",
        ),
        (
            5,
            "ABI < 5: ioctl on device files opened in the sandbox is not restricted",
        ),
        (
            6,
            "ABI < 6: a child can signal other processes of the same user (upgrade to Linux 6.12+)",
        ),
    ];
    for abi in 1..=8 {
        let mut want = vec![HEAD.replace("{abi}", &abi.to_string())];
        want.extend(
            LACKS
                .iter()
                .filter(|(below, _)| abi < *below)
                .map(|(_, line)| line.to_string()),
        );
        assert_eq!(Support::Landlock { abi }.describe(), want, "ABI {abi}");
    }
    assert!(
        Support::Unavailable("no Landlock".into())
            .describe()
            .is_empty()
    );
}

// ------------------------------------------------------------ the sandbox

/// A capability's world: an owner, a home standing for `$AIRLOCK_HOME`, two
/// workdirs and a directory of CA files.
struct Box2 {
    _root: tempfile::TempDir,
    owner: OwnerEnv,
    work: [PathBuf; 2],
    ca: PathBuf,
}

fn box2() -> Box2 {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().canonicalize().unwrap();
    let (home, owner_home) = (r.join("airlock-home"), r.join("owner"));
    let work = [owner_home.join("one"), owner_home.join("two")];
    let ca = r.join("proxy-ca");
    for d in [&home, &owner_home, &work[0], &work[1], &ca] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(ca.join("ca.pem"), "PROXY-CA-PEM\n").unwrap();
    let owner = OwnerEnv {
        path: "/usr/bin:/bin".into(),
        home: Some(owner_home),
        lang: None,
        term: None,
        temp_root: None,
        airlock_home: Some(home),
    };
    Box2 {
        _root: root,
        owner,
        work,
        ca,
    }
}

fn bash_policy(b: &Box2) -> ExecPolicy {
    let dirs: Vec<String> = b.work.iter().map(|w| w.display().to_string()).collect();
    ExecPolicy::from_parts(
        "cap",
        &strings(&["bash"]),
        &dirs,
        &[],
        &Default::default(),
        &b.owner,
    )
    .unwrap()
    .with_timeout(Duration::from_secs(20))
}

fn run_confined(launch: Launch) -> String {
    assert!(launch.is_confined());
    let o = rt()
        .block_on(async { launch.spawn(&Scrubber::empty()).unwrap().output().await })
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The two-workdir box and its bash policy, for a test of the sandbox: `None`
/// (the test skips) on a kernel without Landlock.
fn confined_bash() -> Option<(Box2, ExecPolicy)> {
    landlock().then(|| {
        let b = box2();
        let p = bash_policy(&b);
        (b, p)
    })
}

/// Every workdir of a capability is writable for a confined child, not only
/// the first (and its private HOME too).
#[test]
fn a_confined_child_may_write_in_every_workdir() {
    let Some((b, p)) = confined_bash() else {
        return;
    };
    for (i, w) in b.work.iter().enumerate() {
        let cwd = w.display().to_string();
        let inv = p
            .check(
                &strings(&[
                    "bash",
                    "-c",
                    "echo hi > f && echo ok-cwd; echo hi > \"$HOME/g\" && echo ok-home",
                ]),
                Some(&cwd),
            )
            .unwrap();
        let out = run_confined(p.prepare(inv, None, Stdin::Null).unwrap());
        assert!(
            out.contains("ok-cwd") && out.contains("ok-home"),
            "workdir {i}: {out}"
        );
        assert_eq!(std::fs::read_to_string(w.join("f")).unwrap(), "hi\n");
    }
}

/// `via_proxy`: a confined child (network not `direct`) may connect to the
/// egress proxy's port and read its CA files, and still reaches no other port.
#[test]
fn a_confined_child_reaches_the_egress_proxy_and_nothing_else() {
    // Landlock limits TCP connections from ABI 4 (Linux 6.7); below, a child
    // with the proxy is refused at spawn.
    if !landlock() || !matches!(Support::probe(), Support::Landlock { abi } if abi >= 4) {
        return;
    }
    let b = box2();
    let p = bash_policy(&b);
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    other.set_nonblocking(true).unwrap();
    let (pp, op) = (
        proxy.local_addr().unwrap().port(),
        other.local_addr().unwrap().port(),
    );
    let probe = format!(
        "(exec 3<>/dev/tcp/127.0.0.1/{pp} && echo proxy-connected); \
         (exec 3<>/dev/tcp/127.0.0.1/{op} && echo other-connected); \
         cat {}/ca.pem; true",
        b.ca.display()
    );
    // First without via_proxy: the proxy's port is as closed as any other.
    // (Run first on purpose: each network mode has a seccomp program of its
    // own, built at its first use, and a child with the proxy must not get the
    // one built for a child without network.)
    let inv = p.check(&strings(&["bash", "-c", &probe]), None).unwrap();
    let out = run_confined(p.prepare(inv, None, Stdin::Null).unwrap());
    assert!(!out.contains("proxy-connected"), "{out}");
    let inv = p.check(&strings(&["bash", "-c", &probe]), None).unwrap();
    let launch = p
        .prepare(inv, None, Stdin::Null)
        .unwrap()
        .via_proxy(pp, &b.ca)
        .unwrap();
    let out = run_confined(launch);
    assert!(out.contains("proxy-connected"), "{out}");
    assert!(out.contains("PROXY-CA-PEM"), "{out}");
    assert!(!out.contains("other-connected"), "{out}");
    assert!(other.accept().is_err(), "the other port saw a connection");
}

/// A workdir that would expose a protected place is refused at load with the
/// reason and the remedy: the airlock home, the owner's home, the directory of
/// the private HOMEs — also when that directory is the owner's own `temp_root`
/// (which must not drop the other two protections).
#[test]
fn a_workdir_over_a_protected_place_is_refused_with_the_reason() {
    let b = box2();
    let temp_root = b.work[0].join("homes");
    std::fs::create_dir_all(&temp_root).unwrap();
    let owner = OwnerEnv {
        temp_root: Some(temp_root.clone()),
        ..b.owner.clone()
    };
    let (airlock_home, owner_home) = (
        owner.airlock_home.clone().unwrap(),
        owner.home.clone().unwrap(),
    );
    for (workdir, reason) in [
        (
            &airlock_home,
            format!(
                "it overlaps the airlock home {} (the key, vault, config and state)",
                airlock_home.display()
            ),
        ),
        (
            &owner_home,
            format!(
                "it contains your home directory {} (your keys, shell and tool configuration)",
                owner_home.display()
            ),
        ),
        (
            &b.work[0],
            format!(
                "it contains {}, where airlock makes each call's private HOME",
                temp_root.display()
            ),
        ),
    ] {
        let e = cat_in(workdir, &owner).map(drop).unwrap_err().to_string();
        assert!(e.contains(&reason), "{e}");
    }
}

/// A policy for `commands` with the box's first workdir.
fn in_first_workdir(b: &Box2, commands: &[String]) -> ExecPolicy {
    ExecPolicy::from_parts(
        "cap",
        commands,
        &[b.work[0].display().to_string()],
        &[],
        &Default::default(),
        &b.owner,
    )
    .unwrap()
    .with_timeout(Duration::from_secs(20))
}

/// Runs `program` confined, as the one command of a capability with the box's
/// first workdir: what it printed.
fn run_alone(b: &Box2, program: &std::path::Path) -> String {
    let program = strings(&[&program.display().to_string()]);
    let p = in_first_workdir(b, &program);
    let inv = p.check(&program, None).unwrap();
    run_confined(p.prepare(inv, None, Stdin::Null).unwrap())
}

/// A program inside `node_modules` gets its whole package (its `lib/`,
/// `package.json`…), not only the directory it is in; the rest of
/// `node_modules` stays out of reach.
#[test]
fn a_program_in_node_modules_gets_its_whole_package() {
    if !landlock() {
        return;
    }
    let b = box2();
    let tools = b._root.path().canonicalize().unwrap().join("tools");
    let pkg = tools.join("node_modules/pkg");
    let cli = pkg.join("dist/cli");
    for d in [
        pkg.join("dist"),
        pkg.join("lib"),
        tools.join("node_modules/other"),
    ] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(pkg.join("lib/data.txt"), "PACKAGE-DATA\n").unwrap();
    std::fs::write(tools.join("node_modules/other/x.txt"), "OTHER-PACKAGE\n").unwrap();
    std::fs::write(
        &cli,
        format!(
            "#!/bin/bash\ncat \"$(dirname \"$0\")/../lib/data.txt\"\ncat {}\n",
            tools.join("node_modules/other/x.txt").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run_alone(&b, &cli);
    assert!(out.contains("PACKAGE-DATA"), "{out}");
    assert!(!out.contains("OTHER-PACKAGE"), "{out}");
    // A program directly in `node_modules` (no package around it) gets its own
    // directory, like any program.
    let direct = tools.join("node_modules/direct");
    std::fs::write(tools.join("node_modules/beside.txt"), "BESIDE\n").unwrap();
    std::fs::write(
        &direct,
        "#!/bin/bash\ncat \"$(dirname \"$0\")/beside.txt\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&direct, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run_alone(&b, &direct);
    assert!(out.contains("BESIDE"), "{out}");
}

/// What `airlock doctor` and the exec tool report of a confined capability:
/// its name, the directories it may write (every workdir, canonical) and its
/// network.
#[test]
fn the_sandbox_reports_what_it_grants() {
    let b = box2();
    let p = bash_policy(&b);
    assert_eq!(p.capability(), "cap");
    assert_eq!(p.workdirs(), &b.work[..]);
    let sb = p.sandbox().expect("confined by default");
    assert_eq!(sb.writable(), &b.work[..]);
    assert_eq!(sb.network(), airlock_exec::Network::None);
    let direct = bash_policy(&b).with_network(airlock_exec::Network::Direct);
    assert_eq!(
        direct.sandbox().unwrap().network(),
        airlock_exec::Network::Direct
    );
}

/// On a host with systemd-resolved (`/etc/resolv.conf` links into
/// `/run/systemd/resolve`), a child with `network = "direct"` may read the
/// resolver's files and one without network may not. Nothing to check on a
/// host without that directory.
#[test]
fn only_a_direct_child_reads_the_systemd_resolver() {
    let dir = std::path::Path::new("/run/systemd/resolve");
    if !landlock() || !dir.is_dir() {
        return;
    }
    let b = box2();
    let probe = format!("ls {} >/dev/null && echo listed", dir.display());
    for (network, listed) in [
        (airlock_exec::Network::Direct, true),
        (airlock_exec::Network::None, false),
    ] {
        let p = bash_policy(&b).with_network(network);
        let inv = p.check(&strings(&["bash", "-c", &probe]), None).unwrap();
        let out = run_confined(p.prepare(inv, None, Stdin::Null).unwrap());
        assert_eq!(out.contains("listed"), listed, "{network:?}: {out}");
    }
}

/// The system's files are granted read-only: a confined child may read
/// `/dev/urandom` but not open it for writing (its mode lets everyone write;
/// the sandbox must not), while `/dev/null` stays writable.
#[test]
fn read_only_device_files_stay_read_only() {
    let Some((_b, p)) = confined_bash() else {
        return;
    };
    let probe = "head -c 4 /dev/urandom >/dev/null && echo read-ok; \
                 (exec 3>>/dev/urandom && echo urandom-writable); \
                 (exec 3>>/dev/null && echo null-writable); true";
    let inv = p.check(&strings(&["bash", "-c", probe]), None).unwrap();
    let out = run_confined(p.prepare(inv, None, Stdin::Null).unwrap());
    assert!(out.contains("read-ok"), "{out}");
    assert!(out.contains("null-writable"), "{out}");
    assert!(!out.contains("urandom-writable"), "{out}");
}

/// In `/etc` directories that mix public files and keys (`/etc/ssl`,
/// `/etc/ssh`…), a confined child reads the public entries (the CA bundle
/// TLS needs) and not the secret-shaped ones (`/etc/ssl/private`). Checks the
/// entries this host has.
#[test]
fn etc_ssl_gives_the_certificates_and_hides_the_private_keys() {
    if !landlock() {
        return;
    }
    let (certs, private) = (
        std::path::Path::new("/etc/ssl/certs"),
        std::path::Path::new("/etc/ssl/private"),
    );
    if !certs.is_dir() || !private.is_dir() {
        return;
    }
    let b = box2();
    let p = bash_policy(&b);
    let probe = "ls /etc/ssl/certs >/dev/null && echo certs-listed; \
                 ls /etc/ssl/private >/dev/null && echo private-listed; true";
    let inv = p.check(&strings(&["bash", "-c", probe]), None).unwrap();
    let out = run_confined(p.prepare(inv, None, Stdin::Null).unwrap());
    assert!(out.contains("certs-listed"), "{out}");
    assert!(!out.contains("private-listed"), "{out}");
}

/// On a kernel whose Landlock handles truncation (ABI 3 and later), a confined
/// child may `truncate(2)` files in its workdir: seccomp refuses that call
/// only on older kernels, where Landlock cannot tell where the file is.
#[test]
fn a_confined_child_may_truncate_files_in_its_workdir() {
    if !matches!(Support::probe(), Support::Landlock { abi } if abi >= 3) {
        return;
    }
    let b = box2();
    let p = bash_policy(&b);
    std::fs::write(b.work[0].join("f"), "some bytes\n").unwrap();
    let probe = "python3 -c \"import os; os.truncate('f', 4); print('truncated')\"";
    let cwd = b.work[0].display().to_string();
    let inv = p
        .check(&strings(&["bash", "-c", probe]), Some(&cwd))
        .unwrap();
    let out = run_confined(p.prepare(inv, None, Stdin::Null).unwrap());
    assert!(out.contains("truncated"), "{out}");
    assert_eq!(std::fs::read(b.work[0].join("f")).unwrap(), b"some");
}

// ------------------------------------------------------------ the git guard

fn git(args: &[&str]) -> Result<(), String> {
    airlock_exec::guard::check(airlock_exec::ProgramKind::Git, "git", &strings(args)).map_err(|r| {
        match r {
            airlock_exec::Refusal::Argument { reason, .. } => reason,
            other => panic!("not an argument refusal: {other}"),
        }
    })
}

/// Each refused git global option says why, and the ones that move git out of
/// the workdir say what to do instead (`cwd`).
#[test]
fn git_global_option_refusals_say_why() {
    let cases: [(&[&str], &str); 9] = [
        (
            &["-c", "alias.x=!sh", "x"],
            "git -c and --config-env are refused",
        ),
        (
            &["-calias.x=!sh", "x"],
            "git -c and --config-env are refused",
        ),
        (
            &["--config-env=core.pager=P", "log"],
            "git -c and --config-env are refused",
        ),
        (
            &["--exec-path=/tmp", "log"],
            "--exec-path chooses where git finds",
        ),
        (
            &["-C", "/", "log"],
            "it moves git outside the capability's workdirs; pass `cwd` instead",
        ),
        (
            &["--git-dir=/x", "log"],
            "it moves git outside the capability's workdirs; pass `cwd` instead",
        ),
        (
            &["--work-tree=/x", "log"],
            "it moves git outside the capability's workdirs; pass `cwd` instead",
        ),
        (
            &["--namespace=x", "log"],
            "it moves git outside the capability's workdirs; pass `cwd` instead",
        ),
        (&["--help"], "it runs a configurable viewer or browser"),
    ];
    for (args, why) in cases {
        let reason = git(args).unwrap_err();
        assert!(reason.starts_with(why), "{args:?}: {reason}");
    }
    let reason = git(&["--frobnicate", "log"]).unwrap_err();
    assert!(
        reason.starts_with("not a git global option airlock allows"),
        "{reason}"
    );
}

/// After `--` or `--end-of-options` everything is a path: one that leaves the
/// working directory is refused even when it starts with `-`, and one that
/// looks like a refused option (`--output`) is only a file name.
#[test]
fn after_the_end_of_options_every_argument_is_a_path() {
    for end in ["--", "--end-of-options"] {
        let reason = git(&["diff", end, "-a/../../etc/passwd"]).unwrap_err();
        assert!(
            reason.contains("outside the working directory"),
            "{end}: {reason}"
        );
        git(&["log", end, "--output"]).unwrap();
        git(&["diff", end, "--output"]).unwrap();
    }
    // Before them, the same words are options.
    assert!(git(&["log", "--output=x"]).is_err());
}

// ------------------------------------------------------------ the env guard

/// `env` may print the environment, never run or split a command: `-S`
/// (`--split-string`) and `-C` (`--chdir`) are refused in every spelling, a
/// program name too; variables and `-i` alone are fine.
#[test]
fn env_may_not_split_change_directory_or_run() {
    let env = |args: &[&str]| {
        airlock_exec::guard::check(airlock_exec::ProgramKind::Env, "env", &strings(args))
    };
    for args in [
        &["-S", "sh -c id"][..],
        &["-Ssh -c id"],
        &["-C", "/"],
        &["-C/"],
        &["--split-string=sh -c id"],
        &["--split-string", "sh -c id"],
        &["--chdir=/"],
        &["--chdir", "/"],
    ] {
        let r = env(args).unwrap_err().to_string();
        assert!(
            r.contains("env may print the environment but not run or split commands"),
            "{args:?}: {r}"
        );
    }
    let r = env(&["A=1", "id"]).unwrap_err().to_string();
    assert!(r.contains("allow that program itself instead"), "{r}");
    env(&["-i", "A=1"]).unwrap();
}

/// The owner is warned about an allowed shell or interpreter (it runs whatever
/// it is told), and only about that: other programs give no warning.
#[test]
fn only_a_runner_on_the_allow_list_is_a_warning() {
    let b = box2();
    let compile = |commands: &[&str]| {
        ExecPolicy::from_parts(
            "cap",
            &strings(commands),
            &[],
            &[],
            &Default::default(),
            &b.owner,
        )
        .unwrap()
    };
    assert!(compile(&["cat", "ls"]).warnings().is_empty());
    let p = compile(&["cat", "bash"]);
    assert_eq!(
        p.warnings(),
        [
            "capability \"cap\": `bash` runs whatever it is told to; allowing it lets the agent run any program with the secret"
        ]
    );
}

/// A program in a `bin/` whose installation directory also holds the airlock
/// home still compiles: the child gets the `bin/` only, never the installation
/// (which would reach the home).
#[test]
fn an_installation_holding_the_airlock_home_gives_only_its_bin() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().canonicalize().unwrap();
    let inst = r.join("inst");
    let home = inst.join("airlock-home");
    let tool = inst.join("bin/tool");
    for d in [&home, &inst.join("bin"), &r.join("owner"), &r.join("work")] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(home.join("master.key"), "CANARY-KEY\n").unwrap();
    std::fs::write(
        &tool,
        format!(
            "#!/bin/bash\necho tool-ran\ncat {}/master.key\n",
            home.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let owner = OwnerEnv {
        path: "/usr/bin:/bin".into(),
        home: Some(r.join("owner")),
        lang: None,
        term: None,
        temp_root: None,
        airlock_home: Some(home),
    };
    let tool = tool.display().to_string();
    let p = ExecPolicy::from_parts(
        "cap",
        &strings(&[&tool]),
        &[r.join("work").display().to_string()],
        &[],
        &Default::default(),
        &owner,
    )
    .expect("the bin/ alone is granted")
    .with_timeout(Duration::from_secs(20));
    if !landlock() {
        return;
    }
    let inv = p.check(&strings(&[&tool]), None).unwrap();
    let out = run_confined(p.prepare(inv, None, Stdin::Null).unwrap());
    assert!(out.contains("tool-ran"), "{out}");
    assert!(!out.contains("CANARY-KEY"), "{out}");
}

/// The child's `PATH`: the allowed programs' own directories first, then
/// `SAFE_PATH`, each directory once.
#[test]
fn the_childs_path_lists_each_directory_once() {
    let b = box2();
    let tools = b._root.path().canonicalize().unwrap().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    for name in ["one", "two"] {
        let t = tools.join(name);
        std::fs::write(&t, "#!/bin/bash\necho \"$PATH\"\n").unwrap();
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let commands: Vec<String> = ["one", "two"]
        .iter()
        .map(|n| tools.join(n).display().to_string())
        .chain(["/usr/bin/cat".to_string()])
        .collect();
    let p = in_first_workdir(&b, &commands).unconfined();
    let inv = p.check(&strings(&["one"]), None).unwrap();
    let launch = p.prepare(inv, None, Stdin::Null).unwrap();
    let o = rt()
        .block_on(async { launch.spawn(&Scrubber::empty()).unwrap().output().await })
        .unwrap();
    let path = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(
        path,
        format!("{}:/usr/bin:/usr/local/bin:/bin", tools.display()),
        "{o:?}"
    );
}

/// A program that is not on the allow-list, or named by a relative path, is
/// refused with the list of the programs that are (what the agent can use
/// instead).
#[test]
fn a_program_not_allowed_is_refused_with_the_allowed_list() {
    let b = box2();
    let p = ExecPolicy::from_parts(
        "cap",
        &strings(&["cat", "ls"]),
        &[],
        &[],
        &Default::default(),
        &b.owner,
    )
    .unwrap();
    let r = p.check(&strings(&["rm", "-rf", "x"]), None).unwrap_err();
    assert!(r.to_string().contains("allowed: cat, "), "{r}");
    // A relative path names no program on the list: the refusal lists them.
    let r = p.check(&strings(&["./cat", "x"]), None).unwrap_err();
    assert!(r.to_string().ends_with("cat, ls"), "{r}");
}

/// `~` and `~/…` in `workdirs` (and `run --confine`) are the owner's home;
/// `~user`, a `~` elsewhere, or no known home leave the entry as written.
#[test]
fn workdirs_expand_a_leading_tilde_to_the_owners_home() {
    use airlock_exec::expand_workdir;
    let home = std::path::Path::new("/home/owner");
    assert_eq!(expand_workdir("~", Some(home)), home);
    assert_eq!(
        expand_workdir("~/src/app", Some(home)),
        home.join("src/app")
    );
    assert_eq!(
        expand_workdir("~other/x", Some(home)),
        PathBuf::from("~other/x")
    );
    assert_eq!(
        expand_workdir("/srv/~/x", Some(home)),
        PathBuf::from("/srv/~/x")
    );
    assert_eq!(expand_workdir("~/x", None), PathBuf::from("~/x"));
    assert_eq!(expand_workdir("~", None), PathBuf::from("~"));
}
