//! `airlock mcp-config CLIENT`: the snippet that makes an MCP client launch
//! airlock with the trusted identity `--agent CLIENT`.

use anyhow::{Context, bail};
use serde_json::json;

use crate::cli::McpConfigArgs;
use crate::output;

const CLIENTS: &[(&str, &str)] = &[
    (
        "claude-desktop",
        "claude_desktop_config.json (macOS: ~/Library/Application Support/Claude/, Windows: %APPDATA%\\Claude\\, Linux: ~/.config/Claude/)",
    ),
    (
        "claude-code",
        ".mcp.json in your project (or: claude mcp add-json airlock '<the \"airlock\" object>')",
    ),
    (
        "cursor",
        "~/.cursor/mcp.json or .cursor/mcp.json in your project",
    ),
    ("vscode", ".vscode/mcp.json in your workspace"),
    ("codex", "~/.codex/config.toml"),
];

pub(crate) fn run(args: &McpConfigArgs) -> anyhow::Result<()> {
    let Some((client, file)) = CLIENTS.iter().find(|(c, _)| *c == args.client) else {
        let names: Vec<&str> = CLIENTS.iter().map(|(c, _)| *c).collect();
        bail!(
            "unknown MCP client \"{}\"; expected one of: {}",
            args.client.escape_debug(),
            names.join(", ")
        );
    };
    let exe = std::env::current_exe().context("cannot find the airlock executable's path")?;
    let exe = exe.to_string_lossy().into_owned();
    let serve_args = ["serve", "--agent", client];
    let home = std::env::var(airlock_home::HOME_ENV)
        .ok()
        .filter(|h| !h.is_empty());
    let env = home.as_ref().map(|h| json!({ airlock_home::HOME_ENV: h }));
    let mut server = json!({ "command": exe, "args": serve_args });
    if let Some(env) = &env {
        server["env"] = env.clone();
    }
    match *client {
        "codex" => {
            let mut toml = format!(
                "[mcp_servers.airlock]\ncommand = {}\nargs = [\"serve\", \"--agent\", \"codex\"]\n",
                toml_string(&exe)
            );
            if let Some(h) = &home {
                toml.push_str(&format!(
                    "\n[mcp_servers.airlock.env]\n{} = {}\n",
                    airlock_home::HOME_ENV,
                    toml_string(h)
                ));
            }
            output::line(toml.trim_end());
        }
        "vscode" => {
            let mut s = server.clone();
            s["type"] = json!("stdio");
            output::json(&json!({ "servers": { "airlock": s } }))?;
        }
        _ => output::json(&json!({ "mcpServers": { "airlock": server } }))?,
    }
    output::note(format_args!(
        "# add this to {file}; the agent gets no key, only airlock's tools"
    ));
    Ok(())
}

/// A TOML basic string (JSON string escaping is valid TOML for these characters).
fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}
