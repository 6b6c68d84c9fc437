//! The chain: record MACs, the key that makes them, and the anchor that pins the
//! chain's head outside the log.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::AuditError;
use crate::files;
use crate::record::split_line;

/// The anchor's file name inside the state directory.
pub const ANCHOR_FILE: &str = "audit-head";

/// Domain separation: an anchor MAC can never be mistaken for a record MAC (record
/// bodies start with `{`).
const ANCHOR_CONTEXT: &[u8] = b"airlock-audit anchor v1\n";

/// An HMAC-SHA256 value: a record's `mac` or `prev`. Written as 64 lowercase hex
/// digits; any other spelling is refused, so no byte of a line can change without
/// the change being detected.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub(crate) [u8; 32]);

impl Mac {
    /// The `prev` of the first record.
    pub const ZERO: Mac = Mac([0; 32]);

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Strict decoding: exactly 64 lowercase hex digits.
    pub(crate) fn from_hex_bytes(hex: &[u8]) -> Option<Mac> {
        if hex.len() != 64 || !hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).ok()?;
        Some(Mac(out))
    }
}

/// A [`Mac`] written other than as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not 64 lowercase hex digits")]
#[non_exhaustive]
pub struct ParseMacError {
    /// The text given.
    pub input: String,
}

impl FromStr for Mac {
    type Err = ParseMacError;
    fn from_str(s: &str) -> Result<Mac, ParseMacError> {
        Mac::from_hex_bytes(s.as_bytes()).ok_or_else(|| ParseMacError {
            input: s.to_string(),
        })
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({})", self.to_hex())
    }
}

/// The audit key, ready to MAC. Only the keyed HMAC state is kept, not the raw key.
#[derive(Clone)]
pub(crate) struct Keyed(Hmac<Sha256>);

impl Keyed {
    pub(crate) fn new(key: &[u8; 32]) -> Keyed {
        // HMAC accepts keys of any length; a 32-byte key cannot be refused.
        Keyed(<Hmac<Sha256> as hmac::Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!()))
    }

    /// The MAC of a record body.
    pub(crate) fn record(&self, body: &[u8]) -> Mac {
        let mut h = self.0.clone();
        h.update(body);
        Mac(h.finalize().into_bytes().into())
    }

    /// Constant-time check of a record body against its claimed MAC.
    pub(crate) fn verify_record(&self, body: &[u8], mac: &Mac) -> bool {
        let mut h = self.0.clone();
        h.update(body);
        h.verify_slice(&mac.0).is_ok()
    }

    fn anchor(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut h = self.0.clone();
        h.update(ANCHOR_CONTEXT);
        h.update(body);
        h
    }
}

impl fmt::Debug for Keyed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyed(..)")
    }
}

/// The chain's head as recorded in `state/audit-head`: the newest record that is
/// known to be durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchor {
    /// Its sequence number.
    pub(crate) seq: u64,
    /// Its MAC.
    pub(crate) head: Mac,
    /// The log file that holds it (`audit-000003.jsonl`).
    pub(crate) file: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnchorWire {
    seq: u64,
    head: String,
    file: String,
}

/// What is found at the anchor path.
#[derive(Debug)]
pub(crate) enum AnchorState {
    /// No anchor file.
    Missing,
    /// An anchor that does not parse (reason).
    Unreadable(String),
    /// An anchor whose own MAC does not verify with this key.
    BadMac,
    /// A good anchor.
    Valid(Anchor),
}

impl Anchor {
    /// The file content: one JSON line, MAC'd like a record.
    pub(crate) fn to_bytes(&self, key: &Keyed) -> Vec<u8> {
        let wire = AnchorWire {
            seq: self.seq,
            head: self.head.to_hex(),
            file: self.file.clone(),
        };
        let body = serde_json::to_vec(&wire).unwrap_or_else(|_| b"{}".to_vec());
        let mac = Mac(key.anchor(&body).finalize().into_bytes().into());
        crate::record::line_from_body(body, &mac)
    }

