//! Issue 14 items 11 and 12: `airlock run`/`wrap --cap` give git the same askpass
//! helper as the MCP `exec` tool (real git against a local server that wants
//! basic auth: the token goes to the service's origin and nowhere else, and no
//! credential helper of the owner stores it), and `airlock cap add --mode exec`
//! writes an exec capability without hand-editing TOML.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;

use super::{airlock, append_config, find_named, ok, ok_as};

const TOKEN: &str = "ghs_runCapGitToken0123456789abcdef";
const REF: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

fn pkt(s: &str) -> String {
    format!("{:04x}{s}", s.len() + 4)
}

/// A git smart-HTTP server that wants basic auth: without `accept` (or with
/// other credentials) it answers 401; with them, a ref advertisement. Returns
/// the port and every `Authorization` it saw ("none" when absent).
fn git_server(accept: Option<String>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let auth = authorization(&stream);
            log.lock().unwrap().push(auth.clone());
            let mut stream = stream;
            if accept.as_deref() == Some(auth.as_str()) {
                let body = format!(
                    "{}0000{}0000",
                    pkt("# service=git-upload-pack\n"),
                    pkt(&format!("{REF} refs/heads/main\0agent=test\n"))
                );
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\nCache-Control: no-cache\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            } else {
                let _ = stream.write_all(
                    b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        }
    });
    (port, seen)
}

/// Reads a request's head from `stream`: its (last) `Authorization` value, "none"
/// without one.
fn authorization(stream: &std::net::TcpStream) -> String {
    const NAME: &str = "authorization: ";
    BufReader::new(stream.try_clone().unwrap())
        .lines()
        .map_while(Result::ok)
        .take_while(|line| !line.is_empty())
        .filter(|line| line.to_ascii_lowercase().starts_with(NAME))
        .map(|line| line[NAME.len()..].trim().to_string())
        .last()
        .unwrap_or_else(|| "none".to_string())
}

fn have_git() -> bool {
    Command::new("git").arg("--version").output().is_ok()
}

/// `airlock` with an owner HOME whose git configuration stores credentials
/// (`credential.helper = store`), no system git configuration, no prompts.
fn owner_cmd(home: &Path, owner: &Path) -> Command {
    let mut c = airlock(home);
    c.env("HOME", owner)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .env_remove("GIT_CONFIG_GLOBAL");
    c
}

