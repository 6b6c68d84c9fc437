//! What a scan reports.

use serde::Serialize;

use crate::rules::Kind;
use crate::verify::{HeldKey, Verification};

/// How bad an exposure is. Ordered: `Low < Medium < High < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// A generic high-entropy value with weak context.
    Low,
    /// A test-mode key, a private key in an ignored file, an encrypted key.
    Medium,
    /// A live key in an untracked file or in an MCP client config.
    High,
    /// A live key tracked by git, in git history, or in a world-readable file.
    Critical,
}

impl Risk {
    /// Lower-case name, as used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Risk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Facts about where a file's content lives, used for the risk rating.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileContext {
    /// The file is tracked by git (`git ls-files`).
    pub tracked: bool,
    /// The file is ignored by `.gitignore` (read anyway because it bears secrets).
    pub ignored: bool,
    /// Other users can read the file (mode `o+r`).
    pub world_readable: bool,
    /// The file is an MCP client configuration.
    pub mcp_config: bool,
    /// For history findings: the commit that introduced the blob.
    pub commit: Option<String>,
    /// For git scans: whether the secret is still in `HEAD`.
    pub in_head: Option<bool>,
}

/// One exposed secret. Never holds the secret itself: only a redacted
/// preview and a fingerprint.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Rule id, e.g. `github-pat`.
    pub rule_id: &'static str,
    /// Provider, e.g. `GitHub`.
    pub provider: &'static str,
    /// What was found, e.g. `GitHub personal access token (classic)`.
    pub description: &'static str,
    /// Path as given on the command line (relative when the scan root was).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Redacted preview: an identifying prefix and the last characters (`ghp_…a1b2`).
    pub preview: String,
    /// 32 hex characters: SHA-256 of the rule id and the secret (no path, no line).
    pub fingerprint: String,
    /// Risk rating.
    pub risk: Risk,
    /// Why this rating.
    pub risk_reason: String,
    /// Key path for structured files (`mcpServers.github.env.GITHUB_TOKEN`).
    pub context: Option<String>,
    /// Commit that introduced the secret (git history scans).
    pub commit: Option<String>,
    /// Whether the secret is still in `HEAD` (git history scans).
    pub in_head: Option<bool>,
    /// With `--verify`: what the key's provider said (`live`, `revoked`,
    /// `unknown`) and why. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    #[serde(skip)]
    pub(crate) kind: Kind,
    /// The key itself, kept only for `--verify` and only until `verify`
    /// takes it; wiped on drop, never serialized.
    #[serde(skip)]
    pub(crate) key: Option<HeldKey>,
}