    /// Reads and checks the anchor in `state_dir`.
    pub(crate) fn load(state_dir: &Path, key: &Keyed) -> Result<AnchorState, AuditError> {
        let path = state_dir.join(ANCHOR_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AnchorState::Missing),
            Err(e) => return Err(AuditError::io("cannot read the audit anchor", path, e)),
        };
        Ok(Anchor::parse(&bytes, key))
    }

    pub(crate) fn parse(bytes: &[u8], key: &Keyed) -> AnchorState {
        let Some(line) = bytes.strip_suffix(b"\n") else {
            return AnchorState::Unreadable("it does not end in a newline".into());
        };
        let split = match split_line(line) {
            Ok(s) => s,
            Err(reason) => return AnchorState::Unreadable(reason.to_string()),
        };
        if key.anchor(&split.body).verify_slice(&split.mac.0).is_err() {
            return AnchorState::BadMac;
        }
        let wire: AnchorWire = match serde_json::from_slice(&split.body) {
            Ok(w) => w,
            Err(e) => return AnchorState::Unreadable(format!("invalid JSON: {e}")),
        };
        let Some(head) = Mac::from_hex_bytes(wire.head.as_bytes()) else {
            return AnchorState::Unreadable("\"head\" is not 64 lowercase hex digits".into());
        };
        if files::index_of(&wire.file).is_none() {
            return AnchorState::Unreadable(format!(
                "{:?} is not an audit log file name",
                wire.file
            ));
        }
        AnchorState::Valid(Anchor {
            seq: wire.seq,
            head,
            file: wire.file,
        })
    }

    /// Replaces the anchor atomically: temp file (0600), fdatasync, rename.
    ///
    /// The directory is fsynced only when `sync_dir` is set (the first anchor a
    /// process writes). Skipping it is safe by construction: the records the anchor
    /// names are already durable, so if a crash loses the rename the anchor is
    /// merely one step *behind* the log — the state after a crash between the
    /// record's fsync and the anchor update, which the appender rolls forward and
    /// `verify` accepts. It saves one of the three syncs of an `Always` append.
    pub(crate) fn store(
        &self,
        state_dir: &Path,
        key: &Keyed,
        sync_dir: bool,
    ) -> Result<(), AuditError> {
        let path = state_dir.join(ANCHOR_FILE);
        let tmp = state_dir.join(format!(".{ANCHOR_FILE}.tmp"));
        let result = (|| -> std::io::Result<()> {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut file = opts.open(&tmp)?;
            std::io::Write::write_all(&mut file, &self.to_bytes(key))?;
            file.sync_data()?;
            drop(file);
            std::fs::rename(&tmp, &path)?;
            if sync_dir {
                files::sync_dir(state_dir)?;
            }
            Ok(())
        })();
        result.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            AuditError::io("cannot write the audit anchor", path, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_round_trips_and_any_change_is_caught() {
        let key = Keyed::new(&[7; 32]);
        let a = Anchor {
            seq: 42,
            head: Mac([3; 32]),
            file: "audit-000002.jsonl".into(),
        };
        let bytes = a.to_bytes(&key);
        assert!(matches!(Anchor::parse(&bytes, &key), AnchorState::Valid(b) if b == a));
        assert!(matches!(
            Anchor::parse(&bytes, &Keyed::new(&[8; 32])),
            AnchorState::BadMac
        ));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x20;
            assert!(
                !matches!(Anchor::parse(&b, &key), AnchorState::Valid(_)),
                "flip at {i}"
            );
        }
    }

    #[test]
    fn mac_hex_is_strict() {
        assert!("ab".repeat(32).parse::<Mac>().is_ok());
        assert!("AB".repeat(32).parse::<Mac>().is_err());
        assert!("ab".repeat(31).parse::<Mac>().is_err());
    }
}
