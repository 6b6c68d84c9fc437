//! Exec mode end to end: the MCP `exec` tool through `airlock serve`, `airlock run`
//! and `airlock wrap`. Each test asserts on what the child really received (it
//! writes the value to a file, since everything it prints is scrubbed) and on what
//! the caller saw and the audit log recorded.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

mod common;
use common::{McpClient, append_config, exit_2, field_strs, find_named, first_line};

#[path = "exec/confine.rs"]
mod confine;
#[path = "exec/runcap.rs"]
mod runcap;

const SECRET: &str = "tok_live_EXEC_CANARY_8d7c6b5a4f3e2d1c";

fn airlock(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_airlock"));
    c.env("AIRLOCK_HOME", home).stdin(Stdio::null());
    c
}

fn ok(out: Output) -> Output {
    ok_as("", out)
}

/// `ok`, the failure message starting with `what`.
fn ok_as(what: &str, out: Output) -> Output {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what}{err}");
    out
}

/// A home with service "svc" (secret "svc" = SECRET).
fn home() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(airlock(&home)
        .args([
            "add",
            "svc",
            "--cap",
            "--url",
            "http://127.0.0.1:9/",
            "--key-from-env",
            "K",
        ])
        .env("K", SECRET)
        .output()
        .unwrap());
    (dir, home)
}

