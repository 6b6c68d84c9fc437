//! Integration tests for exec mode (DESIGN.md §7, invariants 4 and 10).
//!
//! Programs are small shell scripts written into temporary "owner" directories, so
//! the tests need only `/bin/sh` and coreutils. Tests that must set variables in
//! airlock's own environment (which needs `unsafe` in edition 2024) re-run this
//! test binary as a child process with the environment prepared.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use airlock_exec::reference::{self, ReferenceError};
use airlock_exec::{
    BASE_ENV, ExecPolicy, GIT_CONFIG_OVERRIDES, GitCredential, Launch, Limits, OwnerEnv,
    PolicyError, Refusal, Scrubber, Stdin, Support,
};
use base64::Engine as _;
use secrecy::SecretSlice;

#[path = "exec/confine.rs"]
mod confine;
// The survivors of mutation testing, killed (docs/testing.md, "Mutation testing").
#[path = "exec/mutants.rs"]
mod mutants;

const SECRET: &str = "sk_live_4eC39Hq/Ly+jWD ar&tT1zdp7dc=";
const NAME: &str = "stripe";

fn secret() -> SecretSlice<u8> {
    SECRET.as_bytes().to_vec().into()
}

/// Writes an executable script.
fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

struct World {
    _root: tempfile::TempDir,
    /// The owner's bin directory (on the owner's PATH).
    bin: PathBuf,
    /// The agent's workdir.
    work: PathBuf,
    owner: OwnerEnv,
}

/// The workdir as an agent names it (`cwd` of a call).
impl World {
    fn cwd(&self) -> Option<&str> {
        self.work.to_str()
    }
}

