//! Attenuable agent tokens: macaroons over HMAC-SHA256 (issue 19).
//!
//! Whoever holds an agent token can make a narrower one from it, offline and
//! without any secret but the token: [`attenuate`] appends a *caveat* (a subset
//! of capabilities, allow rules, an expiry) and re-signs the chain. airlock
//! verifies the chain from the root token's key, which it recomputes from its
//! vault; it never stores a token.
//!
//! # Keys and chain
//!
//! * A root token is `airlock_<id>_<secret>` ([`crate::tokens`]). For a token
//!   that can be attenuated, `secret = HMAC(token key, id ‖ 0 ‖ created)`, where
//!   the token key is derived from the vault ([`TokenKey::from_vault`]); the
//!   store keeps only SHA-256 of the token, as before.
//! * The chain's root key is `K = HKDF-SHA256(salt = "airlock-token-macaroon-v1",
//!   ikm = secret, info = id)`; `sig₀ = HMAC(K, "airlock-token-chain-v1" ‖ 0 ‖ id)`
//!   and each caveat `cᵢ` gives `sigᵢ = HMAC(sigᵢ₋₁, cᵢ)`. Only the last `sig` is
//!   in the token, so a holder can append caveats but cannot drop, change or
//!   reorder one.
//!
//! # Text format
//!
//! `airlock_<id>.<caveats>.<sig>`: `id` is the root token's public id (12
//! lowercase hex digits), `caveats` the caveats joined by `\n`, base64url
//! without padding, `sig` the 32-byte chain signature, base64url without
//! padding. Every character is one of `A-Z a-z 0-9 _ - .`, so the token fits an
//! `Authorization: Bearer` header and the user part of a proxy URL unchanged,
//! and it starts with `airlock_` like every airlock token.
//!
//! A caveat is one JSON object on one line with any of `cap` (capability names:
//! the request's capability must be one of them), `allow` (rules in the
//! capability rule syntax: the request must match one of them, *and* the
//! capability's own rules) and `expires` (RFC 3339). Anything else — an unknown
//! field, a field twice, an empty list, a rule that does not parse — makes the
//! whole token refused: a caveat this airlock does not understand is never
//! ignored.

use std::time::Duration;

use airlock_policy::Rule;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{Check, Refusal, refuse};

/// The most caveats one token carries.
pub const MAX_CAVEATS: usize = 16;
/// The most capabilities or rules in one caveat.
pub const MAX_CAVEAT_ITEMS: usize = 64;
/// The longest token text accepted.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    // HMAC takes a key of any length.
    #[allow(clippy::expect_used)]
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts every key length");
    for p in parts {
        m.update(p);
    }
    Zeroizing::new(m.finalize().into_bytes().into())
}

/// The server's key for attenuable tokens, derived from the vault (its audit
/// key, under a label of its own): the same for every server of one home, and
/// never written anywhere.
pub struct TokenKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// The key of the home whose unlocked vault this is.
    pub fn from_vault(vault: &airlock_vault::Vault) -> TokenKey {
        TokenKey::from_bytes(vault.audit_key())
    }

    /// The key derived from `key` (tests, and [`TokenKey::from_vault`]).
    pub fn from_bytes(key: &[u8; 32]) -> TokenKey {
        TokenKey(mac(key, &[b"airlock-token-root-v1"]))
    }

    /// The secret of the root token `id` issued at `created`.
    pub(crate) fn root_secret(&self, id: &str, created: jiff::Timestamp) -> Zeroizing<[u8; 32]> {
        mac(
            self.0.as_ref(),
            &[id.as_bytes(), b"\0", &created.as_nanosecond().to_be_bytes()],
        )
    }
}

/// The text of the root token `id` with `secret`.
pub(crate) fn root_text(id: &str, secret: &[u8; 32]) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "{}{id}_{}",
        crate::tokens::TOKEN_PREFIX,
        B64.encode(secret)
    ))
}

/// The chain's first signature, from the root token's secret.
pub(crate) fn chain_start(id: &str, secret: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(b"airlock-token-macaroon-v1"), secret);
    let mut k = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit.
    #[allow(clippy::expect_used)]
    hk.expand(id.as_bytes(), k.as_mut())
        .expect("HKDF-SHA256 can always expand 32 bytes");
    mac(k.as_ref(), &[b"airlock-token-chain-v1\0", id.as_bytes()])
}

/// The signature after `caveats`, from `start`.
pub(crate) fn chain_sig(start: &[u8; 32], caveats: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut sig = Zeroizing::new(*start);
    for c in caveats {
        sig = mac(sig.as_ref(), &[c]);
    }
    sig
}