/// Writes `text` to the file `name` in `dir`; its path.
fn write_in(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn audit_records(home: &Path) -> Vec<Value> {
    let out = ok(airlock(home).args(["logs", "--json"]).output().unwrap());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(SECRET), "the audit log holds the secret");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn assert_no_secret(what: &str, text: &str) {
    let forms = [
        SECRET.to_string(),
        base64::engine::general_purpose::STANDARD.encode(SECRET),
        hex::encode(SECRET),
    ];
    for f in forms {
        assert!(!text.contains(&f), "{what} holds the secret as {f}: {text}");
    }
}

// ---- MCP `exec` through `airlock serve` ----

#[test]
fn mcp_exec_runs_allowed_programs_with_the_secret_and_refuses_the_rest() {
    let (dir, home) = home();
    let work = dir.path().join("work");
    let outside = dir.path().join("outside");
    let bin = dir.path().join("bin");
    for d in [&work, &outside, &bin] {
        std::fs::create_dir_all(d).unwrap();
    }
    let work = work.canonicalize().unwrap();
    // A program that proves what it got: the value into a file, a line on stdout.
    let tool = bin.join("show-token");
    std::fs::write(
        &tool,
        "#!/bin/sh\nprintf '%s' \"$TOKEN\" > seen\necho \"token=$TOKEN\"\necho \"stderr $TOKEN\" >&2\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    append_config(
        &home,
        &format!(
            r#"
[capabilities.tool]
service = "svc"
mode = "exec"
commands = ["/usr/bin/printenv", "git", "{}"]
env = {{ TOKEN = "{{{{secret}}}}" }}
inject = "env"
workdirs = ["{}"]
timeout = "20s"
"#,
            tool.display(),
            work.display()
        ),
    );

    let mut serve = airlock(&home);
    serve.args(["serve", "--agent", "tester"]);
    let mut c = McpClient::spawn(serve);
    assert_eq!(
        c.initialize("exec-test")["result"]["serverInfo"]["name"],
        "airlock"
    );

    let tools = c.call("tools/list", json!({}));
    let exec = find_named(&tools["result"]["tools"], "name", "exec");
    assert!(
        exec["inputSchema"]["properties"]["command"].is_object(),
        "{exec}"
    );

    let (err, listed) = c.tool("list_services", json!({}));
    assert!(!err, "{listed}");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let cap = find_named(&listed["capabilities"], "capability", "tool");
    assert_eq!(cap["mode"], "exec");
    let names = field_strs(&cap["exec"]["programs"], "name");
    assert_eq!(names, ["printenv", "git", "show-token"], "{cap}");

    // Allowed: the secret is in the child's environment, never in what comes back.
    let (err, text) = c.tool(
        "exec",
        json!({"capability": "tool", "command": ["printenv", "TOKEN"], "reason": "test"}),
    );
    assert!(!err, "{text}");
    assert_no_secret("the exec result", &text);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["exit_code"], 0, "{v}");
    assert_eq!(v["stdout"], "[REDACTED:svc]\n", "{v}");
    assert_eq!(v["truncated"], false);
    assert_eq!(v["timed_out"], false);

    let (err, text) = c.tool(
        "exec",
        json!({"capability": "tool", "command": [tool.display().to_string()]}),
    );
    assert!(!err, "{text}");
    assert_no_secret("the exec result", &text);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["stdout"], "token=[REDACTED:svc]\n", "{v}");
    assert_eq!(v["stderr"], "stderr [REDACTED:svc]\n", "{v}");
    assert_eq!(
        std::fs::read_to_string(work.join("seen")).unwrap(),
        SECRET,
        "the child got the real value, in the default workdir"
    );

    // Refused, each naming its check.
    let outside_cwd = outside.display().to_string();
    let refusals = [
        (
            json!({"capability": "tool", "command": ["sh", "-c", "printenv TOKEN"]}),
            "program",
        ),
        (
            json!({"capability": "tool", "command": ["/bin/sh", "-c", "id"]}),
            "program",
        ),
        (
            json!({"capability": "tool", "command": ["git", "-c", "alias.x=!sh -c 'printenv TOKEN'", "x"]}),
            "argument",
        ),
        (
            json!({"capability": "tool", "command": ["printenv", "TOKEN"], "cwd": outside_cwd}),
            "cwd",
        ),
        (
            json!({"capability": "svc", "command": ["printenv"]}),
            "mode",
        ),
    ];
    for (args, check) in &refusals {
        let (err, text) = c.tool("exec", args.clone());
        assert!(err, "{args} was not refused: {text}");
        assert!(
            text.contains(&format!("refused by the {check} check")),
            "{args}: {text}"
        );
        assert_no_secret("a refusal", &text);
    }
    let (code, stderr) = c.finish(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    assert_no_secret("serve's stderr", &stderr);

    // Every decision is on record, allowed and denied.
    let exec: Vec<Value> = audit_records(&home)
        .into_iter()
        .filter(|r| r["kind"] == "exec")
        .collect();
    let allowed: Vec<&Value> = exec.iter().filter(|r| r["decision"] == "allow").collect();
    let denied: Vec<&Value> = exec.iter().filter(|r| r["decision"] == "deny").collect();
    assert_eq!(allowed.len(), 2, "{exec:?}");
    assert_eq!(allowed[0]["path"], "/usr/bin/printenv");
    assert_eq!(allowed[0]["capability"], "tool");
    assert_eq!(allowed[0]["agent"], "tester");
    assert_eq!(allowed[0]["reason"], "test");
    // Write-ahead: the decision is recorded before the child starts; how it
    // ended is in the outcome record that names it.
    assert!(allowed[0].get("status").is_none(), "{}", allowed[0]);
    let outcome = audit_records(&home)
        .into_iter()
        .find(|r| r["kind"] == "outcome" && r["of"] == allowed[0]["seq"])
        .expect("the run's outcome is on record");
    assert_eq!(outcome["status"], 0);
    assert!(outcome["duration_ms"].is_u64());
    assert!(outcome["bytes_out"].as_u64().unwrap() > 0);
    let rules: Vec<&str> = denied.iter().map(|r| r["rule"].as_str().unwrap()).collect();
    assert_eq!(
        rules,
        ["program", "program", "argument", "cwd", "mode"],
        "{denied:?}"
    );
    ok(airlock(&home).args(["audit", "verify"]).output().unwrap());
}

// ---- airlock run ----

