//! Helpers shared by the `airlock` binary's test crates (`cli`, `exec`, `mcp`,
//! `learn`, `incident`, `attenuate`, `policy_diff`, `proxy`): config edits, JSON
//! lookups, the audit file, the JSON-RPC stdio exchange and an MCP client over
//! a child's stdio, a loopback HTTP upstream, and a server on a free port with
//! one request through its gateway.
#![allow(dead_code)] // each test crate uses its own subset

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Appends `extra` to the home's `airlock.toml`.
pub(crate) fn append_config(home: &Path, extra: &str) {
    edit_config(home, |text| text + extra);
}

/// Rewrites the home's `airlock.toml` through `edit`.
pub(crate) fn edit_config(home: &Path, edit: impl FnOnce(String) -> String) {
    let config = home.join("airlock.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, edit(text)).unwrap();
}

/// `airlock add svc --no-cap --url URL --key-from-env K` with `K` = `key`: the
/// home gets service `svc` on `url` and no capability yet.
pub(crate) fn add_svc(home: &Path, url: &str, key: &str) {
    ok(Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args([
            "add",
            "svc",
            "--no-cap",
            "--url",
            url,
            "--key-from-env",
            "K",
        ])
        .env("AIRLOCK_HOME", home)
        .env("K", key)
        .stdin(Stdio::null())
        .output()
        .unwrap());
}

/// The element of the JSON array `list` whose `key` is `name`; panics naming
/// both when there is none.
pub(crate) fn find_named(list: &Value, key: &str, name: &str) -> Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .find(|e| e[key] == name)
        .unwrap_or_else(|| panic!("no {key} = {name:?} in {list}"))
        .clone()
}

/// The string `key` of each element of the JSON array `list`, in order; panics
/// naming `list` when it is not an array of objects with a string `key`.
pub(crate) fn field_strs<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|e| {
            e[key]
                .as_str()
                .unwrap_or_else(|| panic!("no string {key} in {list}"))
        })
        .collect()
}

/// The (first) `.jsonl` audit file in the audit directory `dir`.
pub(crate) fn audit_jsonl(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap()
}

/// The `initialize` params of an MCP client named `client`.
pub(crate) fn initialize_params(client: &str) -> Value {
    json!({"protocolVersion": "2025-06-18", "capabilities": {},
           "clientInfo": {"name": client, "version": "1"}})
}

/// Reads newline-delimited JSON-RPC from `stdout` until the response with `id`;
/// every line must be JSON. `closed` is the failure message at end of stream.
pub(crate) fn read_response(stdout: &mut impl BufRead, id: u64, closed: &str) -> Value {
    loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "{closed}");
        let v: Value = serde_json::from_str(&line).expect("stdout carries only JSON-RPC");
        if v["id"] == json!(id) {
            return v;
        }
    }
}

/// A `tools/call` answer as (isError, text); panics on a JSON-RPC error or a
/// result with no text content, naming the message, rather than handing the
/// caller `(false, "")`, which a "not contains" assertion would wave through.
pub(crate) fn tool_result(v: &Value) -> (bool, String) {
    assert!(
        v.get("error").is_none(),
        "tools/call answered with a JSON-RPC error, not a tool result: {v}"
    );
    let r = &v["result"];
    let text = r["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("tools/call result without text content: {v}"));
    let is_error = match &r["isError"] {
        Value::Null => false,
        Value::Bool(b) => *b,
        other => panic!("isError is not a boolean: {other} in {v}"),
    };
    (is_error, text.to_string())
}

/// A newline-delimited JSON-RPC (MCP) client over a child's stdio.
pub(crate) struct McpClient {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next: u64,
}

impl McpClient {
    /// Spawns `cmd` with stdin, stdout and stderr piped.
    pub(crate) fn spawn(mut cmd: Command) -> McpClient {
        let mut child = spawn_piped(&mut cmd);
        McpClient {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            next: 1,
        }
    }

    pub(crate) fn send(&mut self, msg: &Value) {
        let pipe = self.stdin.as_mut().unwrap();
        writeln!(pipe, "{msg}").unwrap();
        pipe.flush().unwrap();
    }

    /// Sends a request and returns its response; every line read must be JSON.
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        read_response(&mut self.stdout, id, "stdout closed")
    }

    /// `initialize` as the client named `client`, then `notifications/initialized`;
    /// the answer to `initialize`.
    pub(crate) fn initialize(&mut self, client: &str) -> Value {
        let r = self.call("initialize", initialize_params(client));
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        r
    }

    /// `tools/call`: (isError, first text), through [`tool_result`].
    pub(crate) fn tool(&mut self, name: &str, args: Value) -> (bool, String) {
        tool_result(&self.call("tools/call", json!({"name": name, "arguments": args})))
    }

    /// Closes stdin and waits (at most `limit`); returns the exit code and stderr.
    pub(crate) fn finish(mut self, limit: Duration) -> (Option<i32>, String) {
        drop(self.stdin.take());
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < limit,
                "the process did not exit after stdin closed"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let err = read_stderr(&mut self.child);
        (status.code(), err)
    }
}