/// A presented token, split (nothing verified yet).
pub(crate) enum Parsed<'a> {
    /// `airlock_<id>_<secret>`.
    Root {
        /// The public id.
        id: &'a str,
        /// The secret part as written.
        secret: &'a str,
    },
    /// `airlock_<id>.<caveats>.<sig>`.
    Chain {
        /// The root token's public id.
        id: &'a str,
        /// The caveats, as signed.
        caveats: Vec<Vec<u8>>,
        /// The chain's last signature.
        sig: Zeroizing<[u8; 32]>,
    },
}

/// Why a token's text cannot be read (never contains the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Not `airlock_<12 hex>…` at all.
    NotAToken,
    /// An attenuated token whose encoding is broken.
    Malformed(&'static str),
}

/// Splits `token` into its parts.
pub(crate) fn parse(token: &str) -> Result<Parsed<'_>, ParseError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(ParseError::Malformed("longer than any airlock token"));
    }
    let rest = token
        .strip_prefix(crate::tokens::TOKEN_PREFIX)
        .ok_or(ParseError::NotAToken)?;
    let (id, tail) = match (rest.get(..12), rest.get(12..)) {
        (Some(id), Some(tail)) => (id, tail),
        _ => return Err(ParseError::NotAToken),
    };
    if !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ParseError::NotAToken);
    }
    if let Some(secret) = tail.strip_prefix('_') {
        return Ok(Parsed::Root { id, secret });
    }
    let Some(chain) = tail.strip_prefix('.') else {
        return Err(ParseError::NotAToken);
    };
    let (payload, sig) = chain
        .split_once('.')
        .ok_or(ParseError::Malformed("no signature"))?;
    let payload = B64
        .decode(payload)
        .map_err(|_| ParseError::Malformed("the caveats are not base64url"))?;
    let sig: [u8; 32] =
        B64.decode(sig)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or(ParseError::Malformed(
                "the signature is not 32 bytes of base64url",
            ))?;
    let caveats: Vec<Vec<u8>> = payload.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    if caveats.len() > MAX_CAVEATS {
        return Err(ParseError::Malformed("too many caveats"));
    }
    if caveats.iter().any(Vec::is_empty) {
        return Err(ParseError::Malformed("an empty caveat"));
    }
    Ok(Parsed::Chain {
        id,
        caveats,
        sig: Zeroizing::new(sig),
    })
}

/// One restriction added by [`attenuate`]: every field that is set narrows the
/// token; a request must pass every caveat of its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caveat {
    /// The capabilities the token may still use (one of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Vec<String>>,
    /// Allow rules (`METHOD PATH`, the capability rule syntax): a request must
    /// match one of them as well as its capability's own rules. HTTP only: a
    /// token with allow rules cannot run programs (`exec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// When the token stops working (it never outlives its parent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<jiff::Timestamp>,
}

/// Why a token cannot be attenuated, or a caveat is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttenuateError {
    /// The text is not an airlock agent token.
    #[error(
        "not an airlock agent token (expected `airlock_<id>_<secret>` or an attenuated `airlock_<id>.<caveats>.<sig>`)"
    )]
    NotAToken,
    /// An attenuated token whose encoding is broken.
    #[error("the attenuated token is damaged ({0}); use the token exactly as it was given")]
    Malformed(&'static str),
    /// The caveat is not valid.
    #[error("{0}")]
    Caveat(String),
    /// The chain is full.
    #[error(
        "the token already carries {MAX_CAVEATS} caveats (or would grow past {MAX_TOKEN_LEN} bytes); attenuate its parent instead"
    )]
    TooMany,
    /// The new caveat and an earlier one leave no capability.
    #[error(
        "the token is already limited to capabilities [{earlier}]; --cap {asked} would leave none"
    )]
    Disjoint {
        /// The capabilities an earlier caveat leaves.
        earlier: String,
        /// The capabilities asked for.
        asked: String,
    },
}

impl From<ParseError> for AttenuateError {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::NotAToken => AttenuateError::NotAToken,
            ParseError::Malformed(m) => AttenuateError::Malformed(m),
        }
    }
}

