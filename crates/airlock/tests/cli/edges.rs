//! Rough edges real use tripped on (issue 14, items 9, 10, 13, 14, 15): a closed
//! pipe, what `add` grants, the path `mcp-config` writes, a mistyped
//! AIRLOCK_HOME, and the `--json` forms.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{Env, Out, audit_jsonl};

fn json(out: &Out) -> serde_json::Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", out.stdout, out.stderr))
}

/// A home with a service and one audit record (a token issue).
fn home_with_records() -> Env {
    let t = Env::new();
    t.init();
    t.add("svc", "sk_test_edges_0123456789");
    t.run(&["token", "issue", "--agent", "a"]).ok();
    t
}

/// Runs airlock with stdout a pipe whose reader is already gone, as in
/// `airlock list | head -1` once head has exited. Returns (exit code, stderr);
/// kills it (and fails) after 20 s.
fn run_into_closed_pipe(t: &Env, args: &[&str]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = t
        .cmd(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`airlock {}` did not end on a closed stdout",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code().unwrap_or(-1), stderr)
}

// ---------------------------------------------------------------- 9: EPIPE

#[test]
fn issue_14_9_every_command_exits_quietly_on_a_closed_pipe() {
    let t = home_with_records();
    let project = t.new_dir("project");
    let key = format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc9Q2Xv");
    std::fs::write(project.join(".env"), format!("STRIPE_KEY={key}\n")).unwrap();
    let project = project.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["list"],
        vec!["list", "--json"],
        vec!["cap", "list"],
        vec!["secret", "list", "--json"],
        vec!["token", "list"],
        vec!["search"],
        vec!["search", "--json"],
        vec!["logs"],
        vec!["logs", "--json"],
        vec!["logs", "-f"],
        vec!["logs", "-f", "--json"],
        vec!["doctor"],
        vec!["doctor", "--json"],
        vec!["audit", "verify"],
        vec!["audit", "verify", "--json"],
        vec!["mcp-config", "cursor"],
        vec!["mcp-config", "cursor", "--json"],
        vec!["scan", project],
        vec!["scan", project, "--format", "json"],
        vec!["scan", project, "--format", "sarif"],
    ];
    for args in cases {
        let (code, stderr) = run_into_closed_pipe(&t, &args);
        // scan's exit code is about findings, decided before printing; what
        // matters is no panic (101) and no message about the pipe.
        assert!(
            code == 0 || (args[0] == "scan" && code == 1) || (args[0] == "doctor" && code == 1),
            "`airlock {}` exited {code} on a closed pipe: {stderr}",
            args.join(" ")
        );
        assert!(
            !stderr.contains("panicked")
                && !stderr.contains("Broken pipe")
                && !stderr.contains("error:"),
            "`airlock {}` complained about a closed pipe: {stderr}",
            args.join(" ")
        );
    }
}

// ---------------------------------------------------------------- 10: what add grants

