//! Agent tokens: what the HTTP doors (MCP over HTTP, the gateway, the egress
//! proxy) accept instead of an MCP client's self-declared name. A token binds a
//! trusted agent identity, optionally a set of capabilities, and an expiry.
//!
//! A token is `airlock_<id>_<secret>`: `id` is 12 hex digits (public, names the
//! token in lists and audit records), `secret` is 32 bytes, base64url. Only
//! SHA-256 of the whole token is stored (`state/tokens.json`, 0600); a presented
//! token is looked up by id and its hash compared in constant time. The token itself
//! is printed once, by `airlock token issue`, and never stored, logged or shown again.
//!
//! Tokens issued by `airlock token issue` ([`issue_keyed`]) can be attenuated
//! offline by whoever holds them ([`crate::attenuate`]): their secret is derived
//! from the vault's token key and the record (id, creation time), so a server
//! recomputes the chain's root key from what it already has, and nothing more is
//! stored. Tokens issued without the key ([`issue`]: `airlock proxy --agent`,
//! and every token issued before attenuation existed) keep working as they are,
//! but an attenuated token made from one is refused with a message that says so.

use std::path::PathBuf;
use std::time::Duration;

use airlock_home::Home;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::attenuate::{self, Attenuation, TokenKey};

/// The prefix every airlock token starts with (scanners can recognize leaked ones).
pub const TOKEN_PREFIX: &str = "airlock_";

/// Token problems. Messages never contain a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No token was presented.
    #[error(
        "no agent token: send it as `Authorization: Bearer <token>` (issue one with `airlock token issue --agent NAME`)"
    )]
    Missing,
    /// The token is not one this home issued (or was mistyped).
    #[error("unknown agent token; issue one with `airlock token issue --agent NAME`")]
    Unknown,
    /// The token's TTL has passed.
    #[error("agent token {id} expired at {expired}; issue a new one with `airlock token issue`")]
    Expired {
        /// The token's public id.
        id: String,
        /// When it expired.
        expired: jiff::Timestamp,
    },
    /// The owner revoked the token.
    #[error("agent token {id} was revoked by the owner")]
    Revoked {
        /// The token's public id.
        id: String,
    },
    /// The token store cannot be read or written.
    #[error("the token store {} is unreadable ({detail}); remove it to start over (all tokens will need reissuing)", path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Bad input to `issue`.
    #[error("{0}")]
    Invalid(String),
    /// A home-level problem.
    #[error(transparent)]
    Home(#[from] airlock_home::HomeError),
    /// An attenuated token whose signature chain does not verify.
    #[error(
        "attenuated agent token of {id} does not verify (its caveats were changed, reordered or cut); use it exactly as it was given, or attenuate the parent again"
    )]
    BadChain {
        /// The root token's public id.
        id: String,
    },
    /// An attenuated token made from a token that cannot be attenuated.
    #[error(
        "agent token {id} cannot be attenuated (it was issued before attenuation existed, or by `airlock proxy --agent`); issue a new one with `airlock token issue`"
    )]
    NotAttenuable {
        /// The root token's public id.
        id: String,
    },
    /// An attenuated token with a caveat this airlock does not accept.
    #[error(
        "attenuated agent token of {id} is refused: its caveat {caveat} is not understood ({detail})"
    )]
    BadCaveat {
        /// The root token's public id.
        id: String,
        /// The caveat's 1-based index.
        caveat: usize,
        /// What is wrong with it.
        detail: String,
    },
    /// An attenuated token past the expiry one of its caveats set.
    #[error(
        "attenuated agent token of {id} (chain {digest}) expired at {expired} (its caveat {caveat}); attenuate the parent again"
    )]
    CaveatExpired {
        /// The root token's public id.
        id: String,
        /// The chain's digest.
        digest: String,
        /// The caveat's 1-based index.
        caveat: usize,
        /// When it expired.
        expired: jiff::Timestamp,
    },
}

/// A stored token: everything but the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    /// Public id.
    pub id: String,
    /// The trusted agent identity the token carries.
    pub agent: String,
    /// Capabilities it may use; empty means every capability the agent may use.
    pub capabilities: Vec<String>,
    /// SHA-256 of the token, hex.
    pub hash: String,
    /// When it was issued.
    pub created: jiff::Timestamp,
    /// When it stops working.
    pub expires: jiff::Timestamp,
    /// Whether the owner revoked it.
    #[serde(default)]
    pub revoked: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    tokens: Vec<TokenRecord>,
}

fn path(home: &Home) -> PathBuf {
    home.state_dir().join("tokens.json")
}

