//! `airlock wrap [--cap C]... [--env VAR=airlock://NAME]... -- CMD ARGS...`: runs a
//! stdio MCP server with secrets in its environment, so the MCP client's
//! configuration holds `airlock wrap …` instead of a raw key.
//!
//! JSON-RPC over stdio is one message per line. Client → server lines pass
//! unchanged; every server → client line is scrubbed of the secrets the server
//! holds (whole lines, so a message is never delayed waiting for more output), and
//! so is its stderr. Each `tools/call` is audited when its response passes (tool
//! name, duration, `isError`), matched by request id; if the record cannot be
//! written, the client gets a JSON-RPC error instead of the result. stdout carries
//! only the relayed protocol; airlock's own messages go to stderr.
//!
//! Shutdown: when the client closes our stdin, the server's stdin is closed; a
//! server still running 3 s later gets `SIGTERM`, and `SIGKILL` 2 s after that.
//! When the client stops reading, the server gets `SIGTERM`. airlock exits with
//! the server's exit code.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use airlock_audit::{AuditError, AuditLog, Decision, Event, Kind};
use airlock_exec::reference::{self, ResolvedEnv};
use airlock_exec::{Launch, Limits, Scrubber, Signaller, Stdin};
use airlock_home::Home;
use anyhow::bail;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};

use crate::cli::WrapArgs;
use crate::cmd::run::{
    child_env, child_path, forward_signals, open, resolve_program, spawn_failure,
};
use crate::cmd::run_proxy::{self, Plan};
use crate::output;

/// How long a server may keep running after the client closed its stdin.
const CLOSE_GRACE: Duration = Duration::from_secs(3);
/// How long after `SIGTERM` before `SIGKILL`.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// What the relay knows about the conversation, for the audit records.
#[derive(Default)]
struct Calls {
    /// `tools/call` requests waiting for their response: id (as JSON) → (tool, start).
    pending: HashMap<String, (String, Instant)>,
    /// The client's self-declared name (`initialize` → `clientInfo.name`).
    client: Option<String>,
    /// How many tool calls were answered.
    answered: u64,
}

/// Shared by both directions.
struct Relay {
    calls: Mutex<Calls>,
    audit: Mutex<AuditLog>,
    program: String,
    capability: Option<String>,
}

