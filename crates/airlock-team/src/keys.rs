//! A device's keys, the team key per epoch, and every signature and seal the
//! database holds (docs/team.md, "Cryptography").
//!
//! ```text
//! device: Ed25519 signing key (rows, changes)  +  X25519 key (receives epoch keys)
//!   id = hex SHA-256("airlock-team v1 device id" ‖ sign_pk ‖ kx_pk)
//! epoch key (32 random bytes) ──HPKE base(X25519, HKDF-SHA256, ChaCha20-Poly1305)──▶ each device
//!   info = (team, epoch, device)       signed by the admin that wrapped it
//! secret version ──XChaCha20-Poly1305(HKDF(epoch key, team, "secrets"))──▶ airlock.secrets
//!   AAD = (team, name, version, epoch)  signed by its author device
//! ```
//!
//! Every signed or sealed message is built by [`message`]: a domain tag, then each
//! field length-prefixed, so no two different rows ever sign the same bytes.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::TeamError;

/// Length of every symmetric key and private seed.
pub const KEY_LEN: usize = 32;

/// The domain-separated bytes a row's signature (or AAD) covers.
pub fn message(kind: &str, fields: &[&[u8]]) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(b"airlock-team v1 ");
    m.extend_from_slice(kind.as_bytes());
    for f in fields {
        m.extend_from_slice(&u32::try_from(f.len()).unwrap_or(u32::MAX).to_be_bytes());
        m.extend_from_slice(f);
    }
    m
}

/// Fills `buf` from the OS random source.
pub(crate) fn random(buf: &mut [u8]) -> Result<(), TeamError> {
    getrandom::fill(buf).map_err(|e| TeamError::Crypto(format!("random source: {e}")))
}

/// A device's two private keys; they live only in memory and, sealed, in
/// `team/device.sealed` under the vault's team-device key.
pub struct DeviceKeys {
    sign: SigningKey,
    kx_seed: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKeys([REDACTED])")
    }
}

/// A device's public keys, as registered in `airlock.devices`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePublic {
    /// Ed25519 verifying key.
    pub sign_pk: [u8; KEY_LEN],
    /// X25519 public key (HPKE recipient).
    pub kx_pk: [u8; KEY_LEN],
}

impl DeviceKeys {
    /// Fresh keys from the OS random source.
    pub fn generate() -> Result<DeviceKeys, TeamError> {
        let mut sign = Zeroizing::new([0u8; KEY_LEN]);
        let mut kx = Zeroizing::new([0u8; KEY_LEN]);
        random(sign.as_mut())?;
        random(kx.as_mut())?;
        Ok(DeviceKeys::from_seeds(&sign, &kx))
    }

    /// Keys from their stored seeds.
    pub fn from_seeds(sign: &[u8; KEY_LEN], kx: &[u8; KEY_LEN]) -> DeviceKeys {
        DeviceKeys {
            sign: SigningKey::from_bytes(sign),
            kx_seed: Zeroizing::new(*kx),
        }
    }

    /// The seeds, for sealing into `team/device.sealed`.
    pub(crate) fn seeds(&self) -> (Zeroizing<[u8; KEY_LEN]>, Zeroizing<[u8; KEY_LEN]>) {
        (Zeroizing::new(self.sign.to_bytes()), self.kx_seed.clone())
    }

    fn kx_keypair(
        &self,
    ) -> (
        <X25519HkdfSha256 as hpke::Kem>::PrivateKey,
        <X25519HkdfSha256 as hpke::Kem>::PublicKey,
    ) {
        X25519HkdfSha256::derive_keypair(self.kx_seed.as_ref())
    }

    /// The public half.
    pub fn public(&self) -> DevicePublic {
        let mut kx_pk = [0u8; KEY_LEN];
        kx_pk.copy_from_slice(&self.kx_keypair().1.to_bytes());
        DevicePublic {
            sign_pk: self.sign.verifying_key().to_bytes(),
            kx_pk,
        }
    }

    /// Signs a [`message`].
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.sign.sign(msg).to_bytes().to_vec()
    }

    /// Opens an epoch key wrapped to this device.
    pub fn unwrap_epoch_key(
        &self,
        info: &[u8],
        enc: &[u8],
        ct: &[u8],
    ) -> Option<Zeroizing<[u8; KEY_LEN]>> {
        let enc = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(enc).ok()?;
        let (sk, _) = self.kx_keypair();
        let pt = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
            &OpModeR::Base,
            &sk,
            &enc,
            info,
            ct,
            b"",
        )
        .ok()?;
        let pt = Zeroizing::new(pt);
        let key: [u8; KEY_LEN] = pt.as_slice().try_into().ok()?;
        Some(Zeroizing::new(key))
    }
}

impl DevicePublic {
    /// The device id: hex SHA-256 over both public keys.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"airlock-team v1 device id");
        h.update(self.sign_pk);
        h.update(self.kx_pk);
        hex::encode(h.finalize())
    }
}