fn world() -> World {
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("owner-bin");
    let real = root.path().join("owner-real");
    let work = root.path().join("work");
    for d in [&bin, &real, &work] {
        std::fs::create_dir(d).unwrap();
    }
    // `tool` is a symlink to the real program, to check canonicalization.
    script(&real.join("tool-impl"), "echo \"canonical tool: $0 $*\"");
    std::os::unix::fs::symlink(real.join("tool-impl"), bin.join("tool")).unwrap();
    // A fake git that only reports its arguments.
    script(&bin.join("git"), "echo \"fake git: $*\"");
    std::os::unix::fs::symlink("/bin/sh", bin.join("sh")).unwrap();
    std::os::unix::fs::symlink("/usr/bin/env", bin.join("env")).unwrap();
    // The agent's own programs, named like the allowed ones.
    script(&work.join("tool"), "echo AGENT-FAKE");
    std::os::unix::fs::symlink(work.join("tool"), work.join("git")).unwrap();
    let path =
        std::env::join_paths([bin.as_path(), Path::new("/usr/bin"), Path::new("/bin")]).unwrap();
    let owner = OwnerEnv {
        path,
        home: None,
        lang: None,
        term: None,
        temp_root: None,
        airlock_home: None,
    };
    let work = work.canonicalize().unwrap();
    World {
        _root: root,
        bin,
        work,
        owner,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A policy with just `commands`: no workdirs, no denied arguments, no env.
fn commands_only(commands: &[&str], owner: &OwnerEnv) -> Result<ExecPolicy, PolicyError> {
    ExecPolicy::from_parts("cap", &strings(commands), &[], &[], &BTreeMap::new(), owner)
}

/// A policy that gives `cat` the one workdir `workdir`.
fn cat_in(workdir: &Path, owner: &OwnerEnv) -> Result<ExecPolicy, PolicyError> {
    ExecPolicy::from_parts(
        "cap",
        &strings(&["cat"]),
        &[workdir.display().to_string()],
        &[],
        &BTreeMap::new(),
        owner,
    )
}

/// `/bin/sh -c SCRIPT` with PATH `/usr/bin:/bin`.
fn sh_c(script: &str) -> Launch {
    Launch::new("/bin/sh")
        .args(["-c", script])
        .env("PATH", "/usr/bin:/bin")
}

/// After a moment, no process of the group `pgid` is alive (else `survived`).
fn assert_group_gone(pgid: i32, survived: &str) {
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(live_members(pgid), Vec::<i32>::new(), "{survived}");
}

fn policy(w: &World, commands: &[&str], env: &[(&str, &str)], deny: &[&str]) -> ExecPolicy {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ExecPolicy::from_parts(
        "cap",
        &strings(commands),
        &[w.work.display().to_string()],
        &strings(deny),
        &env,
        &w.owner,
    )
    .unwrap()
}

/// Whether the kernel sandbox is available; a test of it skips (with a note) when
/// not.
#[allow(clippy::print_stderr)]
fn landlock() -> bool {
    match Support::probe() {
        Support::Landlock { .. } => true,
        Support::Unavailable(why) => {
            eprintln!("skipped: {why}");
            false
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Checks and runs `command` in `cwd`, buffered.
fn run(p: &ExecPolicy, command: &[&str], cwd: Option<&str>, stdin: Stdin) -> airlock_exec::Output {
    let inv = p.check(&strings(command), cwd).unwrap();
    let launch = p.prepare(inv, Some(&secret()), stdin).unwrap();
    rt().block_on(async { launch.spawn(&Scrubber::empty()).unwrap().output().await })
        .unwrap()
}

fn stdout(o: &airlock_exec::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

// ---------------------------------------------------------------------------------
// The agent cannot choose the program.

#[test]
fn agent_cannot_choose_the_program() {
    let w = world();
    let p = policy(&w, &["tool", "git"], &[], &[]);
    let cwd = w.cwd();

    // Bare names outside the list.
    for bad in ["sh", "bash", "env", "ls", "tool-impl"] {
        let r = p.check(&strings(&[bad]), cwd);
        assert!(
            matches!(r, Err(Refusal::ProgramNotAllowed { .. })),
            "{bad}: {r:?}"
        );
    }
    // Relative paths, including the agent's own `./tool` in its cwd.
    for bad in ["./tool", "../tool", "work/tool", "./git", "owner-bin/tool"] {
        let r = p.check(&strings(&[bad]), cwd);
        assert!(
            matches!(r, Err(Refusal::RelativeProgram { .. })),
            "{bad}: {r:?}"
        );
    }
    // Absolute paths outside the list: the agent's fake and its symlink, a shell,
    // the allowed program reached through another path.
    let fake = w.work.join("tool").display().to_string();
    let fake_link = w.work.join("git").display().to_string();
    let other_path = w.bin.join("../owner-bin/tool").display().to_string();
    for bad in [
        fake.as_str(),
        fake_link.as_str(),
        "/bin/sh",
        other_path.as_str(),
    ] {
        let r = p.check(&strings(&[bad]), cwd);
        assert!(
            matches!(r, Err(Refusal::ProgramNotAllowed { .. })),
            "{bad}: {r:?}"
        );
    }
    assert_eq!(p.check(&[], cwd), Err(Refusal::EmptyCommand));

    // The allowed name runs the canonical binary, not the agent's `tool` in cwd.
    let canonical_line = |args: &str| {
        format!(
            "canonical tool: {} {args}\n",
            p.programs()[0].canonical.display()
        )
    };
    let out = run(&p, &["tool", "a b"], cwd, Stdin::Null);
    assert_eq!(stdout(&out), canonical_line("a b"), "{out:?}");
    assert!(out.exit.success());
    // By the exact paths the owner's entry was found at / canonicalizes to.
    let prog = &p.programs()[0];
    assert_eq!(
        prog.canonical,
        w.bin
            .parent()
            .unwrap()
            .join("owner-real/tool-impl")
            .canonicalize()
            .unwrap()
    );
    for path in [&prog.found, &prog.canonical] {
        let out = run(&p, &[path.to_str().unwrap()], cwd, Stdin::Null);
        assert_eq!(stdout(&out), canonical_line(""));
    }
}

#[test]
fn commands_resolve_through_the_owners_path_only() {
    let w = world();
    // Relative entries in the owner's PATH (`.`, empty) are never searched.
    let owner = OwnerEnv {
        path: OsString::from(".::work:owner-bin"),
        ..w.owner.clone()
    };
    let r = commands_only(&["tool"], &owner);
    assert!(r.is_err(), "{r:?}");
    // Relative command entries are refused at load.
    let r = commands_only(&["./tool"], &w.owner);
    assert!(r.unwrap_err().to_string().contains("relative path"));
    let r = commands_only(&["nope-not-here"], &w.owner);
    assert!(r.unwrap_err().to_string().contains("not found in PATH"));
    // Runners are allowed when listed, and flagged.
    let p = policy(&w, &["sh", "tool"], &[], &[]);
    assert_eq!(p.warnings().len(), 1, "{:?}", p.warnings());
}

/// Re-runs this binary with `vars` in its environment, executing the ignored test
/// `name`; fails if it fails.
fn probe(name: &str, vars: &[(&str, &str)]) {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(vars.iter().copied())
        .env("AIRLOCK_EXEC_PROBE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "probe {name} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn path_and_environment_of_airlock_do_not_reach_the_child() {
    let w = world();
    // airlock's own PATH starts with the agent's directory holding fake programs.
    let path = format!("{}:/usr/bin:/bin", w.work.display());
    probe(
        "probe_parent_environment",
        &[
            ("PATH", path.as_str()),
            ("LD_PRELOAD", "/nonexistent/airlock-test-preload.so"),
            ("LD_LIBRARY_PATH", "/tmp"),
            ("BASH_ENV", "/tmp/evil-bash-env"),
            ("ENV", "/tmp/evil-env"),
            ("DYLD_INSERT_LIBRARIES", "/tmp/x.dylib"),
            ("OTHER_SECRET", "sk_other_secret_value_123"),
            ("GIT_SSH_COMMAND", "touch /tmp/pwned"),
        ],
    );
}

#[test]
#[ignore = "run by path_and_environment_of_airlock_do_not_reach_the_child"]
fn probe_parent_environment() {
    if std::env::var_os("AIRLOCK_EXEC_PROBE").is_none() {
        return;
    }
    let w = world();
    // Compiled with an explicit owner PATH: airlock's own (poisoned) PATH is not
    // used to resolve, and does not reach the child.
    let p = policy(
        &w,
        &["env", "sh", "tool"],
        &[("API_KEY", "{{secret}}"), ("PLAIN", "plain-value")],
        &[],
    );
    let cwd = w.cwd();
    let out = run(&p, &["tool"], cwd, Stdin::Null);
    assert!(stdout(&out).starts_with("canonical tool: "), "{out:?}");

    let out = run(&p, &["env"], cwd, Stdin::Null);
    let text = stdout(&out);
    let keys: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string()))
        .collect();
    let mut expected: BTreeSet<String> = BASE_ENV.iter().map(|s| s.to_string()).collect();
    for i in 0..GIT_CONFIG_OVERRIDES.len() {
        expected.insert(format!("GIT_CONFIG_KEY_{i}"));
        expected.insert(format!("GIT_CONFIG_VALUE_{i}"));
    }
    expected.insert("API_KEY".into());
    expected.insert("PLAIN".into());
    assert_eq!(keys, expected, "{text}");
    for absent in [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "BASH_ENV",
        "ENV=",
        "DYLD_",
        "OTHER_SECRET",
        "sk_other",
        "GIT_SSH_COMMAND",
        "evil",
    ] {
        assert!(!text.contains(absent), "{absent} leaked:\n{text}");
    }
    assert!(
        text.contains(&format!("API_KEY=[REDACTED:{}]", "cap"))
            || text.contains("API_KEY=[REDACTED:"),
        "{text}"
    );
    assert!(text.contains("PLAIN=plain-value"));
    assert!(text.contains("PATH=") && !text.contains(&format!("PATH={}", w.work.display())));
    assert!(!text.contains(SECRET));

    // The secret is really there, under its name, and HOME is private.
    let out = run(
        &p,
        &[
            "sh",
            "-c",
            "[ \"$API_KEY\" = \"$1\" ] && echo key-ok; stat -c %a \"$HOME\"; echo \"home=$HOME\"; [ -d \"$TMPDIR\" ] && echo tmp-ok",
            "sh",
            SECRET,
        ],
        cwd,
        Stdin::Null,
    );
    let text = stdout(&out);
    assert!(text.starts_with("key-ok\n700\nhome="), "{out:?}");
    assert!(text.contains("tmp-ok"));
    let home = text
        .lines()
        .find_map(|l| l.strip_prefix("home="))
        .unwrap()
        .to_string();
    assert!(!Path::new(&home).exists(), "HOME {home} not removed");
}

// ---------------------------------------------------------------------------------
// Argument guards.

#[test]
fn git_trampolines_and_deny_args_are_refused() {
    let w = world();
    let p = policy(
        &w,
        &["git", "tool"],
        &[],
        &["--force", "--output=", "--yes"],
    );
    let cwd = w.cwd();
    for bad in [
        &["git", "-c", "alias.x=!sh -c 'id'", "x"][..],
        &["git", "-c", "core.sshCommand=touch /tmp/p", "fetch"],
        &["git", "-c", "core.pager=sh", "log"],
        &["git", "-c", "credential.helper=!sh", "fetch"],
        &["git", "--config-env=core.editor=EVIL", "commit"],
        &["git", "--config-env", "core.editor=EVIL", "commit"],
        &["git", "clone", "--upload-pack=touch /tmp/p", "repo"],
        &["git", "clone", "-u", "touch /tmp/p", "repo"],
        &["git", "fetch", "--upload-pack", "x", "origin"],
        &["git", "ls-remote", "--upload-pack=x", "origin"],
        &["git", "push", "--receive-pack=x", "origin"],
        &["git", "push", "--receive-p", "x", "origin"],
        &["git", "--exec-path=/tmp", "status"],
        &["git", "--exec-path"],
        &["git", "x"],
        &["git", "config", "alias.x", "!sh"],
        &["git", "rebase", "--exec", "sh"],
        &["git", "-C", "/", "status"],
        &["git", "push", "--force", "origin"],
        &["tool", "--output", "/etc/x"],
        &["tool", "--output=/etc/x"],
        &["tool", "--yes"],
    ] {
        let r = p.check(&strings(bad), cwd);
        assert!(matches!(r, Err(Refusal::Argument { .. })), "{bad:?}: {r:?}");
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains("refused"), "{msg}");
    }
    // Ordinary use still works (and reaches the allowed program).
    let out = run(
        &p,
        &["git", "push", "-u", "origin", "main"],
        cwd,
        Stdin::Null,
    );
    assert_eq!(stdout(&out), "fake git: push -u origin main\n");
}

#[test]
fn env_and_shell_wrappers_need_the_allow_list() {
    let w = world();
    let p = policy(&w, &["env", "tool"], &[], &[]);
    let cwd = w.cwd();
    assert!(matches!(
        p.check(&strings(&["env", "sh", "-c", "id"]), cwd),
        Err(Refusal::Argument { .. })
    ));
    assert!(matches!(
        p.check(&strings(&["env", "-S", "sh -c id"]), cwd),
        Err(Refusal::Argument { .. })
    ));
    assert!(matches!(
        p.check(&strings(&["sh", "-c", "id"]), cwd),
        Err(Refusal::ProgramNotAllowed { .. })
    ));
}

// Issue 12: git as a way to read, write and run outside the workdirs.

#[test]
fn git_reads_writes_and_templates_outside_the_workdirs_are_refused() {
    let w = world();
    let p = policy(&w, &["git"], &[], &[]);
    let cwd = w.cwd();
    for bad in [
        // Reads: explicit and implicit --no-index, in the abbreviations git takes.
        &["git", "diff", "--no-index", "/etc/passwd", "/dev/null"][..],
        &["git", "diff", "--no-ind", "/etc/passwd", "/dev/null"],
        &["git", "grep", "--no-index", "root", "/etc/passwd"],
        &["git", "grep", "--no-ind", "root", "/etc/passwd"],
        &["git", "diff", "/etc/passwd", "/dev/null"],
        &["git", "diff", "--", "/etc/passwd", "/dev/null"],
        &["git", "diff", "../../etc/passwd", "a"],
        &["git", "hash-object", "-w", "/etc/passwd"],
        &["git", "blame", "--contents", "/etc/passwd", "f"],
        &["git", "archive", "--add-file=/etc/passwd", "HEAD"],
        &["git", "clone", "--reference=/home/o/private", "https://x/y"],
        // Writes.
        &["git", "diff", "--output=/tmp/airlock-x"],
        &["git", "log", "-p", "--output", "/tmp/airlock-x"],
        &["git", "diff", "--out=/tmp/airlock-x"],
        &["git", "format-patch", "-1", "-o", "/tmp/airlock-d"],
        &[
            "git",
            "format-patch",
            "-1",
            "--output-directory=/tmp/airlock-d",
        ],
        &["git", "archive", "-o", "/tmp/airlock-x.tar", "HEAD"],
        &["git", "apply", "--unsafe-paths", "p.patch"],
        &["git", "apply", "--unsafe-p", "p.patch"],
        &["git", "init", "--separate-git-dir=/tmp/airlock-g"],
        // Templates install a config and hooks that later commands obey.
        &["git", "init", "--template=/tmp/airlock-t"],
        &["git", "init", "--templ=/tmp/airlock-t"],
        &["git", "init", "--template", "/tmp/airlock-t", "r"],
        &["git", "clone", "--templ=/tmp/airlock-t", "https://x/y"],
        // Where git finds programs, and other directories than cwd.
        &["git", "--exec-path=/tmp", "status"],
        &["git", "status", "--exec-path=/tmp"],
        &["git", "-C", "/", "status"],
        &["git", "-C", "sub", "status"],
        &["git", "--git-dir=/tmp/x/.git", "status"],
        &["git", "--work-tree=/", "status"],
    ] {
        let r = p.check(&strings(bad), cwd);
        assert!(matches!(r, Err(Refusal::Argument { .. })), "{bad:?}: {r:?}");
    }
    for ok in [
        &["git", "diff", "HEAD~1..HEAD", "--", "src"][..],
        &["git", "diff", "--stat"],
        &["git", "apply", "--index", "p.patch"],
        &["git", "init", "-q", "repo"],
        &["git", "grep", "-n", "x"],
    ] {
        assert!(p.check(&strings(ok), cwd).is_ok(), "{ok:?}");
    }
}

/// The owner's hand: runs the real git in `dir` with a clean environment (no
/// airlock involved), for setting up repositories and for control runs.
fn owner_git(dir: &Path, home: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("/usr/bin/git")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "o")
        .env("GIT_AUTHOR_EMAIL", "o@example.com")
        .env("GIT_COMMITTER_NAME", "o")
        .env("GIT_COMMITTER_EMAIL", "o@example.com")
        .output()
        .unwrap()
}

#[test]
fn real_git_ignores_programs_named_by_an_agent_written_repository() {
    if !Path::new("/usr/bin/git").exists() {
        return; // no git on this machine
    }
    let w = world();
    let root = w.work.parent().unwrap().to_path_buf();
    let marker = root.join("marker");
    // The agent's payload: appends its name and arguments to `marker`.
    let evil = root.join("evil.sh");
    script(&evil, &format!("echo \"$0 $*\" >> '{}'", marker.display()));
    let hooks = root.join("hooks");
    std::fs::create_dir(&hooks).unwrap();
    for hook in ["pre-commit", "commit-msg", "post-commit"] {
        std::os::unix::fs::symlink(&evil, hooks.join(hook)).unwrap();
    }
    let secret_file = root.join("master.key");
    std::fs::write(&secret_file, "MASTER-KEY-CONTENT\n").unwrap();

    let repo = w.work.join("repo");
    std::fs::create_dir(&repo).unwrap();
    let owner_home = root.join("owner-home");
    std::fs::create_dir(&owner_home).unwrap();
    let g = |args: &[&str]| {
        let out = owner_git(&repo, &owner_home, args);
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    g(&["init", "-q"]);
    std::fs::write(repo.join("f.txt"), "hello\n").unwrap();
    g(&["add", "f.txt"]);
    g(&["commit", "-q", "-m", "one"]);
    for hook in ["pre-commit", "post-commit"] {
        std::os::unix::fs::symlink(&evil, repo.join(".git/hooks").join(hook)).unwrap();
    }
    // What an agent that can write the workdir writes into .git/config.
    let mut config = std::fs::read_to_string(repo.join(".git/config")).unwrap();
    config.push_str(&format!(
        "[diff]\n\texternal = {evil}\n[core]\n\tfsmonitor = {evil}\n\thooksPath = {hooks}\n\
         \tpager = {evil}\n[pager]\n\tlog = {evil}\n[commit]\n\ttemplate = {key}\n\
         [protocol \"ext\"]\n\tallow = always\n[protocol \"file\"]\n\tallow = always\n",
        evil = evil.display(),
        hooks = hooks.display(),
        key = secret_file.display(),
    ));
    std::fs::write(repo.join(".git/config"), config).unwrap();
    std::fs::write(repo.join("f.txt"), "hello\nworld\n").unwrap();

    // Control: without airlock's environment the payload runs.
    owner_git(&repo, &owner_home, &["diff"]);
    assert!(marker.exists(), "the control run did not run diff.external");
    std::fs::remove_file(&marker).unwrap();

    let owner = OwnerEnv {
        path: "/usr/bin:/bin".into(),
        ..w.owner.clone()
    };
    let env: BTreeMap<String, String> = [
        ("GIT_AUTHOR_NAME", "a"),
        ("GIT_AUTHOR_EMAIL", "a@example.com"),
        ("GIT_COMMITTER_NAME", "a"),
        ("GIT_COMMITTER_EMAIL", "a@example.com"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    // Without the kernel sandbox: this checks the configuration layer alone.
    let p = ExecPolicy::from_parts(
        "git",
        &strings(&["git"]),
        &[w.work.display().to_string()],
        &[],
        &env,
        &owner,
    )
    .unwrap()
    .unconfined()
    .with_timeout(Duration::from_secs(20));
    let repo_dir = repo.display().to_string();
    let git = |args: &[&str]| {
        let mut command = vec!["git"];
        command.extend_from_slice(args);
        run(&p, &command, Some(&repo_dir), Stdin::Null)
    };

    // git diff: the diff still works (an ordinary unified diff), the payload
    // does not run; nor as fsmonitor (status), nor under log -p / show.
    let out = git(&["diff"]);
    assert!(out.exit.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("--- a/f.txt") && text.contains("+++ b/f.txt") && text.contains("+world"),
        "{text}"
    );
    let out = git(&["status", "--short"]);
    assert_eq!(stdout(&out), " M f.txt\n", "{out:?}");
    let out = git(&["-p", "log", "-p", "-1"]);
    assert!(
        out.exit.success() && stdout(&out).contains("+hello"),
        "{out:?}"
    );
    let out = git(&["show", "--stat", "HEAD"]);
    assert!(out.exit.success(), "{out:?}");

    // git commit: no hook runs (neither core.hooksPath nor .git/hooks), and the
    // template (a file outside the workdir) does not become the message.
    let out = git(&["commit", "-q", "-a", "-m", "two"]);
    assert!(out.exit.success(), "{out:?}");
    std::fs::write(repo.join("f.txt"), "hello\nworld\nagain\n").unwrap();
    let out = git(&["commit", "-q", "-a"]);
    assert!(!out.exit.success(), "committed with the template: {out:?}");
    let out = git(&["log", "--format=%B"]);
    assert!(!stdout(&out).contains("MASTER-KEY"), "{out:?}");

    // Transports the repository allows itself are still refused.
    let ext = format!("ext::sh -c touch% {}", marker.display());
    let out = git(&["ls-remote", &ext]);
    assert!(!out.exit.success(), "{out:?}");
    let other = root.join("owner-home").display().to_string();
    let out = git(&["ls-remote", &other]);
    assert!(!out.exit.success(), "{out:?}");

    assert!(
        !marker.exists(),
        "the agent's program ran: {}",
        std::fs::read_to_string(&marker).unwrap_or_default()
    );
}

#[test]
fn git_global_configuration_is_a_private_file_removed_after() {
    let w = world();
    let p = policy(&w, &["sh"], &[], &[]);
    let out = run(
        &p,
        &[
            "sh",
            "-c",
            "echo \"$HOME\"; echo \"$GIT_CONFIG_GLOBAL\"; stat -c %a \"$GIT_CONFIG_GLOBAL\"; echo \"$GIT_ALLOW_PROTOCOL\"; echo \"$GIT_CONFIG_NOSYSTEM\"",
        ],
        None,
        Stdin::Null,
    );
    assert!(out.exit.success(), "{out:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let [home, global, mode, protocols, nosystem] = lines[..] else {
        panic!("{text}");
    };
    assert!(Path::new(global).starts_with(home), "{text}");
    assert_eq!(mode, "600");
    assert_eq!(protocols, "https:http");
    assert_eq!(nosystem, "1");
    assert!(!Path::new(global).exists(), "{global} not removed");

    // The capability's env cannot set what airlock pins.
    for key in [
        "GIT_CONFIG_GLOBAL",
        "GIT_ALLOW_PROTOCOL",
        "GIT_CONFIG_NOSYSTEM",
    ] {
        let env: BTreeMap<String, String> = [(key.to_string(), "/tmp/x".to_string())].into();
        let r = ExecPolicy::from_parts("cap", &strings(&["sh"]), &[], &[], &env, &w.owner);
        assert!(r.is_err(), "{key} accepted");
    }
}

#[test]
fn cwd_must_lie_inside_a_workdir() {
    let w = world();
    let p = policy(&w, &["tool"], &[], &[]);
    std::fs::create_dir(w.work.join("sub")).unwrap();
    let outside = w.work.parent().unwrap().join("owner-bin");
    // A sibling whose name starts with the workdir's: a string prefix, not a path one.
    let sibling = PathBuf::from(format!("{}-evil", w.work.display()));
    std::fs::create_dir(&sibling).unwrap();
    std::os::unix::fs::symlink(&outside, w.work.join("escape")).unwrap();
    let ok = |c: &str| p.check(&strings(&["tool"]), Some(c));
    assert_eq!(
        ok(w.work.join("sub").to_str().unwrap()).unwrap().cwd,
        Some(w.work.join("sub"))
    );
    assert_eq!(ok("sub").unwrap().cwd, Some(w.work.join("sub")));
    for bad in [
        outside.display().to_string(),
        sibling.display().to_string(),
        w.work.join("escape").display().to_string(),
        "escape".into(),
        "../owner-bin".into(),
        "/".into(),
    ] {
        assert!(
            matches!(ok(&bad), Err(Refusal::CwdOutside { .. })),
            "{bad}: {:?}",
            ok(&bad)
        );
    }
    assert!(matches!(ok("missing"), Err(Refusal::CwdInvalid { .. })));
    // Without workdirs, no cwd at all; the command runs in its private HOME.
    let p = commands_only(&["sh"], &w.owner).unwrap();
    assert!(matches!(
        p.check(&strings(&["sh"]), Some("/tmp")),
        Err(Refusal::CwdNotAllowed { .. })
    ));
    let out = run(
        &p,
        &["sh", "-c", "[ \"$PWD\" = \"$HOME\" ] && echo in-home"],
        None,
        Stdin::Null,
    );
    assert_eq!(stdout(&out), "in-home\n");
}

// ---------------------------------------------------------------------------------
// Process lifetime and limits.

/// Processes (other than zombies) whose process group is `pgid`.
fn live_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp …; comm may contain spaces: split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            out.push(pid);
        }
    }
    out
}

/// Waits (up to 10 s) for the child to write its background process's pid to
/// `pid_file`, then checks that the process is alive (not a zombie) and in process
/// group `pgid`, so that "the group is empty" afterwards means it was killed, not
/// that it never started or ran elsewhere. Returns the pid.
fn background_member(pid_file: &Path, pgid: i32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Ok(text) = std::fs::read_to_string(pid_file)
            && text.ends_with('\n')
        {
            break text.trim().parse::<i32>().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the child never wrote {}",
            pid_file.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("background process {pid} is not running: {e}"));
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    assert_ne!(
        fields[0], "Z",
        "background process {pid} already exited: {stat}"
    );
    assert_eq!(
        fields[2],
        pgid.to_string(),
        "background process {pid} is not in the child's process group: {stat}"
    );
    assert!(live_members(pgid).contains(&pid));
    pid
}

/// Runs `launch` to its end. Its child writes the pid of a process it leaves in
/// the background to `pid_file`; once that process is seen in the child's group,
/// `then` runs. After the end the group must be empty (`survived(pid)` says
/// what a survivor means). The output and the background process's pid.
fn run_watching_the_group(
    launch: Launch,
    pid_file: &Path,
    then: impl FnOnce(),
    survived: impl FnOnce(i32) -> String,
) -> (airlock_exec::Output, i32) {
    let (out, pgid, bg) = rt().block_on(async {
        let running = launch.spawn(&Scrubber::empty()).unwrap();
        let pgid = running.pid();
        let bg = background_member(pid_file, pgid);
        then();
        (running.output().await.unwrap(), pgid, bg)
    });
    assert_group_gone(pgid, &survived(bg));
    (out, bg)
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let w = world();
    let p = policy(&w, &["sh"], &[], &[]).with_timeout(Duration::from_millis(800));
    let pid_file = w.work.join("background.pid");
    let inv = p
        .check(
            &strings(&[
                "sh",
                "-c",
                &format!(
                    "sleep 100 & echo $! > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}; \
                     echo grandchild=$!; sh -c 'sleep 100' ; echo unreachable",
                    pid_file = pid_file.display()
                ),
            ]),
            None,
        )
        .unwrap();
    let launch = p.prepare(inv, Some(&secret()), Stdin::Null).unwrap();
    let started = Instant::now();
    let (out, bg) = run_watching_the_group(
        launch,
        &pid_file,
        || {},
        |bg| format!("processes of the group survived (background process was {bg})"),
    );
    assert!(out.exit.timed_out, "{out:?}");
    assert_eq!(out.exit.exit_code(), 137);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        stdout(&out).lines().next(),
        Some(format!("grandchild={bg}").as_str()),
        "{out:?}"
    );
    assert!(!stdout(&out).contains("unreachable"));
}

#[test]
fn background_processes_left_behind_are_killed_at_exit() {
    let w = world();
    let p = policy(&w, &["sh"], &[], &[]);
    let pid_file = w.work.join("background.pid");
    let go = w.work.join("go");
    // The child leaves `sleep` behind, but only after the test has seen it running
    // in the group (it waits for `go`).
    let script = format!(
        "sleep 100 & echo $! > {pid}.tmp && mv {pid}.tmp {pid}; \
         while [ ! -e {go} ]; do sleep 0.01; done; echo started",
        pid = pid_file.display(),
        go = go.display()
    );
    let inv = p.check(&strings(&["sh", "-c", &script]), None).unwrap();
    let launch = p.prepare(inv, None, Stdin::Null).unwrap();
    let started = Instant::now();
    let (out, _) = run_watching_the_group(
        launch,
        &pid_file,
        || std::fs::write(&go, b"").unwrap(),
        |bg| format!("background process {bg} survived the child's exit"),
    );
    assert_eq!(stdout(&out), "started\n");
    assert!(out.exit.success() && !out.exit.timed_out);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn output_caps_truncate_and_say_so() {
    let w = world();
    let p = policy(&w, &["sh"], &[], &[]);
    let inv = p
        .check(
            &strings(&[
                "sh",
                "-c",
                "head -c 3000000 /dev/zero | tr '\\0' a; echo err >&2",
            ]),
            None,
        )
        .unwrap();
    let launch = p.prepare(inv, None, Stdin::Null).unwrap();
    let out = rt()
        .block_on(async { launch.spawn(&Scrubber::empty()).unwrap().output().await })
        .unwrap();
    assert_eq!(out.stdout.len(), airlock_exec::DEFAULT_MAX_OUTPUT);
    assert!(out.stdout_truncated && !out.stderr_truncated);
    assert!(
        out.exit.success(),
        "the child is drained, not blocked: {:?}",
        out.exit
    );
    let json = out.to_json();
    assert_eq!(json["truncated"], true);
    assert!(
        json["stdout"]
            .as_str()
            .unwrap()
            .ends_with(airlock_exec::TRUNCATION_NOTE)
    );
    assert_eq!(json["stderr"], "err\n");
    assert_eq!(json["exit_code"], 0);

    // Custom caps, and stdin passed through.
    let inv = p
        .check(&strings(&["sh", "-c", "cat; cat >&2 </dev/null"]), None)
        .unwrap();
    let launch = p
        .prepare(inv, None, Stdin::Bytes(b"0123456789".to_vec()))
        .unwrap()
        .limits(Limits {
            max_stdout: Some(4),
            max_stderr: None,
        });
    let out = rt()
        .block_on(async { launch.spawn(&Scrubber::empty()).unwrap().output().await })
        .unwrap();
    assert_eq!(out.stdout, b"0123");
    assert!(out.stdout_truncated);
}

#[test]
fn piped_stdin_for_relays() {
    let launch = sh_c("while IFS= read -r l; do echo \"got $l\"; done").stdin(Stdin::Piped);
    let out = rt().block_on(async {
        use tokio::io::AsyncWriteExt as _;
        let mut running = launch.spawn(&Scrubber::empty()).unwrap();
        let mut pipe = running.take_stdin().unwrap();
        assert!(running.take_stdin().is_none());
        pipe.write_all(b"one\ntwo\n").await.unwrap();
        drop(pipe);
        running.output().await.unwrap()
    });
    assert_eq!(stdout(&out), "got one\ngot two\n");
}

#[test]
fn stdin_is_dev_null_unless_given() {
    let w = world();
    let p = policy(&w, &["sh"], &[], &[]);
    let out = run(&p, &["sh", "-c", "cat; echo done"], None, Stdin::Null);
    assert_eq!(stdout(&out), "done\n");
}

// ---------------------------------------------------------------------------------
// Scrubbing.

fn hex(s: &[u8]) -> String {
    s.iter().map(|b| format!("{b:02x}")).collect()
}

fn url_encode(s: &[u8]) -> String {
    s.iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every form of the secret the test child prints.
fn forms() -> Vec<String> {
    let s = SECRET.as_bytes();
    vec![
        SECRET.to_string(),
        base64::engine::general_purpose::STANDARD.encode(s),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s),
        hex(s),
        hex(s).to_uppercase(),
        url_encode(s),
    ]
}

/// A script printing every form, to stdout and stderr, then the secret split
/// across writes with pauses, and `$API_KEY` through base64(1).
fn leaky_script(dir: &Path) -> PathBuf {
    let mut body = String::new();
    for f in forms() {
        body.push_str(&format!(
            "printf 'out:%s\\n' '{f}'\nprintf 'err:%s\\n' '{f}' >&2\n"
        ));
    }
    let (a, b) = SECRET.split_at(9);
    body.push_str(&format!(
        "printf 'split:%s' '{a}'; sleep 0.3; printf '%s\\n' '{b}'\n\
         printf '%s' '{a}' >&2; sleep 0.3; printf '%s\\n' '{b}' >&2\n\
         printf '%s' \"$API_KEY\" | base64\n\
         printf 'chunked:'; printf '%s\\n' \"$API_KEY\" | fold -w 3 | while IFS= read -r c; do printf '%s' \"$c\"; sleep 0.05; done; echo\n"
    ));
    let path = dir.join("leak.sh");
    std::fs::write(&path, body).unwrap();
    path
}

fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for f in forms() {
        assert!(!text.contains(&f), "{what}: form {f} leaked:\n{text}");
    }
    let b64_core = &base64::engine::general_purpose::STANDARD.encode(SECRET.as_bytes())[..40];
    assert!(!text.contains(b64_core), "{what}: base64 leaked:\n{text}");
    assert!(text.contains("[REDACTED:stripe]"), "{what}:\n{text}");
}

/// The policy of exec capability `cap` of a config with one bearer service
/// (`service` at `url`, secret `secret`): it runs `command` with `var` set to
/// the secret, in `w.work`, plus the `extra` lines of the capability.
fn exec_policy(
    w: &World,
    (service, url, secret): (&str, &str, &str),
    (cap, command, var): (&str, &str, &str),
    extra: &str,
) -> ExecPolicy {
    let toml = format!(
        r#"
[services.{service}]
url = "{url}"
auth = {{ type = "bearer", secret = "{secret}" }}

[capabilities.{cap}]
service = "{service}"
mode = "exec"
commands = ["{command}"]
env = {{ {var} = "{{{{secret}}}}" }}
workdirs = ["{}"]
{extra}
"#,
        w.work.display()
    );
    let config = airlock_config::Config::parse(Path::new("airlock.toml"), &toml).unwrap();
    ExecPolicy::new(
        config.capability(cap).unwrap(),
        &config.services[service],
        &w.owner,
    )
    .unwrap()
}

fn leaky_policy(w: &World) -> ExecPolicy {
    let p = exec_policy(
        w,
        ("stripe", "https://api.stripe.com", NAME),
        ("stripe_cli", "sh", "API_KEY"),
        "timeout = \"20s\"",
    );
    assert_eq!(p.secret_name(), Some(NAME));
    assert_eq!(p.timeout(), Duration::from_secs(20));
    assert!(p.git_credential().is_none());
    p
}

#[test]
fn output_is_scrubbed_buffered() {
    let w = world();
    let p = leaky_policy(&w);
    let script = leaky_script(&w.work);
    let out = run(&p, &["sh", script.to_str().unwrap()], None, Stdin::Null);
    assert!(out.exit.success(), "{out:?}");
    assert_clean("stdout", &out.stdout);
    assert_clean("stderr", &out.stderr);
    let text = stdout(&out);
    assert!(text.contains("split:[REDACTED:stripe]\n"), "{text}");
    assert!(text.contains("chunked:[REDACTED:stripe]\n"), "{text}");
    assert_eq!(
        text.matches("[REDACTED:stripe]").count(),
        forms().len() + 3,
        "{text}"
    );
    let json = out.to_json().to_string();
    assert!(!json.contains(SECRET));
}

#[test]
fn output_is_scrubbed_streamed() {
    let w = world();
    let p = leaky_policy(&w);
    let script = leaky_script(&w.work);
    let inv = p
        .check(&strings(&["sh", script.to_str().unwrap()]), None)
        .unwrap();
    // The caller's scrubber knows other secrets too; both are redacted.
    let base = Scrubber::new([("other", &b"another-vault-secret"[..])]).unwrap();
    let launch = p.prepare(inv, Some(&secret()), Stdin::Null).unwrap();
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let (exit, ot, et) = rt()
        .block_on(async { launch.spawn(&base).unwrap().stream(&mut o, &mut e).await })
        .unwrap();
    assert!(exit.success() && !ot && !et);
    assert_clean("stdout", &o);
    assert_clean("stderr", &e);
}

#[test]
fn streaming_forwards_as_output_arrives_and_keeps_colours() {
    let launch = sh_c("printf '\\033[31mred\\033[0m\\n'; sleep 1; echo later");
    rt().block_on(async {
        let running = launch.spawn(&Scrubber::empty()).unwrap();
        let (mut w, mut r) = tokio::io::duplex(1024);
        let mut err = Vec::new();
        let reader = tokio::spawn(async move {
            use tokio::io::AsyncReadExt as _;
            let mut first = [0u8; 13];
            let started = Instant::now();
            r.read_exact(&mut first).await.unwrap();
            let waited = started.elapsed();
            let mut rest = Vec::new();
            r.read_to_end(&mut rest).await.unwrap();
            assert_eq!(rest, b"later\n");
            (first, waited)
        });
        let (exit, _, _) = running.stream(&mut w, &mut err).await.unwrap();
        drop(w);
        assert!(exit.success());
        let (first, waited) = reader.await.unwrap();
        assert_eq!(&first, b"\x1b[31mred\x1b[0m\n");
        assert!(
            waited < Duration::from_millis(900),
            "not streamed: {waited:?}"
        );
    });
}

#[test]
fn signaller_reaches_the_child() {
    let launch =
        sh_c("trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done");
    let out = rt().block_on(async {
        let running = launch.spawn(&Scrubber::empty()).unwrap();
        let sig = running.signaller();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(sig.signal(15));
        });
        running.output().await.unwrap()
    });
    assert_eq!(stdout(&out), "ready\ngot-term\n");
    assert_eq!(out.exit.exit_code(), 3);
}

// ---------------------------------------------------------------------------------
// git askpass.

#[test]
fn askpass_answers_only_for_the_service_host() {
    let w = world();
    // A git-like fake: asks the helper like git does and reports, without printing
    // the token itself, what it got.
    script(
        &w.bin.join("git"),
        r#"ask() { got=$("$GIT_ASKPASS" "$1"); rc=$?
  if [ -z "$got" ]; then echo "nothing (rc=$rc) for $1"
  elif [ "$got" = "$GH_TOKEN" ]; then echo "TOKEN for $1"
  else echo "answer '$got' for $1"; fi; }
ask "Username for 'https://github.com': "
ask "Password for 'https://x-access-token@github.com': "
ask "Password for 'https://x-access-token@evil.example': "
ask "Password for 'https://x-access-token@github.com.evil.example': "
ask "Password for 'https://x@evil.example/@github.com': "
ask "Password for 'http://x-access-token@github.com': "
ask "Username for 'https://evil.example': "
grep -c "$GH_TOKEN" "$GIT_ASKPASS"
stat -c %a "$GIT_ASKPASS"
echo "helper=$GIT_ASKPASS""#,
    );
    let p = exec_policy(
        &w,
        ("github", "https://api.github.com", "gh"),
        ("gh", "git", "GH_TOKEN"),
        "",
    );
    let cred: &GitCredential = p.git_credential().unwrap();
    assert_eq!(
        cred.origins,
        ["https://api.github.com", "https://github.com"]
    );
    let token: SecretSlice<u8> = b"ghs_0123456789abcdefTOKEN".to_vec().into();
    let inv = p
        .check(&strings(&["git", "fetch", "origin"]), None)
        .unwrap();
    let launch = p.prepare(inv, Some(&token), Stdin::Null).unwrap();
    let out = rt()
        .block_on(async { launch.spawn(&Scrubber::empty()).unwrap().output().await })
        .unwrap();
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "answer 'x-access-token' for Username for 'https://github.com': ",
        "{text}"
    );
    assert_eq!(
        lines[1],
        "TOKEN for Password for 'https://x-access-token@github.com': "
    );
    for l in &lines[2..7] {
        assert!(l.starts_with("nothing (rc=1)"), "{l}\n{text}");
    }
    assert_eq!(lines[7], "0", "the helper file contains the token");
    assert_eq!(lines[8], "700");
    let helper = lines[9].strip_prefix("helper=").unwrap();
    assert!(!Path::new(helper).exists(), "helper not removed");
    assert!(!text.contains("ghs_0123456789abcdefTOKEN"));
}