#[test]
fn run_and_wrap_cap_give_git_the_askpass_helper_for_the_service_origin_only() {
    if !have_git() {
        eprintln!("SKIPPED: no git on this machine");
        return;
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"))
    );
    let (good, good_seen) = git_server(Some(basic.clone()));
    let (other, other_seen) = git_server(None);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let owner = dir.path().join("owner");
    std::fs::create_dir_all(&owner).unwrap();
    std::fs::write(owner.join(".gitconfig"), "[credential]\n\thelper = store\n").unwrap();
    ok(airlock(&home)
        .args(["add", "github", "--url"])
        .arg(format!("http://127.0.0.1:{good}"))
        .args(["--key-from-env", "K"])
        .env("K", TOKEN)
        .output()
        .unwrap());
    let config = home.join("airlock.toml");
    append_config(
        &home,
        "\n[capabilities.gitcap]\nservice = \"github\"\nmode = \"exec\"\ncommands = [\"git\"]\nenv = { GH_TOKEN = \"{{secret}}\" }\n",
    );

    // The service's origin: git asks, the helper answers, the server lists the ref.
    let url = format!("http://127.0.0.1:{good}/o/r.git");
    let out = owner_cmd(&home, &owner)
        .args(["run", "--cap", "gitcap", "--", "git", "ls-remote", &url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "git ls-remote failed: {stderr}");
    assert_eq!(stdout, format!("{REF}\trefs/heads/main\n"));
    assert!(
        good_seen.lock().unwrap().contains(&basic),
        "{:?}",
        good_seen.lock().unwrap()
    );

    // Another port on the same host: asked, but the helper answers nothing.
    let url_other = format!("http://127.0.0.1:{other}/o/r.git");
    let out = owner_cmd(&home, &owner)
        .args([
            "run",
            "--cap",
            "gitcap",
            "--",
            "git",
            "ls-remote",
            &url_other,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let seen = other_seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the other origin was never asked");
    assert!(
        seen.iter().all(|a| a == "none"),
        "another origin got credentials: {seen:?}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains(TOKEN));

    // The owner's `store` helper never saw the token; HOME is the owner's; the
    // helper's directory is gone after the run.
    assert!(!owner.join(".git-credentials").exists());
    let out = ok(owner_cmd(&home, &owner)
        .args([
            "run",
            "--cap",
            "gitcap",
            "--",
            "sh",
            "-c",
            "echo \"$HOME\"; echo \"$GIT_ASKPASS\"; test -x \"$GIT_ASKPASS\" && echo runnable",
        ])
        .output()
        .unwrap());
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], owner.display().to_string());
    assert_eq!(lines[2], "runnable");
    assert!(!Path::new(&lines[1]).exists(), "{} is left over", lines[1]);

    // wrap: the same helper.
    let before = good_seen.lock().unwrap().len();
    let wrap = ["wrap", "--cap", "gitcap", "--", "git", "ls-remote", &url];
    ok_as(
        "wrap: ",
        owner_cmd(&home, &owner).args(wrap).output().unwrap(),
    );
    assert!(good_seen.lock().unwrap()[before..].contains(&basic));

    // run --confine with network = "direct" and inject = "env" (the real
    // token, as this Basic-auth git server wants; the default, a placeholder,
    // is in tests/proxy.rs): the helper lives in the sandbox's private HOME,
    // where the confined git may run it.
    if matches!(
        airlock_exec::Support::probe(),
        airlock_exec::Support::Landlock { .. }
    ) {
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "commands = [\"git\"]",
            "commands = [\"git\"]\nnetwork = \"direct\"\ninject = \"env\"",
        );
        std::fs::write(&config, text).unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let before = good_seen.lock().unwrap().len();
        let run = [
            "run",
            "--confine",
            "--cap",
            "gitcap",
            "--",
            "git",
            "ls-remote",
            &url,
        ];
        let mut cmd = owner_cmd(&home, &owner);
        let out = ok_as(
            "run --confine: ",
            cmd.current_dir(&work).args(run).output().unwrap(),
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{REF}\trefs/heads/main\n")
        );
        assert!(good_seen.lock().unwrap()[before..].contains(&basic));
    }
}

/// `airlock cap add NAME --service S …` with `args`: (exit code, stderr).
fn cap_add(home: &Path, name: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = airlock(home)
        .args(["cap", "add", name, "--service", "svc"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

/// `cap add` flags for an exec capability that runs `printenv`, then `extra`.
fn printenv_cap<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    [&["--mode", "exec", "--command", "printenv"][..], extra].concat()
}

#[test]
fn cap_add_mode_exec_writes_an_exec_capability_and_refuses_bad_flags_in_one_line() {
    let (dir, home) = super::home();
    let config = home.join("airlock.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.insert_str(0, "# the owner's own note, kept by every edit\n");
    std::fs::write(&config, &text).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let work_s = work.canonicalize().unwrap().display().to_string();
    let seen = dir.path().join("seen");

    // Each refusal: exit 2, one line, the file untouched.
    let missing = dir.path().join("missing").display().to_string();
    let refusals: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--command", "printenv"], "add --mode exec"),
        (
            vec!["--workdir", &work_s, "--no-confine"],
            "add --mode exec",
        ),
        (vec!["--mode", "exec"], "--command"),
        (printenv_cap(&["--env", "GH_TOKEN"]), "invalid --env"),
        (printenv_cap(&["--env", "1X=a"]), "invalid --env"),
        (printenv_cap(&["--env", "T={{token}}"]), "{{secret}}"),
        (printenv_cap(&["--workdir", &missing]), "does not exist"),
        (
            vec![
                "--mode",
                "exec",
                "--command",
                "no-such-program-airlock-test",
            ],
            "no-such-program-airlock-test",
        ),
        (printenv_cap(&["--env", "PATH=/tmp"]), "PATH"),
        (printenv_cap(&["--allow", "GET /**"]), "--allow"),
    ];
    for (args, needle) in &refusals {
        let (code, err) = cap_add(&home, "bad", args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(std::fs::read_to_string(&config).unwrap(), text, "{args:?}");
    }

    // The docs' example shape, with --inject env (today's behaviour).
    let (code, err) = cap_add(
        &home,
        "gh",
        &printenv_cap(&[
            "--command",
            "sh",
            "--env",
            "GH_TOKEN={{secret}}",
            "--env",
            "GIT_AUTHOR_NAME=owner",
            "--workdir",
            &work_s,
            "--inject",
            "env",
            "--network",
            "direct",
        ]),
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = cap_add(&home, "loose", &printenv_cap(&["--no-confine"]));
    assert_eq!(code, Some(0), "{err}");
    let written = std::fs::read_to_string(&config).unwrap();
    for line in [
        "[capabilities.gh]",
        "mode = \"exec\"",
        "commands = [\"printenv\", \"sh\"]",
        "GH_TOKEN = \"{{secret}}\"",
        "network = \"direct\"",
        "confine = false",
    ] {
        assert!(written.contains(line), "no {line} in {written}");
    }
    assert!(written.starts_with("# the owner's own note"), "{written}");
    assert!(
        written.contains(&format!("workdirs = [\"{work_s}\"]")),
        "{written}"
    );

    let out = ok(airlock(&home)
        .args(["cap", "list", "--json"])
        .output()
        .unwrap());
    let caps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gh = find_named(&caps, "name", "gh");
    assert_eq!(gh["mode"], "exec");
    assert_eq!(gh["commands"], serde_json::json!(["printenv", "sh"]));
    assert_eq!(gh["workdirs"], serde_json::json!([work_s]));
    assert_eq!(gh["network"], "direct");
    assert_eq!(gh["confine"], true);
    let out = ok(airlock(&home).args(["cap", "list"]).output().unwrap());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("exec: printenv, sh"), "{table}");
    assert!(table.contains("UNCONFINED"), "{table}");

    // And it works: `run --cap gh` gives the program the secret.
    ok(airlock(&home)
        .args(["run", "--cap", "gh", "--", "sh", "-c"])
        .arg(format!("printf '%s' \"$GH_TOKEN\" > '{}'", seen.display()))
        .output()
        .unwrap());
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), super::SECRET);
}