#[test]
fn run_resolves_references_scrubs_output_and_propagates_the_exit_code() {
    let (dir, home) = home();
    let env_file = dir.path().join("app.env");
    std::fs::write(
        &env_file,
        "# app\nTOKEN=airlock://svc\nexport PLAIN='kept as is'\n",
    )
    .unwrap();
    let f = env_file.to_str().unwrap();

    let out = ok(airlock(&home)
        .args(["run", "--env-file", f, "--", "printenv", "TOKEN", "PLAIN"])
        .output()
        .unwrap());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[REDACTED:svc]\nkept as is\n"
    );

    // The child gets the real value (and no passphrase of ours); its output is scrubbed
    // in every form.
    let seen = dir.path().join("seen");
    let script = format!(
        "printf '%s' \"$TOKEN\" > '{}'; printf '%s' \"$TOKEN\" | base64; echo \"$FROM_ENV\" >&2; printenv AIRLOCK_PASSPHRASE || echo no-passphrase",
        seen.display()
    );
    let out = ok(airlock(&home)
        .args(["run", "--env-file", f, "--", "sh", "-c", &script])
        .env("FROM_ENV", "airlock://svc")
        .env("AIRLOCK_PASSPHRASE", "not-for-children")
        .output()
        .unwrap());
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), SECRET);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // (base64 of a secret whose length is not a multiple of 3 ends in a padded
    // group that encodes no whole byte of it: that tail stays.)
    assert!(stdout.starts_with("[REDACTED:svc]"), "{stdout}");
    assert!(stdout.ends_with("\nno-passphrase\n"), "{stdout}");
    assert_no_secret("run's stdout", &stdout);
    assert_eq!(
        stderr, "[REDACTED:svc]\n",
        "a reference in the environment is resolved too"
    );

    // The exit code is the child's.
    let out = airlock(&home)
        .args(["run", "--", "sh", "-c", "exit 7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let out = airlock(&home)
        .args(["run", "--", "airlock-no-such-command"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));

    // An unknown reference: one line, exit 2, naming file:line; nothing runs.
    let bad = write_in(&dir, "bad.env", "A=1\nB=airlock://nope\n");
    let marker = dir.path().join("ran");
    let out = airlock(&home)
        .args(["run", "--env-file", bad.to_str().unwrap(), "--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("{}:2", bad.display())), "{err}");
    assert!(err.contains("\"nope\""), "{err}");
    assert!(!marker.exists());

    // --no-mask passes the output through, and says so.
    let out = ok(airlock(&home)
        .args([
            "run",
            "--no-mask",
            "--env-file",
            f,
            "--",
            "printenv",
            "TOKEN",
        ])
        .output()
        .unwrap());
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{SECRET}\n"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-mask"));

    // Write-ahead (DESIGN §7.5): each run's decision is on record before the
    // child starts (no outcome in it); its outcome record follows.
    let records = audit_records(&home);
    let runs: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "exec" && r["method"] == "run")
        .collect();
    let outcomes: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "outcome" && r["method"] == "run")
        .collect();
    assert_eq!(runs.len(), 5, "{runs:?}");
    assert_eq!(outcomes.len(), 5, "{outcomes:?}");
    for (run, outcome) in runs.iter().zip(&outcomes) {
        assert!(run["status"].is_null(), "{run}");
        assert_eq!(outcome["of"], run["seq"]);
        assert!(
            outcome["seq"].as_u64() > run["seq"].as_u64(),
            "{run} {outcome}"
        );
    }
    assert_eq!(outcomes[2]["status"], 7);
    assert_eq!(runs[0]["path"], "/usr/bin/printenv");
}

/// Write-ahead for the owner's commands (DESIGN §7.5): when the decision
/// record cannot be written (every file is over `ulimit -f`), `run` and `wrap`
/// start nothing and say why.
#[test]
fn run_and_wrap_start_nothing_when_they_cannot_be_audited() {
    let (dir, home) = home();
    // Grow the log past the limit used below.
    for _ in 0..8 {
        ok(airlock(&home).args(["run", "--", "true"]).output().unwrap());
    }
    let before = audit_records(&home).len();
    let bin = env!("CARGO_BIN_EXE_airlock");
    for cmd in ["run", "wrap"] {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f 2; exec '{bin}' {cmd} -- sh -c 'touch ran'"
            ))
            .env("AIRLOCK_HOME", &home)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        exit_2(cmd, &out, "could not be audited");
        assert!(
            !dir.path().join("ran").exists(),
            "{cmd} ran without a record"
        );
    }
    assert_eq!(audit_records(&home).len(), before);
    ok(airlock(&home).args(["audit", "verify"]).output().unwrap());
}