// ---------------------------------------------------------------------------------
// airlock:// references.

fn lookup(name: &str) -> Option<SecretSlice<u8>> {
    match name {
        "stripe" => Some(SECRET.as_bytes().to_vec().into()),
        "db.password" => Some(b"hunter2-long-password".to_vec().into()),
        _ => None,
    }
}

#[test]
fn env_file_references_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(
        &path,
        "# comment\nexport STRIPE_KEY=airlock://stripe\nDB_PASSWORD=\"airlock://db.password\"\nMODE=test # trailing\nQUOTED='a # b'\n",
    )
    .unwrap();
    let env = reference::resolve_env_file(&path, &lookup).unwrap();
    assert_eq!(env.get("STRIPE_KEY"), Some(SECRET.as_bytes()));
    assert_eq!(env.get("DB_PASSWORD"), Some(&b"hunter2-long-password"[..]));
    assert_eq!(env.get("MODE"), Some(&b"test"[..]));
    assert_eq!(env.get("QUOTED"), Some(&b"a # b"[..]));
    assert_eq!(
        env.secret_names().collect::<Vec<_>>(),
        ["stripe", "db.password"]
    );
    let dbg = format!("{env:?}");
    assert!(
        !dbg.contains("hunter2") && !dbg.contains("sk_live"),
        "{dbg}"
    );

    // Run a program with it: the secrets are in its environment and scrubbed
    // from its output under their names.
    let launch = sh_c("echo $STRIPE_KEY; echo $DB_PASSWORD; echo $MODE").envs(env);
    let out = rt()
        .block_on(async { launch.spawn(&Scrubber::empty()).unwrap().output().await })
        .unwrap();
    assert_eq!(
        stdout(&out),
        "[REDACTED:stripe]\n[REDACTED:db.password]\ntest\n"
    );

    // The process environment and wrap --env.
    let vars = vec![
        (OsString::from("A"), OsString::from("airlock://stripe")),
        (OsString::from("B"), OsString::from("see airlock://stripe")),
    ];
    let env = reference::resolve_environment(vars, &lookup).unwrap();
    assert_eq!(env.get("A"), Some(SECRET.as_bytes()));
    assert_eq!(env.get("B"), Some(&b"see airlock://stripe"[..]));
    let env = reference::resolve_assignment("KEY=airlock://stripe", &lookup).unwrap();
    assert_eq!(env.get("KEY"), Some(SECRET.as_bytes()));
}

