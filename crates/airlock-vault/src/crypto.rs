//! The key hierarchy and the AEAD seal/open primitives.
//!
//! ```text
//! master key (key file | Argon2id(passphrase) | OS keyring)      32 bytes
//!   └─ HKDF-SHA256(salt = vault id, info = "airlock-vault v1 kek") → KEK
//!        └─ XChaCha20-Poly1305 wraps the data key                     32 random bytes
//!             ├─ HKDF(info = "airlock-vault v1 secrets")     → seals every secret
//!             ├─ HKDF(info = "airlock-vault v1 fingerprint") → keyed fingerprints
//!             └─ HKDF(info = "airlock-vault v1 audit")       → audit chain HMAC key
//! ```
//!
//! Changing the passphrase re-wraps the data key only; the secrets stay as they are.
//! Purpose-bound subkeys mean a key used for one job can never be confused with another.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::VaultError;

/// Length of every symmetric key.
pub(crate) const KEY_LEN: usize = 32;
/// XChaCha20 nonce length: 192 bits, so random nonces never collide in practice.
pub(crate) const NONCE_LEN: usize = 24;

/// A 32-byte key that wipes itself when dropped and never prints.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; KEY_LEN]);

impl MasterKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        MasterKey(bytes)
    }

    /// A fresh random key from the OS.
    pub fn generate() -> Result<Self, VaultError> {
        let mut k = [0u8; KEY_LEN];
        random(&mut k)?;
        Ok(MasterKey(k))
    }

    /// Parses a key file: exactly 32 bytes.
    pub fn from_key_file(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(MasterKey(arr))
    }

    /// The raw bytes, for writing the key file or the keyring entry.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

/// Argon2id cost parameters, stored in the vault header so they can be raised later
/// without breaking existing vaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// The parameters new vaults get: 64 MiB, 3 passes, 1 lane (RFC 9106's second
    /// recommended option, above OWASP's 19 MiB / t=2 floor). See docs/format.md for
    /// the measured unlock time.
    pub const DEFAULT: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };

    /// Refuses parameters too weak to protect a passphrase, or absurd enough to be a
    /// denial of service (a tampered header asking for 1 TiB of memory).
    pub(crate) fn check(&self) -> Result<(), VaultError> {
        let ok = (19 * 1024..=4 * 1024 * 1024).contains(&self.m_kib)
            && (2..=64).contains(&self.t)
            && (1..=16).contains(&self.p);
        if ok {
            Ok(())
        } else {
            Err(VaultError::corrupt(format!(
                "Argon2id parameters out of range (m={} KiB, t={}, p={})",
                self.m_kib, self.t, self.p
            )))
        }
    }
}

/// Derives the master key from a passphrase with Argon2id.
pub fn derive_from_passphrase(
    passphrase: &[u8],
    salt: &[u8],
    params: KdfParams,
) -> Result<MasterKey, VaultError> {
    params.check()?;
    let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(KEY_LEN))
        .map_err(|e| VaultError::corrupt(format!("Argon2id parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = [0u8; KEY_LEN];
    argon
        .hash_password_into(passphrase, salt, &mut out)
        .map_err(|e| VaultError::corrupt(format!("Argon2id: {e}")))?;
    let key = MasterKey(out);
    out.zeroize();
    Ok(key)
}

/// Fills `buf` from the OS random source.
pub(crate) fn random(buf: &mut [u8]) -> Result<(), VaultError> {
    getrandom::fill(buf).map_err(|e| VaultError::Random(e.to_string()))
}

/// HKDF-SHA256 expand to one 32-byte key.
pub(crate) fn subkey(ikm: &[u8], salt: &[u8], info: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    #[allow(clippy::expect_used)]
    hk.expand(info, okm.as_mut())
        .expect("HKDF-SHA256 can always expand 32 bytes");
    okm
}

/// Seals `plaintext` under `key` with a fresh random nonce; returns (nonce, ciphertext‖tag).
pub(crate) fn seal(
    key: &[u8; KEY_LEN],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<([u8; NONCE_LEN], Vec<u8>), VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    random(&mut nonce)?;
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| VaultError::corrupt("encryption failed".to_string()))?;
    Ok((nonce, ct))
}

/// Opens a sealed value; `None` when the key, nonce, ciphertext or AAD do not match.
pub(crate) fn open(
    key: &[u8; KEY_LEN],
    nonce: &[u8],
    ciphertext: &[u8],
    aad: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if nonce.len() != NONCE_LEN {
        return None;
    }
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// HMAC-SHA256.
pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}