impl Caveat {
    /// A caveat limiting to `caps` (if any), `allow` rules (if any), and `ttl`
    /// from now (if given; rounded down to the second). Checks it.
    ///
    /// # Errors
    ///
    /// [`AttenuateError::Caveat`] saying what is wrong.
    pub fn new(
        caps: &[String],
        allow: &[String],
        ttl: Option<Duration>,
    ) -> Result<Caveat, AttenuateError> {
        let expires = match ttl {
            None => None,
            Some(ttl) => {
                let now = jiff::Timestamp::now();
                let at = jiff::SignedDuration::try_from(ttl)
                    .ok()
                    .and_then(|d| now.checked_add(d).ok())
                    .ok_or_else(|| AttenuateError::Caveat("--ttl is too long".into()))?;
                let secs = jiff::Timestamp::from_second(at.as_second())
                    .map_err(|_| AttenuateError::Caveat("--ttl is too long".into()))?;
                if secs <= now {
                    return Err(AttenuateError::Caveat(
                        "--ttl must be at least one second".into(),
                    ));
                }
                Some(secs)
            }
        };
        // Rules are kept in their canonical text.
        let allow = allow
            .iter()
            .map(|r| parse_rule(r).map(|r| r.as_str().to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let caveat = Caveat {
            cap: (!caps.is_empty()).then(|| caps.to_vec()),
            allow: (!allow.is_empty()).then_some(allow),
            expires,
        };
        caveat.check()?;
        Ok(caveat)
    }

    /// Checks the caveat's content: at least one restriction, valid names,
    /// rules that parse, bounded lists.
    fn check(&self) -> Result<Vec<Rule>, AttenuateError> {
        if self.cap.is_none() && self.allow.is_none() && self.expires.is_none() {
            return Err(AttenuateError::Caveat(
                "a caveat needs at least one of --cap, --allow, --ttl".into(),
            ));
        }
        if let Some(caps) = &self.cap {
            check_len(caps, "capabilities")?;
            if let Some(bad) = caps.iter().find(|c| !airlock_home::is_valid_name(c)) {
                return Err(AttenuateError::Caveat(format!(
                    "invalid capability name \"{}\": {}",
                    bad.escape_debug(),
                    airlock_home::NAME_RULE
                )));
            }
        }
        match &self.allow {
            None => Ok(Vec::new()),
            Some(rules) => {
                check_len(rules, "allow rules")?;
                rules.iter().map(|r| parse_rule(r)).collect()
            }
        }
    }

    /// The caveat in words.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &self.cap {
            parts.push(format!("capabilities [{}]", c.join(", ")));
        }
        if let Some(a) = &self.allow {
            parts.push(format!("allow [{}]", a.join(", ")));
        }
        if let Some(e) = &self.expires {
            parts.push(format!("expires {e}"));
        }
        parts.join("; ")
    }
}

fn check_len(list: &[String], what: &str) -> Result<(), AttenuateError> {
    if list.is_empty() {
        return Err(AttenuateError::Caveat(format!("an empty list of {what}")));
    }
    if list.len() > MAX_CAVEAT_ITEMS {
        return Err(AttenuateError::Caveat(format!(
            "more than {MAX_CAVEAT_ITEMS} {what} in one caveat"
        )));
    }
    Ok(())
}

fn parse_rule(r: &str) -> Result<Rule, AttenuateError> {
    Rule::parse(r).map_err(|e| {
        AttenuateError::Caveat(format!(
            "allow {e} (rules use the capability rule syntax, e.g. \"GET /repos/acme/x/**\")"
        ))
    })
}

/// Parses one signed caveat (strictly: see the module docs).
fn read_caveat(bytes: &[u8]) -> Result<(Caveat, Vec<Rule>), String> {
    let caveat: Caveat = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let rules = caveat.check().map_err(|e| e.to_string())?;
    Ok((caveat, rules))
}

/// What an attenuated token's caveats allow, after its chain verified.
#[derive(Debug, Clone)]
pub struct Attenuation {
    root: String,
    digest: String,
    caveats: Vec<Caveat>,
    /// Per caveat (1-based index), its capabilities.
    caps: Vec<(usize, Vec<String>)>,
    /// Per caveat (1-based index), its compiled allow rules.
    allow: Vec<(usize, Vec<Rule>)>,
    /// The earliest expiry of the chain and its caveat's index.
    expires: Option<(usize, jiff::Timestamp)>,
}

/// Why a verified chain's caveats are not accepted: the caveat's 1-based index
/// and what is wrong.
pub(crate) type CaveatError = (usize, String);