/// The Python source of a stdio MCP server named `name` whose one tool answers
/// `tool(arguments)` as text. `tool` is Python that imports what it needs and
/// defines that function (`json` and `sys` are imported here).
pub(crate) fn python_mcp_server(name: &str, tool: &str) -> String {
    format!(
        r#"import json, sys
{tool}
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m:
        continue
    if m.get("method") == "initialize":
        r = {{"protocolVersion": "2025-06-18", "capabilities": {{"tools": {{}}}},
             "serverInfo": {{"name": "{name}", "version": "1"}}}}
    else:
        text = tool(m["params"]["arguments"])
        r = {{"content": [{{"type": "text", "text": text}}], "isError": False}}
    print(json.dumps({{"jsonrpc": "2.0", "id": m["id"], "result": r}}), flush=True)
"#
    )
}

/// Spawns `cmd` with stdin, stdout and stderr piped.
pub(crate) fn spawn_piped(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `cmd` with `input` on its stdin (closed after it), stdout and stderr
/// captured; a child that stops reading early (a broken pipe) is not an error.
pub(crate) fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = spawn_piped(cmd);
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// Everything (left) on a child's piped stderr, up to its end.
pub(crate) fn read_stderr(child: &mut Child) -> String {
    std::io::read_to_string(child.stderr.take().unwrap()).unwrap()
}

/// A child's piped stdout as lines, and the first line read from it.
pub(crate) fn first_line(child: &mut Child) -> (BufReader<ChildStdout>, String) {
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    (stdout, line)
}

/// The command's stdout; fails showing both streams when it did not succeed.
pub(crate) fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Fails unless `out` is a usage or config error (exit 2) whose stderr says
/// `needle`, naming `what` ran; the stderr.
#[track_caller]
pub(crate) fn exit_2(what: impl std::fmt::Debug, out: &Output, needle: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{what:?}: {err}");
    assert!(err.contains(needle), "{what:?}: {err}");
    err
}

/// `airlock serve DOOR 127.0.0.1:PORT` (`--gateway`, `--http`) on a free port,
/// its output discarded; killed when dropped.
pub(crate) struct Door {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Drop for Door {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `airlock serve DOOR` on `home` and waits until it accepts connections.
pub(crate) fn serve_door(home: &Path, door: &str) -> Door {
    serve_door_with(home, door, Stdio::null())
}

/// [`serve_door`] with its stderr going to `stderr` (`Stdio::piped()` to read
/// what it logged, after a kill, with [`read_stderr`]).
pub(crate) fn serve_door_with(home: &Path, door: &str, stderr: Stdio) -> Door {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["serve", door, &format!("127.0.0.1:{port}")])
        .env("AIRLOCK_HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let server = Door { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "airlock serve {door} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// One request through the gateway at `port` with the agent token as a bearer
/// token: the status and the body.
pub(crate) fn gateway_call(port: u16, token: &str, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{answer}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A request head read off `reader`: the request line and the header lines,
/// CRLFs kept, up to the blank line (or the end of input).
pub(crate) fn read_head(reader: &mut impl BufRead) -> String {
    let mut head = String::new();
    loop {
        let mut l = String::new();
        if reader.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
            return head;
        }
        head.push_str(&l);
    }
}

/// An HTTP/1.1 answer that closes the connection: `status` ("200 OK"), the
/// `headers` in order, then `Content-Length`, and the body.
pub(crate) fn http_response(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out + &format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// An upstream on a free loopback port that answers each connection with
/// `reply(request head)` ([`read_head`]; see [`http_response`]); its port.
pub(crate) fn http_upstream(reply: impl Fn(&str) -> String + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let head = read_head(&mut BufReader::new(stream.try_clone().unwrap()));
            let _ = stream.write_all(reply(&head).as_bytes());
        }
    });
    port
}