/// airlock holds the vault's secrets in its memory: it makes itself
/// non-dumpable (no core dump, no ptrace or /proc/PID/mem by the user's other
/// processes) and says so in `doctor`; a program it runs gets the normal
/// setting back at exec (its own crashes still dump, it can be debugged).
#[test]
fn airlock_is_not_dumpable_and_the_programs_it_runs_are() {
    let (_dir, home) = home();
    let out = airlock(&home).arg("doctor").output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("process memory: no core dumps, no ptrace"),
        "{report}"
    );
    for (script, expected) in [
        // prctl(PR_GET_DUMPABLE) in the child: 1 = dumpable
        (
            "import ctypes; print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))",
            "1\n",
        ),
        // the core size limit airlock set for itself (0) is what its child inherits
        (
            "import resource; print(resource.getrlimit(resource.RLIMIT_CORE))",
            "(0, 0)\n",
        ),
    ] {
        let out = ok(airlock(&home)
            .args(["run", "--", "python3", "-c", script])
            .output()
            .unwrap());
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "{script}");
    }
}

#[test]
fn run_adds_a_capabilitys_env_and_forwards_sigterm() {
    let (dir, home) = home();
    append_config(
        &home,
        "\n[capabilities.cli]\nservice = \"svc\"\nmode = \"exec\"\ncommands = [\"printenv\"]\nenv = { API_AUTH = \"Bearer {{secret}}\" }\n",
    );
    let seen = dir.path().join("seen");
    let out = ok(airlock(&home)
        .args(["run", "--cap", "cli", "--", "sh", "-c"])
        .arg(format!(
            "printf '%s' \"$API_AUTH\" > '{}'; echo \"$API_AUTH\"",
            seen.display()
        ))
        .output()
        .unwrap());
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        format!("Bearer {SECRET}")
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Bearer [REDACTED:svc]\n"
    );

    // SIGTERM to airlock reaches the child, whose exit code comes back.
    let mut child = airlock(&home)
        .args([
            "run",
            "--",
            "sh",
            "-c",
            "trap 'echo got-term; exit 5' TERM; echo ready; sleep 30 & wait",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut stdout, line) = first_line(&mut child);
    assert_eq!(line, "ready\n");
    let started = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got-term\n");
    assert_eq!(status.code(), Some(5));
}

// ---- airlock wrap ----

/// A stdio MCP server in Python: records K in $SEEN_FILE, prints it on stderr, and
/// returns it from the tool `show_env`; exits with $EXIT_CODE at end of input.
const FAKE_SERVER: &str = r#"
import json, os, sys
with open(os.environ["SEEN_FILE"], "w") as f:
    f.write(os.environ.get("K", ""))
sys.stderr.write("fake server: K=" + os.environ.get("K", "") + "\n")
sys.stderr.flush()
for line in sys.stdin:
    msg = json.loads(line)
    mid, method = msg.get("id"), msg.get("method")
    if mid is None:
        continue
    if method == "initialize":
        result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                  "serverInfo": {"name": "fake", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": [{"name": "show_env", "description": "returns K",
                             "inputSchema": {"type": "object"}}]}
    elif method == "tools/call" and msg["params"]["name"] == "show_env":
        result = {"content": [{"type": "text", "text": "K is " + os.environ.get("K", "")}],
                  "isError": False}
    else:
        result = {"content": [{"type": "text", "text": "no such tool"}], "isError": True}
    print(json.dumps({"jsonrpc": "2.0", "id": mid, "result": result}), flush=True)
sys.exit(int(os.environ.get("EXIT_CODE", "0")))
"#;