fn load(home: &Home) -> Result<TokenFile, TokenError> {
    let p = path(home);
    match std::fs::read(&p) {
        Ok(bytes) => {
            airlock_home::check_private_file(&p)?;
            serde_json::from_slice(&bytes).map_err(|e| TokenError::Store {
                path: p,
                detail: e.to_string(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenFile::default()),
        Err(e) => Err(airlock_home::HomeError::io("cannot read", &p, e).into()),
    }
}

fn save(home: &Home, file: &TokenFile) -> Result<(), TokenError> {
    airlock_home::ensure_private_dir(&home.state_dir())?;
    let bytes = serde_json::to_vec_pretty(file).map_err(|e| TokenError::Store {
        path: path(home),
        detail: e.to_string(),
    })?;
    airlock_home::write_atomic(&path(home), &bytes)?;
    Ok(())
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Issues a token for `agent`, limited to `capabilities` (empty = all the agent
/// may use), valid for `ttl`. Returns the token — the only time it exists in the
/// clear — and its record. The caller holds the home lock. Its holder cannot
/// attenuate it (see [`issue_keyed`]).
pub fn issue(
    home: &Home,
    agent: &str,
    capabilities: &[String],
    ttl: Duration,
) -> Result<(Zeroizing<String>, TokenRecord), TokenError> {
    issue_with(home, agent, capabilities, ttl, None)
}

/// [`issue`] a token that its holder can attenuate: its secret is derived
/// from `key` (the vault's) and the record, so servers recompute its chain's
/// root key ([`crate::attenuate`]).
pub fn issue_keyed(
    home: &Home,
    agent: &str,
    capabilities: &[String],
    ttl: Duration,
    key: &TokenKey,
) -> Result<(Zeroizing<String>, TokenRecord), TokenError> {
    issue_with(home, agent, capabilities, ttl, Some(key))
}

fn issue_with(
    home: &Home,
    agent: &str,
    capabilities: &[String],
    ttl: Duration,
    key: Option<&TokenKey>,
) -> Result<(Zeroizing<String>, TokenRecord), TokenError> {
    if !airlock_home::is_valid_name(agent) {
        return Err(TokenError::Invalid(format!(
            "invalid agent name \"{}\": {}",
            agent.escape_debug(),
            airlock_home::NAME_RULE
        )));
    }
    let mut file = load(home)?;
    let random = |buf: &mut [u8]| {
        getrandom::fill(buf).map_err(|e| TokenError::Invalid(format!("random: {e}")))
    };
    // A fresh id: a derived secret depends on it, so it is never reused.
    let id = loop {
        let mut id = [0u8; 6];
        random(&mut id)?;
        let id = hex::encode(id);
        if !file.tokens.iter().any(|t| t.id == id) {
            break id;
        }
    };
    let now = jiff::Timestamp::now();
    let secret = match key {
        Some(key) => key.root_secret(&id, now),
        None => {
            let mut secret = Zeroizing::new([0u8; 32]);
            random(secret.as_mut())?;
            secret
        }
    };
    let token = attenuate::root_text(&id, &secret);
    let ttl = jiff::SignedDuration::try_from(ttl)
        .map_err(|_| TokenError::Invalid("ttl too long".into()))?;
    let expires = now
        .checked_add(ttl)
        .map_err(|_| TokenError::Invalid("ttl too long".into()))?;
    let record = TokenRecord {
        id,
        agent: agent.to_string(),
        capabilities: capabilities.to_vec(),
        hash: hash(&token),
        created: now,
        expires,
        revoked: false,
    };
    file.tokens.push(record.clone());
    save(home, &file)?;
    Ok((token, record))
}

/// Every stored token (never the tokens themselves).
pub fn list(home: &Home) -> Result<Vec<TokenRecord>, TokenError> {
    Ok(load(home)?.tokens)
}

/// Revokes tokens selected by `pred`; returns how many. The caller holds the home lock.
pub fn revoke_where(home: &Home, pred: impl Fn(&TokenRecord) -> bool) -> Result<usize, TokenError> {
    let mut file = load(home)?;
    let mut n = 0;
    for t in file.tokens.iter_mut().filter(|t| !t.revoked && pred(t)) {
        t.revoked = true;
        n += 1;
    }
    if n > 0 {
        save(home, &file)?;
    }
    Ok(n)
}

/// Checks a presented token against the store (read fresh, so a revocation by
/// another process takes effect on the next request). Servers use
/// [`verify_in`] with a cached copy that is re-read whenever the file changes.
pub fn verify(home: &Home, presented: &str) -> Result<TokenRecord, TokenError> {
    verify_in(&list(home)?, presented)
}

/// The token file's path (for a server's cache of it).
pub fn store_path(home: &Home) -> PathBuf {
    path(home)
}

/// Checks a presented token against `records` (the content of the store).
/// An attenuated token needs the server's key ([`verify_keyed`]) and is
/// refused here.
pub fn verify_in(records: &[TokenRecord], presented: &str) -> Result<TokenRecord, TokenError> {
    verify_keyed(records, presented, None).map(|v| v.record)
}

/// A token that verified: its root record, and for an attenuated token what
/// its caveats allow.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The root token's record (agent, capabilities, expiry).
    pub record: TokenRecord,
    /// The caveats of an attenuated token; `None` for a root token.
    pub attenuation: Option<std::sync::Arc<Attenuation>>,
}

/// Checks a presented token — a root token, or one attenuated from it —
/// against `records`, with the server's `key` (which attenuated tokens need).
/// Revoking or the expiry of the root refuses every token attenuated from it;
/// a caveat's expiry refuses the tokens that carry it.
pub fn verify_keyed(
    records: &[TokenRecord],
    presented: &str,
    key: Option<&TokenKey>,
) -> Result<Verified, TokenError> {
    let presented = presented.trim();
    if presented.is_empty() {
        return Err(TokenError::Missing);
    }
    let parsed = attenuate::parse(presented).map_err(|_| TokenError::Unknown)?;
    let id = match &parsed {
        attenuate::Parsed::Root { id, .. } | attenuate::Parsed::Chain { id, .. } => *id,
    };
    let record = records
        .iter()
        .find(|t| t.id == id)
        .cloned()
        .ok_or(TokenError::Unknown)?;
    let want = hex::decode(&record.hash).unwrap_or_default();
    let same_hash = |token: &str| {
        let got = Sha256::digest(token.as_bytes());
        want.len() == got.len() && bool::from(want.as_slice().ct_eq(got.as_slice()))
    };
    let attenuation = match parsed {
        attenuate::Parsed::Root { .. } => {
            if !same_hash(presented) {
                return Err(TokenError::Unknown);
            }
            None
        }
        attenuate::Parsed::Chain { id, caveats, sig } => {
            let not_attenuable = || TokenError::NotAttenuable { id: id.to_string() };
            let secret = key
                .ok_or_else(not_attenuable)?
                .root_secret(id, record.created);
            if !same_hash(&attenuate::root_text(id, &secret)) {
                return Err(not_attenuable());
            }
            let signed: Vec<&[u8]> = caveats.iter().map(Vec::as_slice).collect();
            let want_sig = attenuate::chain_sig(&attenuate::chain_start(id, &secret), &signed);
            if !bool::from(want_sig.as_slice().ct_eq(sig.as_slice())) {
                return Err(TokenError::BadChain { id: id.to_string() });
            }
            Some(Attenuation::from_verified(id, presented, &caveats).map_err(
                |(caveat, detail)| TokenError::BadCaveat {
                    id: id.to_string(),
                    caveat,
                    detail,
                },
            )?)
        }
    };
    if record.revoked {
        return Err(TokenError::Revoked { id: record.id });
    }
    let now = jiff::Timestamp::now();
    if now >= record.expires {
        return Err(TokenError::Expired {
            id: record.id,
            expired: record.expires,
        });
    }
    if let Some(a) = &attenuation
        && let Some((caveat, expired)) = a.expires()
        && now >= expired
    {
        return Err(TokenError::CaveatExpired {
            id: record.id,
            digest: a.digest().to_string(),
            caveat,
            expired,
        });
    }
    Ok(Verified {
        record,
        attenuation: attenuation.map(std::sync::Arc::new),
    })
}

fn use_path(home: &Home, id: &str) -> PathBuf {
    home.state_dir().join("token-use").join(id)
}

/// Notes that a token was used now (its marker file's mtime). Servers call it at
/// most once a minute per token, so it costs nothing per request.
pub fn note_use(home: &Home, id: &str) {
    let dir = home.state_dir().join("token-use");
    if airlock_home::ensure_private_dir(&dir).is_ok() {
        let _ = airlock_home::write_atomic(&use_path(home, id), b"");
    }
}

/// When a token was last used (to the minute), if ever.
pub fn last_use(home: &Home, id: &str) -> Option<jiff::Timestamp> {
    let modified = std::fs::metadata(use_path(home, id))
        .ok()?
        .modified()
        .ok()?;
    jiff::Timestamp::try_from(modified).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_util::home;

    #[test]
    fn issue_verify_revoke() {
        let (_d, h) = home();
        let (token, rec) =
            issue(&h, "ci-bot", &["stripe".into()], Duration::from_secs(3600)).unwrap();
        assert!(token.starts_with("airlock_"));
        let stored = std::fs::read_to_string(path(&h)).unwrap();
        assert!(
            !stored.contains(token.as_str()),
            "the token itself is stored"
        );
        assert_eq!(verify(&h, &token).unwrap(), rec);
        // A token with the right id but a wrong secret is unknown.
        let forged = format!("{TOKEN_PREFIX}{}_AAAA", rec.id);
        assert!(matches!(verify(&h, &forged), Err(TokenError::Unknown)));
        assert!(matches!(verify(&h, "garbage"), Err(TokenError::Unknown)));
        assert!(matches!(verify(&h, ""), Err(TokenError::Missing)));
        assert_eq!(revoke_where(&h, |t| t.agent == "ci-bot").unwrap(), 1);
        assert!(matches!(
            verify(&h, &token),
            Err(TokenError::Revoked { .. })
        ));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let (_d, h) = home();
        let (token, _) = issue(&h, "a", &[], Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(matches!(
            verify(&h, &token),
            Err(TokenError::Expired { .. })
        ));
    }

    #[test]
    fn bad_agent_names_are_refused() {
        let (_d, h) = home();
        assert!(matches!(
            issue(&h, "a b", &[], Duration::from_secs(1)),
            Err(TokenError::Invalid(_))
        ));
    }
}