#[test]
fn issue_14_10_add_says_what_it_granted_and_the_readme_flow_grants_no_more() {
    // Plain `add` (DESIGN §3, the quick start): capability NAME with the
    // template's read-only rules, and a line that says so.
    let t = Env::new();
    t.init();
    let out = t
        .run_with(
            &["add", "stripe", "--key-from-env", "K"],
            &[("K", "sk_test_readme")],
            None,
        )
        .ok();
    assert!(
        out.stdout
            .contains("granted: capability \"stripe\": allow GET"),
        "{}",
        out.stdout
    );
    let v = json(&t.run(&["list", "--json"]).ok());
    assert_eq!(v["capabilities"][0]["name"], "stripe");
    assert!(
        v["capabilities"][0]["allow"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.as_str().unwrap().starts_with("GET ")),
        "{v}"
    );

    let t = Env::new();
    t.init();
    // The README's walkthrough: add --no-cap, then a narrow capability for one agent.
    let out = t
        .run_with(
            &["add", "stripe", "--key-from-env", "K", "--no-cap"],
            &[("K", "sk_test_readme")],
            None,
        )
        .ok();
    assert!(out.stdout.contains("granted: nothing"), "{}", out.stdout);
    assert!(out.stdout.contains("airlock cap add"), "{}", out.stdout);
    t.run(&[
        "cap",
        "add",
        "stripe_readonly",
        "--service",
        "stripe",
        "--ttl",
        "15m",
        "--allow",
        "GET /v1/**",
        "--deny",
        "* /v1/charges/**",
        "--agents",
        "claude-desktop",
    ])
    .ok();
    let v = json(&t.run(&["list", "--json"]).ok());
    let caps = v["capabilities"].as_array().unwrap();
    assert_eq!(
        caps.len(),
        1,
        "only the capability the owner configured: {caps:?}"
    );
    assert_eq!(caps[0]["name"], "stripe_readonly");

    // --cap asks for one: the template's rules, ttl 1h, and one line that says
    // exactly that, agents included.
    let t = Env::new();
    t.init();
    let out = t
        .run_with(
            &[
                "add",
                "stripe",
                "--key-from-env",
                "K",
                "--cap",
                "--agents",
                "cd",
            ],
            &[("K", "sk_test_readme")],
            None,
        )
        .ok();
    let v = json(&t.run(&["list", "--json"]).ok());
    let cap = &v["capabilities"][0];
    assert_eq!(cap["name"], "stripe");
    assert_eq!(cap["agents"], serde_json::json!(["cd"]));
    let allow: Vec<String> = cap["allow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert!(!allow.is_empty(), "the template's read-only rules");
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("granted:"))
        .unwrap_or_else(|| panic!("no granted line: {}", out.stdout));
    assert!(line.contains("capability \"stripe\""), "{line}");
    assert!(line.contains(&allow[0]), "{line}");
    assert!(line.contains("agents cd"), "{line}");
    assert!(line.contains("ttl 1h"), "{line}");

    // --cap=NAME names it; without --agents the line says every agent may use it.
    let add = "add other --url https://x.example --key-from-env K --cap=other_all";
    let args: Vec<&str> = add.split(' ').collect();
    let out = t.run_with(&args, &[("K", "k")], None).ok();
    assert!(
        out.stdout.contains(
            "granted: capability \"other_all\": allow every method and path; every agent"
        ),
        "{}",
        out.stdout
    );
    // --agents with --no-cap is a usage error: there is no capability to give it to.
    let before = t.snapshot();
    let out = t.run_with(
        &[
            "add",
            "third",
            "--url",
            "https://x.example",
            "--key-from-env",
            "K",
            "--no-cap",
            "--agents",
            "a",
        ],
        &[("K", "k")],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--no-cap"), "{}", out.stderr);
    assert_eq!(t.snapshot(), before);
}

// ---------------------------------------------------------------- 13: mcp-config

/// A package manager's layout: `bin/airlock` is a link to a versioned binary.
fn linked_bin(t: &Env) -> PathBuf {
    let bin = t.new_dir("bin");
    let link = bin.join("airlock");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_airlock"), &link).unwrap();
    link
}

fn snippet_command(stdout: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(stdout).unwrap();
    v["mcpServers"]["airlock"]["command"]
        .as_str()
        .unwrap()
        .to_string()
}

fn run_program(t: &Env, program: &Path, args: &[&str], cwd: &Path, path_env: Option<&Path>) -> Out {
    let mut c = std::process::Command::new(program);
    c.args(args)
        .current_dir(cwd)
        .env("AIRLOCK_HOME", t.home_path())
        .stdin(Stdio::null());
    if let Some(p) = path_env {
        c.env("PATH", p);
    }
    let o = c.output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn issue_14_13_mcp_config_writes_the_path_the_owner_ran_not_the_link_target() {
    let t = Env::new();
    t.init();
    let link = linked_bin(&t);
    let root = t.dir.path();
    let path_dir = root.join("bin");
    for (program, client, path_env) in [
        // Run by its absolute path through the link.
        (link.as_path(), "cursor", None),
        // Run by a relative path: made absolute, the link kept.
        (Path::new("./bin/airlock"), "cursor", None),
        // Run by name from PATH: the PATH entry.
        (
            Path::new("airlock"),
            "claude-desktop",
            Some(path_dir.as_path()),
        ),
    ] {
        let out = run_program(&t, program, &["mcp-config", client], root, path_env).ok();
        assert_eq!(
            snippet_command(&out.stdout),
            link.to_str().unwrap(),
            "{}",
            program.display()
        );
    }
}

#[test]
fn issue_14_13_windsurf_and_a_ready_claude_mcp_add_line() {
    let t = Env::new();
    t.init();
    let out = t.run(&["mcp-config", "windsurf"]).ok();
    let v = json(&out);
    assert_eq!(
        v["mcpServers"]["airlock"]["args"],
        serde_json::json!(["serve", "--agent", "windsurf"])
    );
    assert!(
        out.stderr.contains("~/.codeium/windsurf/mcp_config.json"),
        "{}",
        out.stderr
    );

    let out = t.run(&["mcp-config", "claude-code"]).ok();
    let exe = snippet_command(&out.stdout);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("claude mcp add"))
        .unwrap_or_else(|| panic!("no `claude mcp add` line: {}", out.stderr));
    let cmd = line.split_once("claude mcp add").unwrap().1;
    assert!(
        cmd.contains(&format!("-- {exe} serve --agent claude-code")),
        "{line}"
    );
    assert!(
        cmd.contains(&format!("-e AIRLOCK_HOME={}", t.home_path().display())),
        "{line}"
    );
    // The same line in the JSON form.
    let v = json(&t.run(&["mcp-config", "claude-code", "--json"]).ok());
    assert!(
        v["command"]
            .as_str()
            .unwrap()
            .starts_with("claude mcp add "),
        "{v}"
    );
}

// ---------------------------------------------------------------- 14: a missing home

#[test]
fn issue_14_14_a_missing_home_is_an_error_naming_the_path_not_an_empty_setup() {
    let t = Env::new(); // AIRLOCK_HOME points at a directory that does not exist
    let path = t.home_path().display().to_string();
    let cases: &[&[&str]] = &[
        &["list"],
        &["list", "--json"],
        &["cap", "list"],
        &["cap", "add", "c", "--service", "s"],
        &["cap", "remove", "c"],
        &["remove", "s", "--yes"],
        &["secret", "list"],
        &["token", "list"],
        &["token", "issue", "--agent", "a"],
        &["logs"],
        &["logs", "-f"],
        &["audit", "verify"],
        &["doctor"],
        &["doctor", "--json"],
        &["sessions"],
        &["approve"],
        &["lock"],
        &["revoke", "--all"],
    ];
    for args in cases {
        let out = t.run(args);
        let out = out.usage_error(&path);
        assert!(
            out.stderr.contains("airlock init") && out.stderr.contains("AIRLOCK_HOME"),
            "`airlock {}`: {}",
            args.join(" "),
            out.stderr
        );
        assert!(
            !t.home_path().exists(),
            "`airlock {}` created the home",
            args.join(" ")
        );
    }
    // Commands that need no home still work.
    t.run(&["search"]).ok();
    t.run(&["mcp-config", "cursor"]).ok();
    let empty = t.new_dir("empty");
    t.run(&["scan", empty.to_str().unwrap()]).ok();
    assert!(!t.home_path().exists());
    // And `init` makes it usable.
    t.init();
    t.run(&["list"]).ok();
}

// ---------------------------------------------------------------- 15: --json and wording

#[test]
fn issue_14_15_doctor_json_has_a_level_and_message_per_line() {
    let t = Env::new();
    t.init();
    let user_home = t.new_dir("user");
    let h = [("HOME", user_home.to_str().unwrap())];
    let text = t.run_with(&["doctor"], &h, None);
    let out = t.run_with(&["doctor", "--json"], &h, None);
    assert_eq!(out.code, text.code, "{}", out.stdout);
    let v = json(&out);
    assert_eq!(v["ok"], serde_json::json!(out.code == 0));
    let lines = v["lines"].as_array().unwrap();
    assert_eq!(lines.len(), text.stdout.lines().count());
    for l in lines {
        assert!(
            ["ok", "note", "warn", "fix"].contains(&l["level"].as_str().unwrap()),
            "{l}"
        );
        assert!(!l["message"].as_str().unwrap().is_empty(), "{l}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["message"].as_str().unwrap().contains("key-file mode")),
        "{v}"
    );
    // A failed check: exit 1 in JSON too, with a "fix" line.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        t.home().vault_path(),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = t.run_with(&["doctor", "--json"], &h, None);
    assert_eq!(out.code, 1);
    let v = json(&out);
    assert_eq!(v["ok"], false);
    assert!(
        v["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["level"] == "fix" && l["message"].as_str().unwrap().contains("chmod 600")),
        "{v}"
    );
}

#[test]
fn issue_14_15_audit_verify_json_reports_the_verdict_and_the_first_bad_record() {
    let t = home_with_records();
    let out = t.run(&["audit", "verify", "--json"]).ok();
    let v = json(&out);
    assert_eq!(v["ok"], true);
    assert_eq!(v["outcome"], "intact");
    assert!(v["records"].as_u64().unwrap() >= 1, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("audit log intact"),
        "{v}"
    );
    // Tamper with the first record: exit 1, and the problem as fields.
    let audit = t.home().audit_dir();
    let file = audit_jsonl(&audit);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("\"a\"", "\"b\"", 1)).unwrap();
    let out = t.run(&["audit", "verify", "--json"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let v = json(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["outcome"], "broken");
    assert_eq!(v["problem"]["line"], 1, "{v}");
    assert!(!v["problem"]["kind"].as_str().unwrap().is_empty(), "{v}");
}

#[test]
fn issue_14_15_mcp_config_json_is_the_snippet_with_its_file() {
    let t = Env::new();
    t.init();
    for client in [
        "claude-desktop",
        "claude-code",
        "cursor",
        "vscode",
        "windsurf",
        "codex",
    ] {
        let v = json(&t.run(&["mcp-config", client, "--json"]).ok());
        assert_eq!(v["client"], client);
        assert!(!v["file"].as_str().unwrap().is_empty());
        let server = match client {
            "vscode" => &v["snippet"]["servers"]["airlock"],
            "codex" => &v["snippet"]["mcp_servers"]["airlock"],
            _ => &v["snippet"]["mcpServers"]["airlock"],
        };
        assert_eq!(
            server["args"],
            serde_json::json!(["serve", "--agent", client]),
            "{v}"
        );
        assert_eq!(
            server["env"]["AIRLOCK_HOME"],
            t.home_path().to_str().unwrap()
        );
        assert_eq!(v["format"], if client == "codex" { "toml" } else { "json" });
    }
}

/// Runs `airlock logs -f` on a pseudo-terminal (util-linux `script`) and returns
/// what it showed in the first seconds.
fn logs_follow_on_a_tty(t: &Env) -> Option<String> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let cmd = format!("{} logs -f", env!("CARGO_BIN_EXE_airlock"));
    let mut child = std::process::Command::new(script)
        .args(["-qfec", &cmd, "/dev/null"])
        .env("AIRLOCK_HOME", t.home_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.extend(chunk);
            if String::from_utf8_lossy(&seen).contains("Ctrl-C") {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Some(String::from_utf8_lossy(&seen).into_owned())
}

#[test]
fn issue_14_15_logs_follow_says_it_is_waiting_on_a_terminal_only() {
    let t = home_with_records();
    let Some(shown) = logs_follow_on_a_tty(&t) else {
        eprintln!("skipped: no `script` to make a terminal");
        return;
    };
    assert!(
        shown.contains("token_issue") || shown.contains("token"),
        "{shown}"
    );
    assert!(
        shown.contains("waiting for new records… (Ctrl-C to stop)"),
        "{shown}"
    );
    // Not in a pipe: stderr stays clean for scripts.
    let mut child = t
        .cmd(&["logs", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("waiting"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty(), "the existing record is shown");
}

#[test]
fn issue_14_15_scan_table_ends_with_a_newline() {
    let t = Env::new();
    let dir = t.new_dir("project");
    std::fs::write(dir.join("clean.txt"), "nothing here\n").unwrap();
    let out = t.run(&["scan", dir.to_str().unwrap()]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.ends_with('\n'), "{:?}", out.stdout);
    let key = format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc9Q2Xv");
    std::fs::write(dir.join(".env"), format!("STRIPE_KEY={key}\n")).unwrap();
    let out = t.run(&["scan", dir.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.ends_with(")\n"), "{:?}", out.stdout);
}

#[test]
fn issue_14_15_init_passphrase_on_a_new_home_speaks_of_a_new_passphrase() {
    let t = Env::new();
    let out = t.refused(&["init", "--passphrase"], "AIRLOCK_PASSPHRASE");
    assert!(
        out.stderr.contains("new vault") && !out.stderr.contains("is protected by a passphrase"),
        "there is no vault yet to be protected: {}",
        out.stderr
    );
    assert!(!t.home().vault_path().exists());
    let out = t
        .run_with(
            &["init", "--passphrase"],
            &[("AIRLOCK_PASSPHRASE", "a long enough passphrase")],
            None,
        )
        .ok();
    assert!(out.stdout.contains("passphrase mode"), "{}", out.stdout);
    assert!(out.stdout.contains("cannot be recovered"), "{}", out.stdout);
    assert!(out.stdout.contains("AIRLOCK_PASSPHRASE"), "{}", out.stdout);
}

/// `logs --team` and `logs --team --follow` on a home that is not in team mode:
/// one line saying how to get there, exit 2, nothing printed on stdout (and no
/// waiting: `--follow` must not sit polling a team that does not exist).
#[test]
fn logs_team_outside_team_mode_is_one_line_and_exit_2() {
    let t = Env::new();
    t.init();
    for args in [&["logs", "--team"][..], &["logs", "--team", "--follow"]] {
        let out = t.run_with(args, &[], None);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(
            out.stderr.contains("not in team mode") && out.stderr.contains("airlock team join"),
            "{}",
            out.stderr
        );
    }
}