impl Relay {
    fn calls(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn append(&self, event: &Event) -> Result<(), AuditError> {
        self.audit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .append(event)
            .map(|_| ())
    }

    /// The audit record of one answered (or abandoned) tool call.
    fn tool_event(
        &self,
        client: Option<&str>,
        tool: &str,
        started: Instant,
        outcome: &str,
    ) -> Event {
        let agent = format!("{} (unverified)", client.unwrap_or("unknown"));
        let mut e = Event::new(Kind::ToolCall)
            .agent(&agent, false)
            .method("tools/call")
            .path(tool)
            .duration(started.elapsed())
            .decision(Decision::Allow)
            .detail(&format!("airlock wrap {}; {outcome}", self.program));
        if let Some(c) = &self.capability {
            e = e.capability(c);
        }
        e
    }
}

pub(crate) fn run(home: &Home, args: &WrapArgs) -> anyhow::Result<ExitCode> {
    let Some((cmd, cmd_args)) = args.command.split_first() else {
        bail!(
            "no command given; usage: airlock wrap [--cap C]... [--env VAR=airlock://NAME]... -- CMD ARGS..."
        );
    };
    let (vault, audit) = open(home)?;
    // Confined, the server's environment follows each capability's `inject`
    // (as `run --confine`): placeholders, and a proxy of the run's own, for
    // those with `inject = "placeholder"`.
    let mut plan = match args.confine {
        true => Plan::for_confine(home, &args.caps)?,
        false => None,
    };
    let env = child_env(home, &vault, &args.caps, plan.as_mut(), |lookup| {
        let mut all = ResolvedEnv::default();
        for assignment in &args.env {
            all.extend(reference::resolve_assignment(assignment, lookup)?);
        }
        Ok(all)
    })?;
    let scrubber = env.scrubber()?;
    let secrets = env.secret_names();
    let program = resolve_program(cmd, &child_path());
    // airlock scrubs whole lines itself (below), so the launch gets no secrets
    // to scrub: a stream scrubber would hold back the end of a line that might
    // begin a secret, and a JSON-RPC response must not wait for the next one.
    let launch = env.apply(
        Launch::new(&program)
            .arg0(cmd)
            .args(cmd_args)
            .stdin(Stdin::Piped)
            .limits(Limits::unlimited()),
        false,
    );
    let confinement = match args.confine {
        true => Some(super::run::confinement(home, &args.caps, &program)?),
        false => None,
    };
    let relay = Arc::new(Relay {
        calls: Mutex::new(Calls::default()),
        audit: Mutex::new(audit),
        program: program.display().to_string(),
        capability: match args.caps.as_slice() {
            [c] => Some(c.clone()),
            _ => None,
        },
    });

    // Write-ahead (DESIGN §7.5): on record before the server starts with a
    // secret or a placeholder; if it cannot be written, nothing runs.
    let detail = format!(
        "airlock wrap{}; secrets: [{}]; capabilities: [{}]",
        if args.confine { " --confine" } else { "" },
        secrets.join(", "),
        args.caps.join(", "),
    );
    let mut decision = Event::new(Kind::Exec)
        .agent("owner", true)
        .method("wrap")
        .path(&relay.program)
        .decision(Decision::Allow)
        .detail(&detail);
    if let Some(c) = &relay.capability {
        decision = decision.capability(c);
    }
    let seq = relay
        .audit
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .append(&decision)
        .map_err(|e| {
            anyhow::anyhow!("the wrapped server could not be audited, so it was not started: {e}")
        })?;

    let started = Instant::now();
    let relayed = relay.clone();
    let child = |launch| async move { Ok(serve(launch, scrubber, relayed).await) };
    let (result, proxied) = run_proxy::drive(home, vault, plan, launch, confinement, child)?;

    let answered = relay.calls().answered;
    let detail = format!(
        "{detail}; {answered} tool call(s) answered{}",
        proxied.map_or_else(String::new, |s| s.detail("inject = placeholder")),
    );
    let event = decision.outcome_of(seq).duration(started.elapsed());
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            let (code, msg) = spawn_failure(&e);
            output::error(msg);
            code
        }
    };
    let event = event.status(u16::from(code)).detail(&detail);
    if let Err(e) = relay.append(&event) {
        output::warn(format_args!(
            "the wrapped server's run could not be audited: {e}"
        ));
    }
    Ok(ExitCode::from(code))
}

/// Runs the server and both relays; returns its exit status.
async fn serve(
    launch: Launch,
    scrubber: Scrubber,
    relay: Arc<Relay>,
) -> Result<u8, airlock_exec::ExecError> {
    let mut running = launch.spawn(&Scrubber::empty())?;
    let Some(server_in) = running.take_stdin() else {
        return Err(airlock_exec::ExecError::Io(std::io::Error::other(
            "the server's stdin pipe is missing",
        )));
    };
    let signaller = running.signaller();
    let signals = forward_signals(signaller.clone(), false).ok();
    let to_server = tokio::spawn(client_to_server(
        tokio::io::stdin(),
        server_in,
        relay.clone(),
        signaller.clone(),
    ));
    let (out_w, out_r) = tokio::io::duplex(64 * 1024);
    let (err_w, err_r) = tokio::io::duplex(64 * 1024);
    let to_client = tokio::spawn(server_to_client(
        out_r,
        tokio::io::stdout(),
        scrubber.clone(),
        relay.clone(),
        signaller,
    ));
    let to_stderr = tokio::spawn(scrub_stream(err_r, tokio::io::stderr(), scrubber));
    let result = {
        let (mut out_w, mut err_w) = (out_w, err_w);
        running.stream(&mut out_w, &mut err_w).await
        // Both writers drop here: the relays see the end of the output.
    };
    let _ = to_client.await;
    let _ = to_stderr.await;
    to_server.abort();
    if let Some(s) = signals {
        s.abort();
    }
    // Calls the server never answered.
    let abandoned: Vec<(String, Instant)> = relay.calls().pending.drain().map(|(_, v)| v).collect();
    let client = relay.calls().client.clone();
    for (tool, at) in abandoned {
        let e = relay.tool_event(
            client.as_deref(),
            &tool,
            at,
            "no response: the server exited",
        );
        if let Err(err) = relay.append(&e) {
            output::warn(format_args!("a tool call could not be audited: {err}"));
        }
    }
    let (exit, _, _) = result?;
    Ok(u8::try_from(exit.exit_code()).unwrap_or(1))
}

/// The JSON-RPC messages of one line (a message, or a batch).
fn messages(line: &[u8]) -> Vec<Value> {
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Array(batch)) => batch,
        Ok(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    }
}