/// The short fingerprint shown on both sides of an enrollment: the id's first 20
/// hex digits in groups of four (80 bits).
pub fn fingerprint(id: &str) -> String {
    let short: Vec<char> = id.chars().take(20).collect();
    short
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// Whether `sig` is `sign_pk`'s signature over `msg` (strict verification).
pub fn verify(sign_pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(pk) = <[u8; KEY_LEN]>::try_from(sign_pk) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(sig) else {
        return false;
    };
    let Ok(vk) = VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .is_ok()
}

/// Wraps an epoch key to a device's X25519 key: (encapsulated key, ciphertext).
pub fn wrap_epoch_key(
    kx_pk: &[u8],
    info: &[u8],
    key: &[u8; KEY_LEN],
) -> Result<(Vec<u8>, Vec<u8>), TeamError> {
    let pk = <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(kx_pk)
        .map_err(|e| TeamError::Crypto(format!("device X25519 key: {e}")))?;
    let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
        &OpModeS::Base,
        &pk,
        info,
        key,
        b"",
    )
    .map_err(|e| TeamError::Crypto(format!("HPKE seal: {e}")))?;
    Ok((enc.to_bytes().to_vec(), ct))
}

fn secrets_key(epoch_key: &[u8; KEY_LEN], team: &str) -> Zeroizing<[u8; KEY_LEN]> {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(team.as_bytes()), epoch_key);
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    // 32 bytes is far below HKDF-SHA256's limit: expand cannot fail.
    if hk.expand(b"airlock-team v1 secrets", okm.as_mut()).is_err() {
        okm.as_mut().fill(0);
    }
    okm
}

/// Seals a secret version under the epoch key: (nonce, ciphertext‖tag).
pub fn seal_secret(
    epoch_key: &[u8; KEY_LEN],
    team: &str,
    aad: &[u8],
    value: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), TeamError> {
    seal_local(&secrets_key(epoch_key, team), aad, value)
}

/// Opens a sealed secret version; `None` when anything does not match.
pub fn open_secret(
    epoch_key: &[u8; KEY_LEN],
    team: &str,
    aad: &[u8],
    nonce: &[u8],
    ct: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    open_local(&secrets_key(epoch_key, team), aad, nonce, ct)
}

/// Seals bytes under a 32-byte key (the device file; a secret version under its
/// derived key): (nonce, ciphertext), XChaCha20-Poly1305 with a random nonce.
pub(crate) fn seal_local(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    value: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), TeamError> {
    let mut nonce = [0u8; 24];
    random(&mut nonce)?;
    let ct = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key))
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: value, aad })
        .map_err(|_| TeamError::Crypto("encryption failed".into()))?;
    Ok((nonce.to_vec(), ct))
}

/// Opens what [`seal_local`] sealed.
pub(crate) fn open_local(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    nonce: &[u8],
    ct: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if nonce.len() != 24 {
        return None;
    }
    XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key))
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_every_field() {
        let k = DeviceKeys::generate().unwrap();
        let pk = k.public().sign_pk;
        let m = message("device", &[b"team", b"id"]);
        let sig = k.sign(&m);
        assert!(verify(&pk, &m, &sig));
        // Moving a byte between fields changes the message.
        assert!(!verify(&pk, &message("device", &[b"tea", b"mid"]), &sig));
        assert!(!verify(&pk, &message("config", &[b"team", b"id"]), &sig));
        let other = DeviceKeys::generate().unwrap().public().sign_pk;
        assert!(!verify(&other, &m, &sig));
    }

    #[test]
    fn epoch_keys_open_only_for_their_device_and_info() {
        let a = DeviceKeys::generate().unwrap();
        let b = DeviceKeys::generate().unwrap();
        let key = [7u8; KEY_LEN];
        let (enc, ct) = wrap_epoch_key(&a.public().kx_pk, b"info", &key).unwrap();
        assert_eq!(*a.unwrap_epoch_key(b"info", &enc, &ct).unwrap(), key);
        assert!(a.unwrap_epoch_key(b"other", &enc, &ct).is_none());
        assert!(b.unwrap_epoch_key(b"info", &enc, &ct).is_none());
    }

    #[test]
    fn secrets_are_bound_to_their_identity() {
        let key = [9u8; KEY_LEN];
        let (n, ct) = seal_secret(&key, "t", b"aad", b"value").unwrap();
        assert_eq!(
            &**open_secret(&key, "t", b"aad", &n, &ct).unwrap(),
            b"value"
        );
        assert!(open_secret(&key, "t", b"aad2", &n, &ct).is_none());
        assert!(open_secret(&key, "u", b"aad", &n, &ct).is_none());
        assert!(!ct.windows(5).any(|w| w == b"value"));
    }

    #[test]
    fn device_ids_and_fingerprints() {
        let k = DeviceKeys::generate().unwrap();
        let (s, x) = k.seeds();
        let again = DeviceKeys::from_seeds(&s, &x);
        assert_eq!(k.public(), again.public());
        let id = k.public().id();
        assert_eq!(id.len(), 64);
        let fp = fingerprint(&id);
        assert_eq!(fp.len(), 24);
        assert_eq!(fp.replace('-', ""), id[..20]);
    }
}