#[test]
fn malformed_env_files_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.env");
    let cases: &[(&str, usize, &str)] = &[
        ("A=1\nthis is not an assignment\n", 2, "expected KEY=VALUE"),
        ("A=1\n\n1BAD=x\n", 3, "invalid variable name"),
        ("A=\"open\nstill open\n", 1, "unterminated"),
        ("A='x' trailing\n", 1, "after the closing quote"),
        ("A=1\nB=airlock://nope\n", 2, "unknown secret \"nope\""),
        ("B=airlock://bad name\n", 1, "invalid secret name"),
        ("URL=postgres://u:airlock://stripe@h\n", 1, "whole value"),
    ];
    for (text, line, needle) in cases {
        std::fs::write(&path, text).unwrap();
        let err = reference::resolve_env_file(&path, &lookup).unwrap_err();
        let msg = err.to_string();
        let prefix = format!("{}:{line}: ", path.display());
        assert!(msg.starts_with(&prefix), "{text:?}: {msg}");
        assert!(msg.contains(needle), "{text:?}: {msg}");
        assert!(!msg.contains("sk_live"));
    }
    let err = reference::resolve_env_file(&dir.path().join("missing.env"), &lookup).unwrap_err();
    assert!(matches!(err, ReferenceError::Read { .. }));
    let err = reference::resolve_assignment("KEY", &lookup).unwrap_err();
    assert!(err.to_string().contains("VAR=airlock://NAME"));
}