impl Attenuation {
    /// The caveats of a chain whose signature verified; `token` is the whole
    /// token (only its digest is kept).
    pub(crate) fn from_verified(
        root: &str,
        token: &str,
        signed: &[Vec<u8>],
    ) -> Result<Attenuation, CaveatError> {
        let mut a = Attenuation {
            root: root.to_string(),
            digest: chain_digest(token),
            caveats: Vec::new(),
            caps: Vec::new(),
            allow: Vec::new(),
            expires: None,
        };
        for (i, bytes) in signed.iter().enumerate() {
            let n = i + 1;
            let (caveat, rules) = read_caveat(bytes).map_err(|e| (n, e))?;
            if let Some(c) = &caveat.cap {
                a.caps.push((n, c.clone()));
            }
            if !rules.is_empty() {
                a.allow.push((n, rules));
            }
            if let Some(e) = caveat.expires
                && a.expires.is_none_or(|(_, at)| e < at)
            {
                a.expires = Some((n, e));
            }
            a.caveats.push(caveat);
        }
        Ok(a)
    }

    /// The root token's public id.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// A digest of the whole token (16 hex digits): tells one attenuated token
    /// of a root from another in the audit log, and is no use to forge one.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The caveats, in chain order.
    pub fn caveats(&self) -> &[Caveat] {
        &self.caveats
    }

    /// The earliest expiry among the caveats, and its caveat's 1-based index.
    pub fn expires(&self) -> Option<(usize, jiff::Timestamp)> {
        self.expires
    }

    /// `attenuated token <root> (chain <digest>)`, for audit records.
    pub fn label(&self) -> String {
        format!("attenuated token {} (chain {})", self.root, self.digest)
    }

    fn refusal(&self, n: usize, what: String) -> Refusal {
        refuse(
            Check::Caveat,
            format!("{}: caveat {n} {what}", self.label()),
        )
    }

