//! Issue 12 end to end: with nothing but an exec capability for `git` (the docs'
//! own example) and a workdir, an agent tries every way out of the sandbox that
//! the argument guards do not already refuse — reads of the key, the vault and
//! the owner's files, writes of the config and the state, shell code planted in
//! the repository's config, a TCP connection to a local server. Each attempt must
//! fail inside the kernel sandbox, leave no trace of the secret anywhere, and be
//! on record in the audit log. The same attacks through `airlock run --confine`;
//! and `confine = false` still runs, and is reported by `doctor` and `list`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::{
    McpClient, SECRET, airlock, append_config, assert_no_secret, audit_records, find_named, home,
    ok,
};
use crate::common::python_mcp_server;

/// Real git and a kernel with Landlock; CI has both (`confinement_is_available_here`
/// in airlock-exec's tests fails CI otherwise).
fn have_git_and_landlock() -> bool {
    Command::new("git").arg("--version").output().is_ok()
        && matches!(
            airlock_exec::Support::probe(),
            airlock_exec::Support::Landlock { .. }
        )
}

/// The owner's world: an airlock home (key-file mode, secret "svc" = SECRET), an
/// owner home with a private file, a git repository as the workdir inside it, a
/// directory outside every workdir.
struct World {
    dir: tempfile::TempDir,
    home: PathBuf,
    owner: PathBuf,
    work: PathBuf,
    outside: PathBuf,
}

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap()
}

fn world(extra_cap: &str) -> World {
    let (dir, home) = home();
    let owner = dir.path().join("owner").canonicalize_or_create();
    let work = owner.join("src/app");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let work = work.canonicalize().unwrap();
    std::fs::write(owner.join(".netrc"), format!("password {SECRET}\n")).unwrap();
    std::fs::write(work.join("README"), "hello\n").unwrap();
    assert!(git(&work, &["init", "-q"]).status.success());
    assert!(git(&work, &["add", "README"]).status.success());
    assert!(git(&work, &["commit", "-qm", "first"]).status.success());
    append_config(
        &home,
        &format!(
            r#"
[capabilities.gitcap]
service = "svc"
mode = "exec"
commands = ["git"]
env = {{ TOKEN = "{{{{secret}}}}", GIT_AUTHOR_NAME = "agent", GIT_AUTHOR_EMAIL = "a@example.invalid", GIT_COMMITTER_NAME = "agent", GIT_COMMITTER_EMAIL = "a@example.invalid" }}
workdirs = ["{work}"]
timeout = "20s"
{extra_cap}
"#,
            work = work.display()
        ),
    );
    World {
        dir,
        home,
        owner,
        work,
        outside,
    }
}

trait CanonicalizeOrCreate {
    fn canonicalize_or_create(self) -> PathBuf;
}

impl CanonicalizeOrCreate for PathBuf {
    fn canonicalize_or_create(self) -> PathBuf {
        std::fs::create_dir_all(&self).unwrap();
        self.canonicalize().unwrap()
    }
}

/// `airlock serve --agent attacker` with the owner's HOME set to `w.owner`.
/// `world(extra_cap)`; none (the test has nothing to check) without git and Landlock.
fn confinable_world(extra_cap: &str) -> Option<World> {
    have_git_and_landlock().then(|| world(extra_cap))
}

/// `airlock doctor` for the world's owner: its report.
fn doctor_report(w: &World) -> String {
    let doctor = airlock(&w.home)
        .arg("doctor")
        .env("HOME", &w.owner)
        .output()
        .unwrap();
    String::from_utf8_lossy(&doctor.stdout).into_owned()
}

fn serve(w: &World) -> McpClient {
    let mut cmd = airlock(&w.home);
    cmd.args(["serve", "--agent", "attacker"])
        .env("HOME", &w.owner);
    let mut c = McpClient::spawn(cmd);
    c.initialize("exec-test");
    c
}

/// One `exec` call: (isError, text, parsed result when it ran).
fn exec(c: &mut McpClient, command: &[&str]) -> (bool, String, Value) {
    let (err, text) = c.tool(
        "exec",
        json!({"capability": "gitcap", "command": command, "reason": "attack"}),
    );
    let v = serde_json::from_str(&text).unwrap_or(Value::Null);
    (err, text, v)
}

/// Every file under `root`, read, must be free of the secret in plain, base64
/// and hex — except the vault, which holds it sealed.
fn grep_tree_for_the_secret(root: &Path, vault: &Path) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() && p != vault && !p.ends_with(".netrc") {
                let bytes = std::fs::read(&p).unwrap_or_default();
                assert_no_secret(&p.display().to_string(), &String::from_utf8_lossy(&bytes));
            }
        }
    }
}

