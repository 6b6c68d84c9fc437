//! Helpers shared by the `airlock` binary's test crates (`cli`, `exec`, `mcp`,
//! `learn`, `incident`, `attenuate`): config edits, JSON lookups, the audit file,
//! the JSON-RPC stdio exchange, and a server on a free port with one request
//! through its gateway.
#![allow(dead_code)] // each test crate uses its own subset

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
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
        .stderr(Stdio::null())
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