    /// Whether the chain still lets its holder see and use capability `cap`
    /// (the capability caveats, and the caveats' expiry).
    pub fn check_capability(&self, cap: &str) -> Result<(), Refusal> {
        if let Some((n, at)) = self.expires
            && jiff::Timestamp::now() >= at
        {
            return Err(self.refusal(n, format!("expired at {at}")));
        }
        for (n, caps) in &self.caps {
            if !caps.iter().any(|c| c == cap) {
                return Err(self.refusal(
                    *n,
                    format!(
                        "limits it to capabilities [{}], not \"{}\"",
                        caps.join(", "),
                        cap.escape_debug()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether every allow caveat allows `method` on the raw path `raw_path`
    /// (normalized as the broker normalizes it, so what is checked is what is
    /// sent).
    pub fn check_request(&self, method: &str, raw_path: &str) -> Result<(), Refusal> {
        if self.allow.is_empty() {
            return Ok(());
        }
        let target =
            airlock_policy::normalize(raw_path).map_err(|e| refuse(Check::Path, e.to_string()))?;
        let method = method.to_ascii_uppercase();
        for (n, rules) in &self.allow {
            if !rules.iter().any(|r| r.matches(&method, &target.path)) {
                return Err(self.refusal(
                    *n,
                    format!(
                        "allows only [{}], not {method} {}",
                        rules
                            .iter()
                            .map(Rule::as_str)
                            .collect::<Vec<_>>()
                            .join(", "),
                        target.path
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether the chain lets its holder run programs: not when it has allow
    /// rules, which only HTTP requests can be checked against.
    pub fn check_exec(&self) -> Result<(), Refusal> {
        match self.allow.first() {
            None => Ok(()),
            Some((n, _)) => Err(self.refusal(
                *n,
                "has allow rules, which only HTTP requests can be checked against: running programs (exec) is refused".into(),
            )),
        }
    }
}

/// 16 hex digits of SHA-256 over the whole token, under a label of its own.
fn chain_digest(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"airlock-token-digest-v1\0");
    h.update(token.as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// What a token says about itself, read without verifying it (anyone can read
/// it; only airlock can tell whether it is genuine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The root token's public id.
    pub root: String,
    /// The caveats, in chain order (`None` for one this version cannot read).
    pub caveats: Vec<Option<Caveat>>,
}

impl TokenInfo {
    /// The earliest expiry among the readable caveats.
    pub fn expires(&self) -> Option<jiff::Timestamp> {
        self.caveats
            .iter()
            .flatten()
            .filter_map(|c| c.expires)
            .min()
    }
}

/// Reads what `token` carries, without verifying it.
///
/// # Errors
///
/// [`AttenuateError::NotAToken`] or [`AttenuateError::Malformed`].
pub fn inspect(token: &str) -> Result<TokenInfo, AttenuateError> {
    match parse(token.trim())? {
        Parsed::Root { id, .. } => Ok(TokenInfo {
            root: id.to_string(),
            caveats: Vec::new(),
        }),
        Parsed::Chain { id, caveats, .. } => Ok(TokenInfo {
            root: id.to_string(),
            caveats: caveats
                .iter()
                .map(|c| read_caveat(c).ok().map(|(c, _)| c))
                .collect(),
        }),
    }
}

/// A token [`narrow`] made, with what it carries.
#[derive(Debug)]
pub struct Narrowed {
    /// The attenuated token (the only copy: hand it over, never log it).
    pub token: Zeroizing<String>,
    /// Its root and caveats.
    pub info: TokenInfo,
}

impl Narrowed {
    /// `{"token", "root", "caveats", "expires"}` (what `token attenuate --json`
    /// prints and the MCP tool `attenuate_token` returns).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "token": self.token.as_str(),
            "root": self.info.root,
            "caveats": self.info.caveats,
            "expires": self.info.expires().map(|e| e.to_string()),
        })
    }
}

/// [`attenuate`] with `caps`, `allow` and `ttl` (a caveat made by
/// [`Caveat::new`]), returning the token and what it carries.
///
/// # Errors
///
/// [`AttenuateError`], as [`Caveat::new`] and [`attenuate`].
pub fn narrow(
    token: &str,
    caps: &[String],
    allow: &[String],
    ttl: Option<Duration>,
) -> Result<Narrowed, AttenuateError> {
    let caveat = Caveat::new(caps, allow, ttl)?;
    let token = attenuate(token, &caveat)?;
    let info = inspect(&token)?;
    Ok(Narrowed { token, info })
}

/// Narrows `token` by `caveat`, offline: the result can do only what `token`
/// can, within `caveat`. Needs no airlock home and no secret but the token;
/// the library function an agent framework calls before it hands a token to a
/// sub-agent (the CLI's `airlock token attenuate` and the MCP tool
/// `attenuate_token` are this function).
///
/// # Errors
///
/// [`AttenuateError`]: not a token, a damaged token, an invalid caveat, a full
/// chain, or a capability list that an earlier caveat leaves nothing of.
pub fn attenuate(token: &str, caveat: &Caveat) -> Result<Zeroizing<String>, AttenuateError> {
    caveat.check()?;
    let token = token.trim();
    let (id, earlier, sig) = match parse(token)? {
        Parsed::Root { id, secret } => {
            let secret: Zeroizing<[u8; 32]> = Zeroizing::new(
                B64.decode(secret)
                    .ok()
                    .and_then(|s| s.try_into().ok())
                    .ok_or(AttenuateError::NotAToken)?,
            );
            (id, Vec::new(), chain_start(id, &secret))
        }
        Parsed::Chain { id, caveats, sig } => (id, caveats, sig),
    };
    if earlier.len() >= MAX_CAVEATS {
        return Err(AttenuateError::TooMany);
    }
    if let Some(asked) = &caveat.cap {
        for (earlier, _) in earlier.iter().filter_map(|c| read_caveat(c).ok()) {
            if let Some(have) = earlier.cap
                && !asked.iter().any(|a| have.contains(a))
            {
                return Err(AttenuateError::Disjoint {
                    earlier: have.join(", "),
                    asked: asked.join(","),
                });
            }
        }
    }
    let bytes = serde_json::to_vec(caveat)
        .map_err(|e| AttenuateError::Caveat(format!("cannot encode the caveat: {e}")))?;
    let sig = chain_sig(&sig, &[&bytes]);
    let mut payload: Vec<u8> = Vec::new();
    for c in &earlier {
        payload.extend_from_slice(c);
        payload.push(b'\n');
    }
    payload.extend_from_slice(&bytes);
    let out = Zeroizing::new(format!(
        "{}{id}.{}.{}",
        crate::tokens::TOKEN_PREFIX,
        B64.encode(&payload),
        B64.encode(sig.as_ref())
    ));
    if out.len() > MAX_TOKEN_LEN {
        return Err(AttenuateError::TooMany);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::{self, TokenError, TokenRecord};
    use proptest::prelude::*;

    const KEY: [u8; 32] = [7; 32];

    /// A keyed root token and its record, without a home.
    fn root(expires_in: i64) -> (Zeroizing<String>, TokenRecord) {
        let key = TokenKey::from_bytes(&KEY);
        let id = "0123456789ab".to_string();
        let created = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let secret = key.root_secret(&id, created);
        let token = root_text(&id, &secret);
        let record = TokenRecord {
            id,
            agent: "bot".into(),
            capabilities: Vec::new(),
            hash: hex::encode(Sha256::digest(token.as_bytes())),
            created,
            expires: jiff::Timestamp::now() + jiff::SignedDuration::from_secs(expires_in),
            revoked: false,
        };
        (token, record)
    }

    fn verify(records: &[TokenRecord], t: &str) -> Result<tokens::Verified, TokenError> {
        tokens::verify_keyed(records, t, Some(&TokenKey::from_bytes(&KEY)))
    }

    fn caveat(caps: &[&str], allow: &[&str], ttl: Option<u64>) -> Caveat {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
        Caveat::new(&s(caps), &s(allow), ttl.map(Duration::from_secs)).unwrap()
    }

    /// The same token with its caveats (decoded) rewritten by `edit`, and the
    /// signature kept.
    fn tampered(token: &str, edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> String {
        let Ok(Parsed::Chain {
            id,
            mut caveats,
            sig,
        }) = parse(token)
        else {
            panic!("not a chain")
        };
        edit(&mut caveats);
        format!(
            "airlock_{id}.{}.{}",
            B64.encode(caveats.join(&b'\n')),
            B64.encode(sig.as_ref())
        )
    }

    #[test]
    fn a_narrowed_token_verifies_and_carries_its_caveats() {
        let (root_token, rec) = root(3600);
        let one = attenuate(
            &root_token,
            &caveat(&["gh"], &["GET /repos/acme/x/**"], None),
        )
        .unwrap();
        let two = attenuate(&one, &caveat(&[], &[], Some(600))).unwrap();
        assert!(two.starts_with("airlock_0123456789ab."));
        assert!(
            two.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        );
        let v = verify(std::slice::from_ref(&rec), &two).unwrap();
        let a = v.attenuation.unwrap();
        assert_eq!(a.root(), "0123456789ab");
        assert_eq!(a.caveats().len(), 2);
        assert!(a.check_capability("gh").is_ok());
        let r = a.check_capability("stripe").unwrap_err();
        assert_eq!(r.check, Check::Caveat);
        assert!(r.message.contains("caveat 1"), "{}", r.message);
        assert!(!r.message.contains(two.as_str()));
        assert!(a.check_request("GET", "/repos/acme/x/issues").is_ok());
        assert!(a.check_request("get", "/repos/acme/x").is_ok());
        for (m, p) in [
            ("POST", "/repos/acme/x/issues"),
            ("GET", "/repos/acme/y"),
            // What is checked is what is sent: dot segments and encodings
            // are normalized first.
            ("GET", "/repos/acme/x/../y"),
            ("GET", "/repos/acme/%78/../y"),
        ] {
            assert!(a.check_request(m, p).is_err(), "{m} {p}");
        }
        assert_eq!(a.check_exec().unwrap_err().check, Check::Caveat);
        // The root and a cap-only chain may run programs.
        let caps_only = attenuate(&root_token, &caveat(&["gh"], &[], None)).unwrap();
        let v = verify(std::slice::from_ref(&rec), &caps_only).unwrap();
        assert!(v.attenuation.unwrap().check_exec().is_ok());
        assert!(verify(&[rec], &root_token).unwrap().attenuation.is_none());
    }

    #[test]
    fn dropping_reordering_or_changing_a_caveat_breaks_the_signature() {
        let (root_token, rec) = root(3600);
        let mut t = attenuate(&root_token, &caveat(&["gh"], &[], None)).unwrap();
        t = attenuate(&t, &caveat(&[], &["GET /a/**"], None)).unwrap();
        t = attenuate(&t, &caveat(&[], &[], Some(60))).unwrap();
        let recs = [rec];
        assert!(verify(&recs, &t).is_ok());
        let bad = [
            tampered(&t, |c| {
                c.pop();
            }),
            tampered(&t, |c| {
                c.remove(0);
            }),
            tampered(&t, |c| c.swap(0, 1)),
            tampered(&t, |c| c[0] = br#"{"cap":["gh","stripe"]}"#.to_vec()),
            tampered(&t, |c| c.push(br#"{"cap":["gh"]}"#.to_vec())),
        ];
        for b in &bad {
            assert!(
                matches!(verify(&recs, b), Err(TokenError::BadChain { .. })),
                "{:?}",
                verify(&recs, b).map(|_| ())
            );
        }
        // Appending the parent's own caveats again is allowed and narrows nothing
        // away from what the parent had, but never adds a capability.
        let wider = attenuate(&t, &caveat(&["gh", "stripe"], &[], None)).unwrap();
        let a = verify(&recs, &wider).unwrap().attenuation.unwrap();
        assert!(a.check_capability("stripe").is_err());
    }

    #[test]
    fn a_narrowed_token_never_outlives_its_parent_or_its_caveat() {
        let (root_token, rec) = root(2);
        let long = attenuate(&root_token, &caveat(&[], &[], Some(3600))).unwrap();
        let recs = [rec.clone()];
        assert!(verify(&recs, &long).is_ok());
        let mut expired = rec.clone();
        expired.expires = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1);
        assert!(matches!(
            verify(&[expired], &long),
            Err(TokenError::Expired { .. })
        ));
        // A caveat's expiry that has passed refuses, naming the caveat.
        let payload = serde_json::to_vec(&Caveat {
            cap: None,
            allow: None,
            expires: Some(jiff::Timestamp::from_second(1_000).unwrap()),
        })
        .unwrap();
        let t = signed(&root_token, &[&payload]);
        let e = verify(&recs, &t).map(|_| ()).unwrap_err();
        assert!(
            matches!(e, TokenError::CaveatExpired { caveat: 1, .. }),
            "{e}"
        );
        // The earliest expiry of the chain wins, wherever it is.
        let short = attenuate(&root_token, &caveat(&[], &[], Some(60))).unwrap();
        let then_long = attenuate(&short, &caveat(&[], &[], Some(7200))).unwrap();
        let a = verify(&recs, &then_long).unwrap().attenuation.unwrap();
        assert_eq!(a.expires().unwrap().0, 1);
    }

    #[test]
    fn revoking_the_parent_refuses_every_descendant() {
        let (root_token, mut rec) = root(3600);
        let child = attenuate(&root_token, &caveat(&["gh"], &[], None)).unwrap();
        let grandchild = attenuate(&child, &caveat(&[], &[], Some(60))).unwrap();
        rec.revoked = true;
        for t in [&root_token, &child, &grandchild] {
            assert!(matches!(
                verify(std::slice::from_ref(&rec), t),
                Err(TokenError::Revoked { .. })
            ));
        }
    }

    #[test]
    fn tokens_issued_without_the_key_are_refused_when_attenuated() {
        let (root_token, mut rec) = root(3600);
        let child = attenuate(&root_token, &caveat(&["gh"], &[], None)).unwrap();
        // A record whose token was random (a legacy token): same id, other hash.
        rec.hash = hex::encode(Sha256::digest(b"airlock_0123456789ab_other"));
        assert!(matches!(
            verify(std::slice::from_ref(&rec), &child),
            Err(TokenError::NotAttenuable { .. })
        ));
        // Without the server's key, no attenuated token verifies.
        assert!(matches!(
            tokens::verify_keyed(&[rec], &child, None),
            Err(TokenError::NotAttenuable { .. })
        ));
    }

    #[test]
    fn unknown_or_malformed_caveats_refuse_the_token() {
        let (root_token, rec) = root(3600);
        let recs = [rec];
        for bad in [
            &br#"{"cap":["gh"],"scope":"all"}"#[..],
            br#"{"cap":["gh"],"cap":["x"]}"#,
            br#"{"cap":[]}"#,
            br#"{}"#,
            br#"{"cap":null}"#,
            br#"{"allow":["GET"]}"#,
            br#"{"allow":["TRACE /x"]}"#,
            br#"{"cap":["a b"]}"#,
            br#"{"expires":"tomorrow"}"#,
            b"not json",
            b"\xff\xfe",
        ] {
            let t = signed(&root_token, &[bad]);
            assert!(
                matches!(
                    verify(&recs, &t),
                    Err(TokenError::BadCaveat { caveat: 1, .. })
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn bad_input_to_attenuate_says_what_is_wrong() {
        let (root_token, _) = root(3600);
        let only_gh = attenuate(&root_token, &caveat(&["gh"], &[], None)).unwrap();
        assert!(matches!(
            attenuate(&only_gh, &caveat(&["stripe"], &[], None)),
            Err(AttenuateError::Disjoint { .. })
        ));
        assert!(matches!(
            attenuate("sk_live_x", &caveat(&["gh"], &[], None)),
            Err(AttenuateError::NotAToken)
        ));
        assert!(Caveat::new(&[], &[], None).is_err());
        assert!(Caveat::new(&[], &["GET no-slash".into()], None).is_err());
        assert!(Caveat::new(&["a b".into()], &[], None).is_err());
        let mut t = Zeroizing::new(root_token.to_string());
        for _ in 0..MAX_CAVEATS {
            t = attenuate(&t, &caveat(&[], &[], Some(60))).unwrap();
        }
        assert_eq!(
            attenuate(&t, &caveat(&[], &[], Some(60))),
            Err(AttenuateError::TooMany)
        );
    }

    /// `root` attenuated by raw caveat bytes, signed as `attenuate` signs them.
    fn signed(root: &str, caveats: &[&[u8]]) -> String {
        let Ok(Parsed::Root { id, secret }) = parse(root) else {
            panic!("not a root")
        };
        let secret: [u8; 32] = B64.decode(secret).unwrap().try_into().unwrap();
        let sig = chain_sig(&chain_start(id, &secret), caveats);
        format!(
            "airlock_{id}.{}.{}",
            B64.encode(caveats.join(&b'\n')),
            B64.encode(sig.as_ref())
        )
    }

    fn name() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["gh", "stripe", "s3", "db"]).prop_map(String::from)
    }

    fn rule() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!["GET", "POST", "*"]),
            prop::collection::vec(prop::sample::select(vec!["a", "b", "*", "**"]), 0..4),
        )
            .prop_map(|(m, segs)| format!("{m} /{}", segs.join("/")))
    }

    fn any_caveat() -> impl Strategy<Value = Caveat> {
        (
            prop::collection::vec(name(), 0..3),
            prop::collection::vec(rule(), 0..3),
            prop::option::of(1u64..10_000),
        )
            .prop_filter_map("a caveat needs a restriction", |(c, a, t)| {
                Caveat::new(&c, &a, t.map(Duration::from_secs)).ok()
            })
    }

    fn request() -> impl Strategy<Value = (String, String, String)> {
        (
            name(),
            prop::sample::select(vec!["GET", "POST", "DELETE"]).prop_map(String::from),
            prop::collection::vec(prop::sample::select(vec!["a", "b", "c", ".."]), 0..4)
                .prop_map(|s| format!("/{}", s.join("/"))),
        )
    }

    fn allows(a: Option<&Attenuation>, (cap, method, path): &(String, String, String)) -> bool {
        a.is_none_or(|a| a.check_capability(cap).is_ok() && a.check_request(method, path).is_ok())
    }

    proptest! {
        /// Appending a caveat never allows what the parent refuses, and the
        /// chain verifies only as signed: any edit of its caveats is refused.
        #[test]
        fn a_caveat_never_widens(
            chain in prop::collection::vec(any_caveat(), 1..5),
            reqs in prop::collection::vec(request(), 1..8),
            victim in 0usize..5,
        ) {
            let (root_token, rec) = root(3600);
            let recs = [rec];
            let mut parent: Option<std::sync::Arc<Attenuation>> = None;
            let mut t = Zeroizing::new(root_token.to_string());
            for c in &chain {
                let Ok(next) = attenuate(&t, c) else { continue };
                let child = verify(&recs, &next).unwrap().attenuation.unwrap();
                for r in &reqs {
                    prop_assert!(!allows(Some(&child), r) || allows(parent.as_deref(), r), "{r:?}");
                }
                parent = Some(child);
                t = next;
            }
            if let Ok(Parsed::Chain { caveats, .. }) = parse(&t) && caveats.len() > 1 {
                let i = victim % caveats.len();
                let dropped = tampered(&t, |c| { c.remove(i); });
                let refused = matches!(verify(&recs, &dropped), Err(TokenError::BadChain { .. }));
                prop_assert!(refused, "a dropped caveat verified");
                let j = (i + 1) % caveats.len();
                if caveats[i] != caveats[j] {
                    let swapped = tampered(&t, |c| c.swap(i, j));
                    let refused = matches!(verify(&recs, &swapped), Err(TokenError::BadChain { .. }));
                    prop_assert!(refused, "swapped caveats verified");
                }
            }
        }

        /// Any signed caveat bytes: refused as a caveat, or accepted only as a
        /// caveat that re-parses to the same restrictions. Never a panic.
        #[test]
        fn any_signed_caveat_is_understood_or_refused(bytes in prop::collection::vec(any::<u8>(), 1..200)) {
            prop_assume!(!bytes.contains(&b'\n'));
            let (root_token, rec) = root(3600);
            let t = signed(&root_token, &[&bytes]);
            match verify(&[rec], &t) {
                Err(TokenError::BadCaveat { caveat: 1, .. } | TokenError::CaveatExpired { .. }) => {}
                Ok(v) => {
                    let a = v.attenuation.unwrap();
                    let c = &a.caveats()[0];
                    prop_assert!(c.cap.is_some() || c.allow.is_some() || c.expires.is_some());
                    prop_assert!(c.check().is_ok());
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
        }

        /// Any text presented as a token: refused, never a panic, never accepted.
        #[test]
        fn any_text_is_refused(s in "airlock_[0-9a-f]{12}[._][A-Za-z0-9_.-]{0,80}|\\PC{0,80}") {
            let (_, rec) = root(3600);
            prop_assert!(verify(&[rec], &s).is_err());
        }
    }
}
