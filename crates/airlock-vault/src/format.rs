//! The on-disk format, version 1 (specified in docs/format.md).
//!
//! Binary fields are standard base64 with padding. Unknown fields are refused so a
//! file written by a newer airlock is never half-understood and then rewritten
//! without what it did not understand.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::VaultError;
use crate::crypto::KdfParams;

/// The format this airlock writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// The `format` field's fixed value: identifies an airlock vault.
pub(crate) const MAGIC: &str = "airlock-vault";

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VaultFile {
    pub(crate) format: String,
    pub(crate) version: u32,
    /// 16 random bytes, hex: the HKDF salt and part of every AAD.
    pub(crate) vault_id: String,
    pub(crate) unlock: UnlockHeader,
    pub(crate) data_key: Sealed,
    pub(crate) secrets: BTreeMap<String, Entry>,
}

/// How the master key is obtained.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum UnlockHeader {
    /// `master.key` beside the vault.
    KeyFile,
    /// Argon2id over the passphrase.
    Passphrase {
        kdf: String,
        params: KdfParams,
        salt: B64,
    },
    /// The OS keyring, under service "airlock" and the vault id as account.
    Keyring,
}

/// A nonce and a ciphertext with its tag.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sealed {
    pub(crate) nonce: B64,
    pub(crate) ciphertext: B64,
}

/// One secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    pub(crate) version: u32,
    pub(crate) created: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rotated: Option<jiff::Timestamp>,
    /// Keyed HMAC of the value, hex, so `secret list` can show whether two values
    /// are the same without revealing (or allowing a dictionary attack on) either.
    pub(crate) fingerprint: String,
    #[serde(flatten)]
    pub(crate) sealed: Sealed,
}

/// Bytes serialized as standard base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct B64(pub(crate) Vec<u8>);

impl Serialize for B64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map(B64)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

impl VaultFile {
    /// Parses and checks the header; never needs a key.
    pub(crate) fn parse(bytes: &[u8]) -> Result<VaultFile, VaultError> {
        // Peek at the version first, so a newer file reports "upgrade airlock" rather
        // than a confusing unknown-field error.
        #[derive(Deserialize)]
        struct Peek {
            format: Option<String>,
            version: Option<u32>,
        }
        let peek: Peek = serde_json::from_slice(bytes)
            .map_err(|e| VaultError::corrupt(format!("not valid JSON: {e}")))?;
        if peek.format.as_deref() != Some(MAGIC) {
            return Err(VaultError::corrupt(
                "not an airlock vault (missing \"format\": \"airlock-vault\")".into(),
            ));
        }
        match peek.version {
            Some(FORMAT_VERSION) => {}
            Some(v) if v > FORMAT_VERSION => {
                return Err(VaultError::UnsupportedVersion { found: v });
            }
            Some(v) => return Err(VaultError::corrupt(format!("unknown format version {v}"))),
            None => return Err(VaultError::corrupt("missing \"version\"".into())),
        }
        let file: VaultFile =
            serde_json::from_slice(bytes).map_err(|e| VaultError::corrupt(e.to_string()))?;
        if hex::decode(&file.vault_id).map(|v| v.len()) != Ok(16) {
            return Err(VaultError::corrupt(
                "vault_id must be 16 bytes of hex".into(),
            ));
        }
        if let UnlockHeader::Passphrase { kdf, params, salt } = &file.unlock {
            if kdf != "argon2id" {
                return Err(VaultError::corrupt(format!("unknown kdf \"{kdf}\"")));
            }
            if salt.0.len() < 16 {
                return Err(VaultError::corrupt(
                    "passphrase salt shorter than 16 bytes".into(),
                ));
            }
            params.check()?;
        }
        Ok(file)
    }

    /// Serializes with a trailing newline (stable, human-diffable key order).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain structs, maps and strings to JSON cannot fail.
        #[allow(clippy::expect_used)]
        let mut out = serde_json::to_vec_pretty(self).expect("vault serializes");
        out.push(b'\n');
        out
    }
}
