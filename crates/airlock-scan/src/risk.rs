//! The risk model (documented in `docs/scan.md`).
//!
//! | kind \ where | history / tracked / world-readable | MCP config | untracked | ignored |
//! |---|---|---|---|---|
//! | live key | critical | high | high | high |
//! | private key | critical | high | high | medium |
//! | test key, encrypted key | medium | medium | medium | medium |
//! | generic | medium | high | low | low |
//! | account identifier | low | low | low | low |

use crate::finding::{FileContext, Risk};
use crate::rules::Kind;

/// Rates one finding of `kind` found in a file described by `ctx`.
pub(crate) fn rate(kind: Kind, ctx: &FileContext) -> (Risk, String) {
    let place = place(ctx);
    match kind {
        Kind::Live | Kind::PrivateKey => {
            let what = if kind == Kind::Live {
                "live-looking key"
            } else {
                "private key"
            };
            if ctx.commit.is_some() || ctx.tracked || ctx.world_readable {
                (Risk::Critical, format!("{what} {place}; rotate it"))
            } else if ctx.mcp_config {
                (
                    Risk::High,
                    format!("{what} {place}; move it into airlock (`airlock migrate`)"),
                )
            } else if ctx.ignored && kind == Kind::PrivateKey {
                (Risk::Medium, format!("{what} {place}"))
            } else {
                (Risk::High, format!("{what} {place}"))
            }
        }
        Kind::Test => (
            Risk::Medium,
            format!("test-mode or local-only credential {place}"),
        ),
        Kind::Encrypted => (
            Risk::Medium,
            format!("passphrase-protected private key {place}"),
        ),
        Kind::Identifier => (
            Risk::Low,
            format!(
                "account identifier {place}: not a credential by itself; look for the auth token next to it"
            ),
        ),
        Kind::Generic => {
            if ctx.mcp_config {
                (Risk::High, format!("credential-like value {place}"))
            } else if ctx.commit.is_some() || ctx.tracked {
                (
                    Risk::Medium,
                    format!("high-entropy value under a secret-like name {place}"),
                )
            } else {
                (
                    Risk::Low,
                    format!("high-entropy value under a secret-like name {place}"),
                )
            }
        }
    }
}

fn place(ctx: &FileContext) -> String {
    if let Some(c) = &ctx.commit {
        let short = &c[..c.len().min(12)];
        return match ctx.in_head {
            Some(false) => format!(
                "in git history (commit {short}), no longer in HEAD: deleting it did not revoke it"
            ),
            _ => format!("in git history since commit {short} and still in HEAD"),
        };
    }
    let adj = if ctx.tracked {
        "git-tracked"
    } else if ctx.ignored {
        "git-ignored"
    } else {
        "untracked"
    };
    let article = if adj == "untracked" { "an" } else { "a" };
    let noun = if ctx.mcp_config {
        "MCP client config (every agent and MCP server started from it can read it)"
    } else {
        "file"
    };
    let mut s = format!("in {article} {adj} {noun}");
    if ctx.world_readable {
        s.push_str(", readable by every local user (chmod 600 it)");
    }
    s
}
