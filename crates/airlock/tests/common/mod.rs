//! Helpers shared by the `airlock` binary's test crates (`cli`, `exec`, `mcp`):
//! config edits, JSON lookups, the audit file and the JSON-RPC stdio exchange.
#![allow(dead_code)] // each test crate uses its own subset

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout};

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