// ---------------------------------------------------------------------------------
// Real git against two local HTTP servers that demand Basic auth.

/// A server on 127.0.0.1 that answers every request with 401 + `WWW-Authenticate:
/// Basic` and records each request's `Authorization` header ("none" without one).
fn basic_auth_server() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut auth = "none".to_string();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line
                    .strip_prefix("Authorization: ")
                    .or_else(|| line.strip_prefix("authorization: "))
                {
                    auth = v.trim().to_string();
                }
            }
            log.lock().unwrap().push(auth);
            let mut stream = stream;
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (port, seen)
}

#[test]
fn real_git_sends_the_token_only_to_the_service_host() {
    if airlock_exec::find_program("git", std::ffi::OsStr::new("/usr/bin:/bin")).is_none() {
        return; // no git on this machine
    }
    let w = world();
    let (good, good_seen) = basic_auth_server();
    let (other, other_seen) = basic_auth_server();
    let owner = OwnerEnv {
        path: "/usr/bin:/bin".into(),
        ..w.owner.clone()
    };
    let env: BTreeMap<String, String> = [("GH_TOKEN".to_string(), "{{secret}}".to_string())].into();
    // The askpass flow needs the network: this capability says `network = "direct"`.
    let p = ExecPolicy::from_parts("gh", &strings(&["git"]), &[], &[], &env, &owner)
        .unwrap()
        .with_network(airlock_exec::Network::Direct)
        .with_timeout(Duration::from_secs(20))
        .with_git_credential(Some(GitCredential {
            origins: vec![format!("http://127.0.0.1:{good}")],
            token_var: "GH_TOKEN".into(),
            username: "x-access-token".into(),
        }));
    let token: SecretSlice<u8> = b"ghs_realGitToken0123456789".to_vec().into();
    for port in [good, other] {
        let url = format!("http://127.0.0.1:{port}/o/r.git");
        let inv = p
            .check(&strings(&["git", "ls-remote", &url]), None)
            .unwrap();
        let launch = p.prepare(inv, Some(&token), Stdin::Null).unwrap();
        let out = rt()
            .block_on(async { launch.spawn(&Scrubber::empty()).unwrap().output().await })
            .unwrap();
        assert!(!out.exit.success(), "{out:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("ghs_real"));
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode("x-access-token:ghs_realGitToken0123456789")
    );
    let good_seen = good_seen.lock().unwrap().clone();
    let other_seen = other_seen.lock().unwrap().clone();
    assert!(
        good_seen.contains(&expected),
        "service host got {good_seen:?}"
    );
    assert!(!other_seen.is_empty(), "the other host was never asked");
    assert!(
        other_seen.iter().all(|a| a == "none"),
        "another host got credentials: {other_seen:?}"
    );
}

/// Not a check: prints the median cost of an exec (`cargo test -- --ignored
/// overhead --nocapture`) against a bare spawn of the same program.
#[test]
#[ignore = "measurement"]
fn overhead() {
    let w = world();
    let p = policy(&w, &["env"], &[("API_KEY", "{{secret}}")], &[]);
    let rt = rt();
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mut ours = Vec::new();
    let mut bare = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let inv = p.check(&strings(&["env"]), None).unwrap();
        let launch = p.prepare(inv, Some(&secret()), Stdin::Null).unwrap();
        rt.block_on(async { launch.spawn(&Scrubber::empty()).unwrap().output().await })
            .unwrap();
        ours.push(t.elapsed());
        let t = Instant::now();
        std::process::Command::new("/usr/bin/env").output().unwrap();
        bare.push(t.elapsed());
    }
    println!(
        "exec via airlock-exec: median {:?}; bare spawn: median {:?}",
        median(ours),
        median(bare)
    );
}