#[test]
fn wrap_scrubs_the_servers_messages_and_audits_tool_calls() {
    let (dir, home) = home();
    let server = write_in(&dir, "server.py", FAKE_SERVER);
    let seen = dir.path().join("seen");
    let mut cmd = airlock(&home);
    cmd.args(["wrap", "--env", "K=airlock://svc", "--", "python3"])
        .arg(&server)
        .env("SEEN_FILE", &seen)
        .env("EXIT_CODE", "3");
    let mut c = McpClient::spawn(cmd);

    // Passthrough: initialize and tools/list arrive intact.
    let init = c.initialize("exec-test");
    assert_eq!(init["result"]["serverInfo"]["name"], "fake", "{init}");
    let list = c.call("tools/list", json!({}));
    assert_eq!(list["result"]["tools"][0]["name"], "show_env", "{list}");
    assert_eq!(list["result"]["tools"][0]["description"], "returns K");

    let (err, text) = c.tool("show_env", json!({}));
    assert!(!err, "{text}");
    assert_eq!(text, "K is [REDACTED:svc]");
    let (err, _) = c.tool("other", json!({}));
    assert!(err);

    // The client closes: the server's stdin closes, it exits, wrap exits with its code.
    let (code, stderr) = c.finish(Duration::from_secs(10));
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        SECRET,
        "the server saw the real value"
    );
    assert!(stderr.contains("fake server: K=[REDACTED:svc]"), "{stderr}");
    assert_no_secret("wrap's stderr", &stderr);

    let records = audit_records(&home);
    let calls: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "tool_call")
        .collect();
    assert_eq!(calls.len(), 2, "{records:?}");
    assert_eq!(calls[0]["path"], "show_env");
    assert_eq!(calls[0]["agent"], "exec-test (unverified)");
    assert!(calls[0]["duration_ms"].is_u64());
    let detail = |call: &Value| call["detail"].as_str().unwrap().to_string();
    assert!(detail(calls[0]).contains("isError=false"));
    assert_eq!(calls[1]["path"], "other");
    assert!(detail(calls[1]).contains("isError=true"));
    let run = records
        .iter()
        .find(|r| r["kind"] == "exec" && r["method"] == "wrap")
        .expect("the wrapped server's run is audited before it starts");
    assert!(run["status"].is_null(), "{run}");
    let outcome = records
        .iter()
        .find(|r| r["kind"] == "outcome" && r["of"] == run["seq"])
        .expect("and its outcome after");
    assert_eq!(outcome["status"], 3);
    // The server started after its decision was on record.
    assert!(run["seq"].as_u64() < calls[0]["seq"].as_u64(), "{run}");
}

/// A key the scanner recognizes (OpenAI project key shape), random per run.
fn migratable_key() -> String {
    let body: String = (0..40)
        .map(|i| {
            let b = SECRET.as_bytes()[i % SECRET.len()];
            (b'a' + (b.wrapping_add(i as u8) % 26)) as char
        })
        .collect();
    format!("sk-proj-{body}T3BlbkFJ{body}")
}

#[test]
fn migrated_env_file_gives_run_the_original_values() {
    let (dir, home) = home();
    let key = migratable_key();
    let env = write_in(&dir, ".env", &format!("OPENAI_API_KEY={key}\nMODE=test\n"));
    ok(airlock(&home).arg("migrate").arg(&env).output().unwrap());
    let text = std::fs::read_to_string(&env).unwrap();
    assert!(!text.contains(&key), "{text}");
    let seen = dir.path().join("seen");
    let script = format!(
        "printf '%s|%s' \"$OPENAI_API_KEY\" \"$MODE\" > {}",
        seen.display()
    );
    ok(airlock(&home)
        .arg("run")
        .arg("--env-file")
        .arg(&env)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap());
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        format!("{key}|test")
    );
}

#[test]
fn migrated_mcp_config_still_launches_the_server_with_the_same_env() {
    let (dir, home) = home();
    let key = migratable_key();
    let server = write_in(&dir, "server.py", FAKE_SERVER);
    let seen = dir.path().join("seen");
    let cfg = dir.path().join("claude_desktop_config.json");
    let original = json!({"mcpServers": {"fake": {
        "command": "python3",
        "args": [server.to_str().unwrap()],
        "env": {"K": key, "SEEN_FILE": seen.to_str().unwrap()}
    }}});
    std::fs::write(&cfg, original.to_string()).unwrap();
    ok(airlock(&home).arg("migrate").arg(&cfg).output().unwrap());
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    assert!(!v.to_string().contains(&key));
    // Launch it exactly as an MCP client would, from the rewritten entry.
    let entry = &v["mcpServers"]["fake"];
    let mut cmd = Command::new(entry["command"].as_str().unwrap());
    cmd.args(
        entry["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap()),
    )
    .env("AIRLOCK_HOME", &home);
    for (k, val) in entry["env"].as_object().unwrap() {
        cmd.env(k, val.as_str().unwrap());
    }
    let mut c = McpClient::spawn(cmd);
    let init = c.initialize("exec-test");
    assert_eq!(init["result"]["serverInfo"]["name"], "fake", "{init}");
    let (err, text) = c.tool("show_env", json!({}));
    assert!(!err && text.starts_with("K is [REDACTED:"), "{text}");
    let (code, _) = c.finish(Duration::from_secs(10));
    assert_eq!(code, Some(0));
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        key,
        "the server got the original value"
    );
}