/// Client → server: each line unchanged; `initialize` and `tools/call` noted.
async fn client_to_server(
    client: impl AsyncRead + Unpin,
    mut server: impl AsyncWrite + Unpin,
    relay: Arc<Relay>,
    signaller: Signaller,
) {
    let mut client = BufReader::new(client);
    let mut line = Vec::new();
    loop {
        line.clear();
        match client.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        for msg in messages(&line) {
            let method = msg.get("method").and_then(Value::as_str);
            match (method, msg.get("id")) {
                (Some("initialize"), _) => {
                    relay.calls().client = msg
                        .pointer("/params/clientInfo/name")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                }
                (Some("tools/call"), Some(id)) => {
                    let tool = msg
                        .pointer("/params/name")
                        .and_then(Value::as_str)
                        .unwrap_or("(unnamed)")
                        .to_string();
                    relay
                        .calls()
                        .pending
                        .insert(id.to_string(), (tool, Instant::now()));
                }
                _ => {}
            }
        }
        if server.write_all(&line).await.is_err() || server.flush().await.is_err() {
            // The server closed its stdin: nothing more to pass on.
            break;
        }
    }
    // The client is gone: close the server's stdin, then make sure it ends.
    drop(server);
    tokio::time::sleep(CLOSE_GRACE).await;
    if signaller.signal(tokio::signal::unix::SignalKind::terminate().as_raw_value()) {
        tokio::time::sleep(TERM_GRACE).await;
        signaller.kill();
    }
}

/// Server → client: each line scrubbed; responses to `tools/call` audited before
/// they are passed on.
async fn server_to_client(
    server: impl AsyncRead + Unpin,
    mut client: impl AsyncWrite + Unpin,
    scrubber: Scrubber,
    relay: Arc<Relay>,
    signaller: Signaller,
) {
    let mut server = BufReader::new(server);
    let mut line = Vec::new();
    let mut client_open = true;
    loop {
        line.clear();
        match server.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let mut clean = scrubber.scrub(&line);
        let mut withheld = Vec::new();
        for msg in messages(&clean) {
            if let Some(reply) = audit_response(&relay, &msg) {
                withheld.push(reply);
            }
        }
        if !withheld.is_empty() {
            // A result whose audit record could not be written is not delivered.
            clean = withheld
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes();
            clean.push(b'\n');
        }
        if client_open && (client.write_all(&clean).await.is_err() || client.flush().await.is_err())
        {
            // The client stopped reading: end the server, keep draining it.
            client_open = false;
            signaller.signal(tokio::signal::unix::SignalKind::terminate().as_raw_value());
        }
    }
}

/// Audits `msg` if it answers a pending `tools/call`. Returns the JSON-RPC error
/// to send instead when the record cannot be written.
fn audit_response(relay: &Relay, msg: &Value) -> Option<Value> {
    if msg.get("method").is_some() {
        return None;
    }
    let id = msg.get("id")?;
    let (tool, at, client) = {
        let mut calls = relay.calls();
        let (tool, at) = calls.pending.remove(&id.to_string())?;
        calls.answered += 1;
        (tool, at, calls.client.clone())
    };
    let is_error = msg.get("error").is_some()
        || msg.pointer("/result/isError").and_then(Value::as_bool) == Some(true);
    let outcome = match msg.pointer("/error/code") {
        Some(code) => format!("isError=true (JSON-RPC error {code})"),
        None => format!("isError={is_error}"),
    };
    let event = relay.tool_event(client.as_deref(), &tool, at, &outcome);
    match relay.append(&event) {
        Ok(()) => None,
        Err(e) => {
            output::warn(format_args!("a tool call could not be audited: {e}"));
            Some(json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {
                    "code": -32603,
                    "message": "airlock: the audit log could not be written, so the tool result was withheld",
                },
            }))
        }
    }
}

/// Copies `from` to `to`, scrubbed as a stream (the server's stderr).
async fn scrub_stream(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    scrubber: Scrubber,
) {
    use tokio::io::AsyncReadExt as _;
    let mut stream = scrubber.stream();
    let mut buf = vec![0; 16 * 1024];
    let mut ok = true;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let clean = stream.push(&buf[..n]);
        if ok && (to.write_all(&clean).await.is_err() || to.flush().await.is_err()) {
            ok = false;
        }
    }
    if ok {
        let _ = to.write_all(&stream.finish()).await;
        let _ = to.flush().await;
    }
}
