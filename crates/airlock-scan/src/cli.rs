//! `airlock scan`: arguments and the command itself.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::finding::{Finding, Risk};
use crate::walk::{ScanOptions, scan};
use crate::{ScanError, Scanner, report};

/// Report format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned text table for people.
    Table,
    /// JSON array of findings.
    Json,
    /// SARIF 2.1.0 (GitHub code scanning).
    Sarif,
}

/// Arguments of `airlock scan`.
#[derive(clap::Args, Debug, Clone)]
pub struct ScanArgs {
    /// Files or directories to scan [default: the current directory, unless --mcp-configs alone].
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Also scan every blob in git history; findings name the commit that introduced them.
    #[arg(long)]
    pub git: bool,
    /// Also scan the MCP client configs of the current user (Claude, Cursor, VS Code, Windsurf, Codex…).
    #[arg(long)]
    pub mcp_configs: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Exit with 1 when a finding is at or above this risk.
    #[arg(long, value_enum, value_name = "RISK", default_value_t = Risk::Low)]
    pub fail_on: Risk,
    /// JSON file of fingerprints to ignore (see --write-baseline).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write the fingerprints of every current finding to FILE (plus those of --baseline), then report with it applied.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    /// Ask each found key's own provider whether it is live (GitHub, GitLab, OpenAI, Anthropic, Stripe, Slack, npm, Hugging Face, SendGrid, DigitalOcean; AWS key id + secret pairs through STS GetCallerIdentity, signed, the secret never sent). This SENDS THE KEY TO ITS PROVIDER: one read-only request per key, to that provider's documented host only.
    #[arg(long)]
    pub verify: bool,
    /// Skip files larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_file_size: u64,
}

impl Default for ScanArgs {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            git: false,
            mcp_configs: false,
            format: OutputFormat::Table,
            fail_on: Risk::Low,
            baseline: None,
            write_baseline: None,
            max_file_size: 10 * 1024 * 1024,
            verify: false,
        }
    }
}

/// Per-user MCP client config locations, resolved from `$HOME` (and
/// `%APPDATA%` where set). Only the ones that exist are returned.
pub fn mcp_config_paths() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from);
    let appdata = std::env::var_os("APPDATA").map(PathBuf::from);
    mcp_config_paths_in(home.as_deref(), appdata.as_deref())
}

/// [`mcp_config_paths`] for an explicit home (and `%APPDATA%`) directory.
pub fn mcp_config_paths_in(home: Option<&Path>, appdata: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(home) = home {
        for rel in [
            "Library/Application Support/Claude/claude_desktop_config.json",
            ".config/Claude/claude_desktop_config.json",
            ".claude.json",
            ".claude/settings.json",
            ".cursor/mcp.json",
            ".codeium/windsurf/mcp_config.json",
            ".codex/config.toml",
            ".gemini/settings.json",
            ".config/Code/User/mcp.json",
            ".config/Code/User/settings.json",
            "Library/Application Support/Code/User/mcp.json",
            "Library/Application Support/Code/User/settings.json",
            ".config/zed/settings.json",
        ] {
            out.push(home.join(rel));
        }
    }
    if let Some(appdata) = appdata {
        for rel in [
            "Claude/claude_desktop_config.json",
            "Code/User/mcp.json",
            "Code/User/settings.json",
        ] {
            out.push(appdata.join(rel));
        }
    }
    out.retain(|p| p.is_file());
    out
}

/// Reads a baseline: `{"fingerprints": [...]}`, a plain array of
/// fingerprints, or a JSON report of this command (its `fingerprint` fields).
pub fn read_baseline(path: &Path) -> Result<BTreeSet<String>, ScanError> {
    let err = |reason: String| ScanError::Baseline {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| err(format!("not JSON ({e})")))?;
    let list = match &v {
        serde_json::Value::Array(a) => a.clone(),
        serde_json::Value::Object(o) => match o.get("fingerprints") {
            Some(serde_json::Value::Array(a)) => a.clone(),
            _ => return Err(err("no \"fingerprints\" array".to_owned())),
        },
        _ => {
            return Err(err(
                "expected an object with \"fingerprints\" or an array".to_owned()
            ));
        }
    };
    Ok(list
        .iter()
        .filter_map(|e| {
            e.as_str()
                .or_else(|| e.get("fingerprint").and_then(|f| f.as_str()))
        })
        .map(str::to_owned)
        .collect())
}

/// Writes a baseline: sorted fingerprints, no paths, no line numbers.
pub fn write_baseline(path: &Path, fingerprints: &BTreeSet<String>) -> Result<(), ScanError> {
    let doc = serde_json::json!({ "version": 1, "fingerprints": fingerprints });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    std::fs::write(path, text).map_err(|source| ScanError::WriteBaseline {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs a scan and writes the report to `out`; progress (if any) goes to
/// stderr only when it is a TTY. Returns the process exit code (0: nothing at
/// or above `--fail-on`, 1: findings) or an error (the binary maps errors to
/// exit 2 with the message).
pub fn run(args: &ScanArgs, out: &mut dyn Write) -> Result<u8, ScanError> {
    let scanner = if args.verify {
        Scanner::new()?.keeping_keys_for_verify()
    } else {
        Scanner::new()?
    };
    let mut paths = args.paths.clone();
    if paths.is_empty() && !args.mcp_configs {
        paths.push(PathBuf::from("."));
    }
    // SARIF URIs are relative to the scan root, whatever form the paths take
    // (a current directory that cannot be read leaves only absolute URIs).
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let root = report::scan_root(&paths, &cwd);
    if args.mcp_configs {
        paths.extend(mcp_config_paths());
    }
    let mut findings: Vec<Finding> = if paths.is_empty() {
        Vec::new()
    } else {
        let opts = ScanOptions {
            paths,
            git: args.git,
            max_file_size: args.max_file_size,
            progress: true,
        };
        scan(&scanner, &opts)?.findings
    };
    let mut baseline = match &args.baseline {
        Some(p) => read_baseline(p)?,
        None => BTreeSet::new(),
    };
    if let Some(p) = &args.write_baseline {
        baseline.extend(findings.iter().map(|f| f.fingerprint.clone()));
        write_baseline(p, &baseline)?;
    }
    let before = findings.len();
    findings.retain(|f| !baseline.contains(&f.fingerprint));
    let suppressed = before - findings.len();
    // only what is reported is asked about: a baselined key is not sent anywhere
    if args.verify {
        crate::verify::verify(&mut findings, &crate::verify::VerifyOptions::default());
    }
    match args.format {
        OutputFormat::Table => report::table(&findings, suppressed, out),
        OutputFormat::Json => report::json(&findings, out),
        OutputFormat::Sarif => report::sarif(&findings, &root, &cwd, out),
    }
    .map_err(ScanError::Output)?;
    Ok(u8::from(findings.iter().any(|f| f.risk >= args.fail_on)))
}
