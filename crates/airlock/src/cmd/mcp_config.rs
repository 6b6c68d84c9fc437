//! `airlock mcp-config CLIENT`: the snippet that makes an MCP client launch
//! airlock with the trusted identity `--agent CLIENT`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::json;

use crate::cli::McpConfigArgs;
use crate::output;

const CLIENTS: &[(&str, &str)] = &[
    (
        "claude-desktop",
        "claude_desktop_config.json (macOS: ~/Library/Application Support/Claude/, Windows: %APPDATA%\\Claude\\, Linux: ~/.config/Claude/)",
    ),
    ("claude-code", ".mcp.json in your project"),
    (
        "cursor",
        "~/.cursor/mcp.json or .cursor/mcp.json in your project",
    ),
    ("vscode", ".vscode/mcp.json in your workspace"),
    (
        "windsurf",
        "~/.codeium/windsurf/mcp_config.json (Windows: %USERPROFILE%\\.codeium\\windsurf\\mcp_config.json)",
    ),
    ("codex", "~/.codex/config.toml"),
];

pub(crate) fn run(home: &airlock_home::Home, args: &McpConfigArgs) -> anyhow::Result<()> {
    let Some((client, file)) = CLIENTS.iter().find(|(c, _)| *c == args.client) else {
        let names: Vec<&str> = CLIENTS.iter().map(|(c, _)| *c).collect();
        bail!(
            "unknown MCP client \"{}\"; expected one of: {}",
            args.client.escape_debug(),
            names.join(", ")
        );
    };
    let exe = invoked_path()?;
    let exe = exe.to_string_lossy().into_owned();
    let serve_args = ["serve", "--agent", client];
    let airlock_home_var = std::env::var(airlock_home::HOME_ENV)
        .ok()
        .filter(|h| !h.is_empty());
    let env = airlock_home_var
        .as_ref()
        .map(|h| json!({ airlock_home::HOME_ENV: h }));
    let mut server = json!({ "command": exe, "args": serve_args });
    if let Some(env) = &env {
        server["env"] = env.clone();
    }
    // Claude Code's own command: `claude mcp add NAME -e K=V -- CMD ARGS...`
    // (`-e` takes several values, so it comes after the name and ends at `--`).
    let claude_add = (*client == "claude-code").then(|| {
        let mut words = vec!["claude", "mcp", "add", "--scope", "user", "airlock"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        if let Some(h) = &airlock_home_var {
            words.push("-e".into());
            words.push(format!("{}={h}", airlock_home::HOME_ENV));
        }
        words.push("--".into());
        words.push(exe.clone());
        words.extend(serve_args.iter().map(|s| (*s).to_string()));
        words
            .iter()
            .map(|w| shell_word(w))
            .collect::<Vec<_>>()
            .join(" ")
    });
    let (format, snippet) = match *client {
        "codex" => (
            "toml",
            json!({ "mcp_servers": { "airlock": server.clone() } }),
        ),
        "vscode" => {
            let mut s = server.clone();
            s["type"] = json!("stdio");
            ("json", json!({ "servers": { "airlock": s } }))
        }
        _ => ("json", json!({ "mcpServers": { "airlock": server } })),
    };
    if !home.vault_path().exists() && !home.config_path().exists() {
        output::warn(format_args!(
            "there is no airlock home at {} yet: run `airlock init` (and `airlock add`) before the client starts airlock",
            home.root().display()
        ));
    }
    if args.json {
        let mut v = json!({
            "client": client,
            "file": file,
            "format": format,
            "snippet": snippet,
        });
        if let Some(c) = &claude_add {
            v["command"] = json!(c);
        }
        return output::json(&v);
    }
    if *client == "codex" {
        let mut toml = format!(
            "[mcp_servers.airlock]\ncommand = {}\nargs = [\"serve\", \"--agent\", \"codex\"]\n",
            toml_string(&exe)
        );
        if let Some(h) = &airlock_home_var {
            toml.push_str(&format!(
                "\n[mcp_servers.airlock.env]\n{} = {}\n",
                airlock_home::HOME_ENV,
                toml_string(h)
            ));
        }
        output::line(toml.trim_end());
    } else {
        output::json(&snippet)?;
    }
    output::note(format_args!(
        "# add this to {file}; the agent gets no key, only airlock's tools"
    ));
    if let Some(c) = &claude_add {
        output::note(format_args!("# or run: {c}"));
    }
    Ok(())
}

/// The path the owner ran airlock by, not where symlinks lead: a package
/// manager's `bin/airlock` link survives upgrades, the versioned file behind it
/// does not. argv[0] when it names a path (made absolute, symlinks kept); else
/// the first `airlock` on PATH that is argv[0]; else the running executable.
fn invoked_path() -> anyhow::Result<PathBuf> {
    let exe = || std::env::current_exe().context("cannot find the airlock executable's path");
    let Some(argv0) = std::env::args_os().next().map(PathBuf::from) else {
        return exe();
    };
    if argv0.components().count() > 1 || argv0.is_absolute() {
        let abs = std::path::absolute(&argv0)
            .with_context(|| format!("cannot make {} an absolute path", argv0.display()))?;
        return Ok(abs);
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(&argv0))
            .find(|p| is_same_program(p))
    });
    match found {
        Some(p) => Ok(p),
        None => exe(),
    }
}

/// Whether `candidate` is an executable that is this very program (so a PATH
/// entry for another `airlock` is not written in its place).
fn is_same_program(candidate: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(candidate) else {
        return false;
    };
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return false;
    }
    match (
        std::fs::canonicalize(candidate),
        std::env::current_exe().and_then(std::fs::canonicalize),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A word for a POSIX shell: bare when safe, else single-quoted.
fn shell_word(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A TOML basic string (JSON string escaping is valid TOML for these characters).
fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}