fn commit_f(file: &Path) -> Vec<String> {
    [
        "git",
        "commit",
        "-q",
        "--allow-empty",
        "-F",
        file.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

/// The attacks that pass the argument guards, each with the check that it
/// failed. Returns the labels, for the audit assertions.
fn attacks(w: &World, run: &mut dyn FnMut(&[&str]) -> (bool, String)) -> usize {
    let key = w.home.join("master.key");
    let vault = w.home.join("vault.json");
    let netrc = w.owner.join(".netrc");
    let config = w.home.join("airlock.toml");
    let config_before = std::fs::read(&config).unwrap();
    let state_answer = w.home.join("state/ap-00000001.answer");
    let outside_repo = w.outside.join("repo");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!(
        "http://127.0.0.1:{}/x.git",
        listener.local_addr().unwrap().port()
    );
    let cases: Vec<(&str, Vec<String>)> = vec![
        // Reads: `commit -F FILE` makes any readable file the commit message,
        // which `git log` then prints (the guard refuses `hash-object` and `diff`
        // of absolute paths; this one it lets through, the sandbox stops it).
        ("read master.key", commit_f(&key)),
        ("read the vault", commit_f(&vault)),
        ("read the owner's home", commit_f(&netrc)),
        // Writes: `bundle create` writes a file anywhere, `init` a directory tree.
        (
            "write airlock.toml",
            vec![
                "git".into(),
                "bundle".into(),
                "create".into(),
                config.display().to_string(),
                "HEAD".into(),
            ],
        ),
        (
            "write under state/",
            vec![
                "git".into(),
                "bundle".into(),
                "create".into(),
                state_answer.display().to_string(),
                "HEAD".into(),
            ],
        ),
        (
            "write outside the workdirs",
            vec![
                "git".into(),
                "init".into(),
                "-q".into(),
                outside_repo.display().to_string(),
            ],
        ),
        // Network: a local server that is not the proxy.
        (
            "connect to a local server",
            vec!["git".into(), "ls-remote".into(), url.clone()],
        ),
    ];
    for (label, cmd) in &cases {
        let argv: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let (ok, text) = run(&argv);
        assert!(!ok, "{label}: succeeded: {text}");
        assert_no_secret(label, &text);
    }
    // Nothing got through: the history is still the one commit (no message
    // holds the key, the vault or .netrc); the config and state are untouched;
    // nothing outside; no connection.
    let log = git(&w.work, &["log", "--format=%B"]);
    assert_eq!(
        String::from_utf8_lossy(&log.stdout).trim(),
        "first",
        "a file became a commit message"
    );
    assert_eq!(
        std::fs::read(&config).unwrap(),
        config_before,
        "airlock.toml changed"
    );
    assert!(!state_answer.exists(), "a file appeared under state/");
    assert!(
        !outside_repo.exists(),
        "a repository appeared outside the workdirs"
    );
    assert!(
        listener.accept().is_err(),
        "the local server saw a connection"
    );

    // Shell code planted in the repository's config (an agent that can write its
    // workdir): a clean filter git runs on `add`. It runs — inside the sandbox,
    // where it can neither read the key nor write the config.
    let loot = w.work.join("loot");
    std::fs::write(w.work.join(".gitattributes"), "*.txt filter=evil\n").unwrap();
    let mut repo_config = std::fs::read_to_string(w.work.join(".git/config")).unwrap();
    repo_config.push_str(&format!(
        "[filter \"evil\"]\n\tclean = \"cat {key} > {loot}; echo pwned >> {config}; cat\"\n",
        key = key.display(),
        loot = loot.display(),
        config = config.display()
    ));
    std::fs::write(w.work.join(".git/config"), repo_config).unwrap();
    std::fs::write(w.work.join("a.txt"), "text\n").unwrap();
    let (_, text) = run(&["git", "add", "a.txt"]);
    assert_no_secret("the planted filter", &text);
    let key_bytes = std::fs::read(&key).unwrap();
    let stolen = std::fs::read(&loot).unwrap_or_default();
    assert!(
        stolen.is_empty() || stolen != key_bytes,
        "the filter copied master.key"
    );
    assert_eq!(
        std::fs::read(&config).unwrap(),
        config_before,
        "the filter wrote airlock.toml"
    );
    cases.len() + 1
}

#[test]
fn mcp_exec_git_cannot_reach_the_home_the_owner_or_the_network() {
    let Some(w) = confinable_world("") else {
        return;
    };
    let mut c = serve(&w);
    // The agent is told what its programs can reach.
    let (_, listed) = c.tool("list_services", json!({}));
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let cap = find_named(&listed["capabilities"], "capability", "gitcap");
    assert_eq!(cap["exec"]["sandbox"]["confined"], true, "{cap}");
    assert_eq!(cap["exec"]["sandbox"]["network"], "none", "{cap}");
    // The control: git works in its workdir.
    let (err, text, v) = exec(&mut c, &["git", "log", "--oneline"]);
    assert!(!err && v["exit_code"] == 0, "{text}");
    assert!(v["stdout"].as_str().unwrap().contains("first"), "{v}");

    let mut failed = 0;
    let n = attacks(&w, &mut |argv| {
        let (err, text, v) = exec(&mut c, argv);
        let ok = !err && v["exit_code"] == 0;
        if !ok {
            failed += 1;
        }
        (ok, text)
    });
    let (code, stderr) = c.finish(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    assert_no_secret("serve's stderr", &stderr);
    assert!(failed >= n - 1, "{failed} of {n} attacks failed");

    // On record: each attempt, with the program, its command line and its exit
    // status, marked as confined.
    let runs: Vec<Value> = audit_records(&w.home)
        .into_iter()
        .filter(|r| r["kind"] == "exec" && r["capability"] == "gitcap")
        .collect();
    assert!(runs.len() > n, "{runs:?}");
    for r in &runs[1..] {
        assert_eq!(r["agent"], "attacker", "{r}");
        assert!(
            r["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("; confined, network none"),
            "{r}"
        );
    }
    let nonzero = runs.iter().filter(|r| r["status"] != 0).count();
    assert!(nonzero >= n - 1, "{runs:?}");
    assert!(
        runs.iter().any(|r| r["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("master.key")),
        "the master.key attempt is not on record"
    );
    ok(airlock(&w.home).args(["audit", "verify"]).output().unwrap());
    grep_tree_for_the_secret(w.dir.path(), &w.home.join("vault.json"));
}

#[test]
fn run_confine_holds_the_same_line() {
    let Some(w) = confinable_world("") else {
        return;
    };
    let n = attacks(&w, &mut |argv| {
        let out = airlock(&w.home)
            .args(["run", "--confine", "--cap", "gitcap", "--"])
            .args(argv)
            .current_dir(&w.work)
            .env("HOME", &w.owner)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    });
    assert!(n > 0);
    // The control: the same command line works on the workdir.
    ok(airlock(&w.home)
        .args(["run", "--confine", "--", "git", "log", "--oneline"])
        .current_dir(&w.work)
        .env("HOME", &w.owner)
        .output()
        .unwrap());
    let runs: Vec<Value> = audit_records(&w.home)
        .into_iter()
        .filter(|r| r["kind"] == "exec" && r["method"] == "run")
        .collect();
    assert!(runs.len() > n, "{runs:?}");
    assert!(
        runs.iter()
            .all(|r| r["detail"].as_str().unwrap().contains("--confine"))
    );
    grep_tree_for_the_secret(w.dir.path(), &w.home.join("vault.json"));

    // A current directory that overlaps the airlock home is refused up front.
    let out = airlock(&w.home)
        .args(["run", "--confine", "--", "true"])
        .current_dir(&w.home)
        .env("HOME", &w.owner)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("airlock home"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn confine_false_still_runs_and_is_reported() {
    let Some(w) = confinable_world("confine = false") else {
        return;
    };
    let mut c = serve(&w);
    // Unconfined, git reads the owner's file: the opt-out is real.
    let netrc = w.owner.join(".netrc");
    let argv = commit_f(&netrc);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (err, text, v) = exec(&mut c, &argv);
    assert!(!err && v["exit_code"] == 0, "{text}");
    drop(c.finish(Duration::from_secs(10)));
    let report = doctor_report(&w);
    assert!(
        report.contains("WARN capability \"gitcap\" runs its programs UNCONFINED"),
        "{report}"
    );
    let list = ok(airlock(&w.home).arg("list").output().unwrap());
    assert!(String::from_utf8_lossy(&list.stdout).contains("UNCONFINED"));
    let json = ok(airlock(&w.home).args(["list", "--json"]).output().unwrap());
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    let cap = find_named(&v["capabilities"], "name", "gitcap");
    assert_eq!(cap["confine"], false, "{cap}");
    assert_eq!(cap["network"], "none", "{cap}");

    // The confined default is reported as such.
    let w = world("");
    let report = doctor_report(&w);
    assert!(report.contains("kernel sandbox: Landlock ABI"), "{report}");
    assert!(
        report.contains("capability \"gitcap\" is confined"),
        "{report}"
    );
}

/// Runs `f` (which spawns airlock) on a thread whose system calls
/// `landlock_create_ruleset`, `landlock_add_rule` and `landlock_restrict_self`
/// fail with ENOSYS, as on a kernel built without Landlock; what it spawns
/// inherits the filter.
fn without_landlock<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    use seccompiler::{SeccompAction, SeccompFilter, TargetArch};
    std::thread::spawn(move || {
        let rules = [
            libc::SYS_landlock_create_ruleset,
            libc::SYS_landlock_add_rule,
            libc::SYS_landlock_restrict_self,
        ]
        .into_iter()
        .map(|n| (n, Vec::new()))
        .collect();
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            TargetArch::try_from(std::env::consts::ARCH).unwrap(),
        )
        .unwrap();
        let program: seccompiler::BpfProgram = filter.try_into().unwrap();
        seccompiler::apply_filter(&program).unwrap();
        f()
    })
    .join()
    .unwrap()
}

#[test]
fn without_landlock_exec_refuses_with_one_line_and_confine_false_runs() {
    let Some(w) = confinable_world("") else {
        return;
    };
    let mut config = std::fs::read_to_string(w.home.join("airlock.toml")).unwrap();
    config.push_str(&format!(
        "\n[capabilities.open]\nservice = \"svc\"\nmode = \"exec\"\ncommands = [\"git\"]\nworkdirs = [\"{}\"]\nconfine = false\n",
        w.work.display()
    ));
    std::fs::write(w.home.join("airlock.toml"), config).unwrap();
    let (home, owner) = (w.home.clone(), w.owner.clone());
    let mut c = without_landlock(move || {
        let mut cmd = airlock(&home);
        cmd.args(["serve", "--agent", "attacker"])
            .env("HOME", &owner);
        McpClient::spawn(cmd)
    });
    c.initialize("exec-test");
    let (err, text, _) = exec(&mut c, &["git", "log", "--oneline"]);
    assert!(err, "ran without its sandbox: {text}");
    assert!(text.contains("refused by the config check"), "{text}");
    assert!(text.contains("without Landlock"), "{text}");
    assert!(text.contains("confine = false"), "{text}");
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    // The owner's explicit opt-out still runs.
    let (err, text) = c.tool(
        "exec",
        json!({"capability": "open", "command": ["git", "log", "--oneline"]}),
    );
    assert!(!err, "{text}");
    assert!(text.contains("first"), "{text}");
    drop(c.finish(Duration::from_secs(10)));
    let refused: Vec<Value> = audit_records(&w.home)
        .into_iter()
        .filter(|r| r["kind"] == "exec" && r["decision"] == "deny")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["rule"], "config", "{refused:?}");

    // run --confine: exit 2, one line, nothing run.
    let (home, work, owner) = (w.home.clone(), w.work.clone(), w.owner.clone());
    let out = without_landlock(move || {
        airlock(&home)
            .args(["run", "--confine", "--", "touch", "ran"])
            .current_dir(&work)
            .env("HOME", &owner)
            .output()
            .unwrap()
    });
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without Landlock"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!w.work.join("ran").exists());

    // doctor: a FIX line naming the capabilities that refuse to run.
    let (home, owner) = (w.home.clone(), w.owner.clone());
    let out = without_landlock(move || {
        airlock(&home)
            .arg("doctor")
            .env("HOME", &owner)
            .output()
            .unwrap()
    });
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FIX  kernel sandbox unavailable") && report.contains("[gitcap]"),
        "{report}"
    );
}

/// The tool of a stdio MCP server (`python_mcp_server`) that reports whether
/// it can read the file a tool call names.
const PROBE_TOOL: &str = r#"
def tool(args):
    try:
        open(args["path"], "rb").read()
        return "read"
    except OSError as e:
        return "denied: " + e.strerror
"#;

#[test]
fn wrap_confine_keeps_the_server_out_of_the_home() {
    if !have_git_and_landlock() || !Path::new("/usr/bin/python3").exists() {
        return;
    }
    let w = world("");
    std::fs::write(
        w.work.join("probe.py"),
        python_mcp_server("probe", PROBE_TOOL),
    )
    .unwrap();
    let mut cmd = airlock(&w.home);
    cmd.args([
        "wrap",
        "--confine",
        "--env",
        "K=airlock://svc",
        "--",
        "/usr/bin/python3",
        "probe.py",
    ])
    .current_dir(&w.work)
    .env("HOME", &w.owner);
    let mut c = McpClient::spawn(cmd);
    assert_eq!(
        c.initialize("exec-test")["result"]["serverInfo"]["name"],
        "probe"
    );
    let probe =
        |c: &mut McpClient, p: &Path| c.tool("probe", json!({"path": p.display().to_string()})).1;
    assert_eq!(probe(&mut c, &w.work.join("README")), "read");
    for f in [
        w.home.join("master.key"),
        w.home.join("vault.json"),
        w.owner.join(".netrc"),
    ] {
        assert_eq!(
            probe(&mut c, &f),
            "denied: Permission denied",
            "{}",
            f.display()
        );
    }
    let (code, stderr) = c.finish(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
}
