//! Janee's sealed values: AES-256-GCM under the install's master key.
//!
//! Layout (Janee `SECURITY.md`, "Encryption Details"): the master key is 32 random
//! bytes written in standard base64; each value is `base64(iv ‖ tag ‖ ciphertext)`
//! with a 12-byte random IV, the 16-byte GCM tag *before* the ciphertext, no
//! associated data, and the plaintext the UTF-8 bytes of the secret.

use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// IV (nonce) length Janee uses.
pub(crate) const IV_LEN: usize = 12;
/// GCM tag length.
pub(crate) const TAG_LEN: usize = 16;

/// A Janee master key (32 bytes), wiped on drop.
pub(crate) struct MasterKey(Aes256Gcm);

/// Why a master key was refused. Never carries key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    /// Not standard base64.
    NotBase64,
    /// Decodes to this many bytes, not 32.
    Length(usize),
}

impl std::fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyProblem::NotBase64 => f.write_str("it is not base64"),
            KeyProblem::Length(n) => write!(f, "it decodes to {n} bytes, not 32"),
        }
    }
}

impl MasterKey {
    /// Decodes the base64 master key as Janee writes it.
    pub(crate) fn from_base64(text: &str) -> Result<MasterKey, KeyProblem> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| KeyProblem::NotBase64)?,
        );
        if bytes.len() != 32 {
            return Err(KeyProblem::Length(bytes.len()));
        }
        let cipher =
            Aes256Gcm::new_from_slice(&bytes).map_err(|_| KeyProblem::Length(bytes.len()))?;
        Ok(MasterKey(cipher))
    }

    /// Opens one sealed value.
    pub(crate) fn open(&self, sealed: &str) -> Result<Zeroizing<Vec<u8>>, OpenProblem> {
        let raw = STANDARD
            .decode(sealed.trim())
            .map_err(|_| OpenProblem::NotBase64)?;
        if raw.len() < IV_LEN + TAG_LEN {
            return Err(OpenProblem::TooShort(raw.len()));
        }
        let (iv, rest) = raw.split_at(IV_LEN);
        let (tag, ciphertext) = rest.split_at(TAG_LEN);
        // The RustCrypto API wants `ciphertext ‖ tag`.
        let mut ct_tag = Vec::with_capacity(ciphertext.len() + TAG_LEN);
        ct_tag.extend_from_slice(ciphertext);
        ct_tag.extend_from_slice(tag);
        self.0
            .decrypt(Nonce::from_slice(iv), ct_tag.as_slice())
            .map(Zeroizing::new)
            .map_err(|_| OpenProblem::Authentication)
    }
}

/// Why a sealed value could not be opened. Never carries value material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenProblem {
    /// Not standard base64 (Janee writes `Buffer.toString('base64')`).
    NotBase64,
    /// Shorter than IV + tag.
    TooShort(usize),
    /// The GCM tag does not verify: wrong master key, or the value was altered.
    Authentication,
}

impl std::fmt::Display for OpenProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenProblem::NotBase64 => f.write_str("it is not base64, so not a value Janee sealed"),
            OpenProblem::TooShort(n) => write!(
                f,
                "it decodes to {n} bytes, shorter than Janee's 12-byte IV and 16-byte tag"
            ),
            OpenProblem::Authentication => f.write_str(
                "it does not authenticate under the master key (wrong master key, or the value was altered)",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::Aead;

    fn seal(key: &[u8; 32], iv: [u8; 12], plain: &[u8]) -> String {
        let c = Aes256Gcm::new_from_slice(key).unwrap();
        let out = c.encrypt(Nonce::from_slice(&iv), plain).unwrap();
        let (ct, tag) = out.split_at(out.len() - TAG_LEN);
        let mut v = iv.to_vec();
        v.extend_from_slice(tag);
        v.extend_from_slice(ct);
        STANDARD.encode(v)
    }

    #[test]
    fn opens_iv_tag_ciphertext() {
        let key = [7u8; 32];
        let mk = MasterKey::from_base64(&STANDARD.encode(key)).unwrap();
        let sealed = seal(&key, [1; 12], b"sk_test_123");
        assert_eq!(mk.open(&sealed).unwrap().as_slice(), b"sk_test_123");
        let empty = seal(&key, [2; 12], b"");
        assert_eq!(mk.open(&empty).unwrap().as_slice(), b"");
    }

    #[test]
    fn refuses_bad_keys_and_values() {
        assert_eq!(
            MasterKey::from_base64("generate-with-janee-init").err(),
            Some(KeyProblem::NotBase64)
        );
        assert_eq!(
            MasterKey::from_base64(&STANDARD.encode([0u8; 16])).err(),
            Some(KeyProblem::Length(16))
        );
        let key = [7u8; 32];
        let mk = MasterKey::from_base64(&STANDARD.encode(key)).unwrap();
        let mut raw = STANDARD.decode(seal(&key, [1; 12], b"x")).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 0xff;
        assert_eq!(
            mk.open(&STANDARD.encode(&raw)).err(),
            Some(OpenProblem::Authentication)
        );
        assert_eq!(mk.open("AAAA").err(), Some(OpenProblem::TooShort(3)));
        assert_eq!(mk.open("encrypted:abc").err(), Some(OpenProblem::NotBase64));
    }
}
