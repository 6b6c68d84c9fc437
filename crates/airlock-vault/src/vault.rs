//! Opening, unlocking, changing and saving the vault.

use std::fmt;
use std::path::Path;

use airlock_home::Home;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::crypto::{self, KEY_LEN, KdfParams, MasterKey};
use crate::format::{B64, Entry, FORMAT_VERSION, MAGIC, Sealed, UnlockHeader, VaultFile};
use crate::{SecretBytes, VaultError};

/// The largest secret value airlock stores. API keys, PEM files and service-account
/// JSON are all far smaller; the cap keeps a mistaken `--key-stdin < bigfile` out.
pub const MAX_SECRET_LEN: usize = 64 * 1024;

const AAD_DATA_KEY: &[u8] = b"airlock-vault v1 data-key";
const AAD_SECRET: &[u8] = b"airlock-vault v1 secret";
const INFO_KEK: &[u8] = b"airlock-vault v1 kek";
const INFO_SECRETS: &[u8] = b"airlock-vault v1 secrets";
const INFO_FINGERPRINT: &[u8] = b"airlock-vault v1 fingerprint";
const INFO_AUDIT: &[u8] = b"airlock-vault v1 audit";
const INFO_TEAM_DEVICE: &[u8] = b"airlock-vault v1 team device";

/// Where the master key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockMode {
    /// `master.key` in the home directory (the default).
    KeyFile,
    /// A passphrase stretched with Argon2id.
    Passphrase,
    /// The operating system's keyring.
    Keyring,
}

impl fmt::Display for UnlockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnlockMode::KeyFile => "key-file",
            UnlockMode::Passphrase => "passphrase",
            UnlockMode::Keyring => "keyring",
        })
    }
}

/// Checks a secret name (see [`airlock_home::is_valid_name`]).
pub fn validate_name(name: &str) -> Result<(), VaultError> {
    if airlock_home::is_valid_name(name) {
        Ok(())
    } else {
        Err(VaultError::InvalidName {
            name: name.escape_debug().to_string(),
        })
    }
}

/// A vault read from disk, not yet unlocked: its header is known, no secret is.
#[derive(Debug)]
pub struct LockedVault {
    file: VaultFile,
}

impl LockedVault {
    /// Reads and parses `vault.json`, checking that it and the home are private.
    pub fn load(home: &Home) -> Result<LockedVault, VaultError> {
        let path = home.vault_path();
        if !path.exists() {
            return Err(VaultError::NotInitialized {
                home: home.root().to_path_buf(),
            });
        }
        home.ensure_dir()?;
        airlock_home::check_private_file(&path)?;
        let bytes = airlock_home::read(&path)?;
        Self::from_bytes(&bytes)
    }

    /// Parses a vault file's bytes (used by `load`, tests and the fuzzer).
    pub fn from_bytes(bytes: &[u8]) -> Result<LockedVault, VaultError> {
        Ok(LockedVault {
            file: VaultFile::parse(bytes)?,
        })
    }

    /// Which secret unlocks this vault.
    pub fn mode(&self) -> UnlockMode {
        match self.file.unlock {
            UnlockHeader::KeyFile => UnlockMode::KeyFile,
            UnlockHeader::Passphrase { .. } => UnlockMode::Passphrase,
            UnlockHeader::Keyring => UnlockMode::Keyring,
        }
    }

    /// Whether a secret of this name exists (no key needed).
    pub fn contains(&self, name: &str) -> bool {
        self.file.secrets.contains_key(name)
    }

    /// The vault's random id (hex), public.
    pub fn id(&self) -> &str {
        &self.file.vault_id
    }

    /// Unlocks with the home's `master.key`.
    pub fn unlock_with_key_file(self, home: &Home) -> Result<Vault, VaultError> {
        let key = read_key_file(&home.master_key_path())?;
        self.unlock_with_key(&key, "master.key")
    }

    /// Unlocks with a passphrase (Argon2id with the parameters in the header).
    pub fn unlock_with_passphrase(self, passphrase: &SecretString) -> Result<Vault, VaultError> {
        use secrecy::ExposeSecret;
        let UnlockHeader::Passphrase { params, salt, .. } = &self.file.unlock else {
            return Err(VaultError::corrupt(
                "the vault is not in passphrase mode".into(),
            ));
        };
        let key = crypto::derive_from_passphrase(
            passphrase.expose_secret().as_bytes(),
            &salt.0,
            *params,
        )?;
        match self.unlock_with_key(&key, "passphrase") {
            Err(VaultError::WrongKey { .. }) => Err(VaultError::WrongPassphrase),
            other => other,
        }
    }

    /// Unlocks with the master key kept in the OS keyring.
    pub fn unlock_with_keyring(self) -> Result<Vault, VaultError> {
        let key = crate::keyring::load(&self.file.vault_id)?;
        self.unlock_with_key(&key, "the OS keyring entry")
    }

    /// Unlocks with a master key obtained elsewhere.
    pub fn unlock_with_key(
        self,
        master: &MasterKey,
        source_name: &'static str,
    ) -> Result<Vault, VaultError> {
        let file = self.file;
        let id = hex::decode(&file.vault_id)
            .map_err(|_| VaultError::corrupt("vault_id is not hex".into()))?;
        let kek = crypto::subkey(master.expose(), &id, INFO_KEK);
        let aad = data_key_aad(&file.vault_id, &file.unlock);
        let data_key = crypto::open(
            &kek,
            &file.data_key.nonce.0,
            &file.data_key.ciphertext.0,
            &aad,
        )
        .ok_or(VaultError::WrongKey { source_name })?;
        let data_key: Zeroizing<[u8; KEY_LEN]> = Zeroizing::new(
            data_key
                .as_slice()
                .try_into()
                .map_err(|_| VaultError::corrupt("data key has the wrong length".into()))?,
        );
        Ok(Vault {
            keys: Keys::derive(&data_key, &id),
            data_key,
            file,
        })
    }
}

fn read_key_file(path: &Path) -> Result<MasterKey, VaultError> {
    airlock_home::check_private_file(path)?;
    let bytes = Zeroizing::new(airlock_home::read(path)?);
    MasterKey::from_key_file(&bytes).ok_or(VaultError::BadKeyFile {
        path: path.to_path_buf(),
        len: bytes.len(),
    })
}

/// A fresh salt, the Argon2id key for `pass`, and the header that records both.
fn passphrase_key(
    pass: &SecretString,
    params: KdfParams,
) -> Result<(MasterKey, UnlockHeader), VaultError> {
    use secrecy::ExposeSecret;
    if pass.expose_secret().is_empty() {
        return Err(VaultError::InvalidValue {
            name: "passphrase".into(),
            problem: "empty",
        });
    }
    let mut salt = vec![0u8; 16];
    crypto::random(&mut salt)?;
    let key = crypto::derive_from_passphrase(pass.expose_secret().as_bytes(), &salt, params)?;
    let header = UnlockHeader::Passphrase {
        kdf: "argon2id".into(),
        params,
        salt: B64(salt),
    };
    Ok((key, header))
}

/// The AAD for the wrapped data key binds the vault id and the unlock mode, so a
/// header cannot be edited to claim another mode.
fn data_key_aad(vault_id: &str, unlock: &UnlockHeader) -> Vec<u8> {
    let mode = match unlock {
        UnlockHeader::KeyFile => "key-file",
        UnlockHeader::Passphrase { .. } => "passphrase",
        UnlockHeader::Keyring => "keyring",
    };
    let mut aad = AAD_DATA_KEY.to_vec();
    for part in [vault_id.as_bytes(), mode.as_bytes()] {
        aad.push(0);
        aad.extend_from_slice(part);
    }
    aad
}

/// The AAD for a secret: vault id, name and version, NUL-separated. Names cannot
/// contain NUL (see [`validate_name`]), so the encoding is unambiguous.
fn secret_aad(vault_id: &str, name: &str, version: u32) -> Vec<u8> {
    let mut aad = AAD_SECRET.to_vec();
    for part in [vault_id.as_bytes(), name.as_bytes()] {
        aad.push(0);
        aad.extend_from_slice(part);
    }
    aad.push(0);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

struct Keys {
    secrets: Zeroizing<[u8; KEY_LEN]>,
    fingerprint: Zeroizing<[u8; KEY_LEN]>,
    audit: Zeroizing<[u8; KEY_LEN]>,
}

impl Keys {
    fn derive(data_key: &[u8; KEY_LEN], vault_id: &[u8]) -> Keys {
        Keys {
            secrets: crypto::subkey(data_key, vault_id, INFO_SECRETS),
            fingerprint: crypto::subkey(data_key, vault_id, INFO_FINGERPRINT),
            audit: crypto::subkey(data_key, vault_id, INFO_AUDIT),
        }
    }
}

/// Public facts about one secret; never its value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretInfo {
    /// The secret's name.
    pub name: String,
    /// 1 when created; +1 on each rotation.
    pub version: u32,
    /// When it was first stored.
    pub created: jiff::Timestamp,
    /// When its value was last replaced.
    pub rotated: Option<jiff::Timestamp>,
    /// A short keyed fingerprint of the value (HMAC, not a plain hash: it reveals
    /// nothing about the value, yet equal values in one vault get equal fingerprints).
    pub fingerprint: String,
}

/// An unlocked vault.
pub struct Vault {
    file: VaultFile,
    data_key: Zeroizing<[u8; KEY_LEN]>,
    keys: Keys,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("vault_id", &self.file.vault_id)
            .field("secrets", &self.file.secrets.len())
            .finish_non_exhaustive()
    }
}

/// What `init` should protect the new vault with.
pub enum NewVaultKey<'a> {
    /// A fresh `master.key`.
    KeyFile,
    /// A passphrase (Argon2id with [`KdfParams::DEFAULT`] unless given).
    Passphrase(&'a SecretString, KdfParams),
    /// A fresh key stored in the OS keyring.
    Keyring,
}

impl Vault {
    /// Creates a new, empty vault in `home` and writes it (and `master.key` or the
    /// keyring entry). Refuses to touch an existing vault.
    pub fn init(home: &Home, how: NewVaultKey<'_>) -> Result<Vault, VaultError> {
        home.ensure_dir()?;
        let _lock = home.lock()?;
        if home.vault_path().exists() {
            let mode = LockedVault::load(home)?.mode();
            return Err(VaultError::AlreadyInitialized {
                home: home.root().to_path_buf(),
                mode,
            });
        }
        let mut id = [0u8; 16];
        crypto::random(&mut id)?;
        let vault_id = hex::encode(id);
        let (master, unlock) = match how {
            NewVaultKey::KeyFile => {
                let key_path = home.master_key_path();
                let key = if key_path.exists() {
                    // A key file without a vault: a previous init died between the two
                    // writes. Reuse it rather than fail or overwrite it.
                    read_key_file(&key_path)?
                } else {
                    let key = MasterKey::generate()?;
                    airlock_home::create_new(&key_path, key.expose())?;
                    key
                };
                (key, UnlockHeader::KeyFile)
            }
            NewVaultKey::Passphrase(pass, params) => passphrase_key(pass, params)?,
            NewVaultKey::Keyring => {
                let key = MasterKey::generate()?;
                crate::keyring::store_key(&vault_id, &key)?;
                (key, UnlockHeader::Keyring)
            }
        };
        let mut data_key = Zeroizing::new([0u8; KEY_LEN]);
        crypto::random(data_key.as_mut())?;
        let kek = crypto::subkey(master.expose(), &id, INFO_KEK);
        let (nonce, ct) = crypto::seal(&kek, data_key.as_ref(), &data_key_aad(&vault_id, &unlock))?;
        let file = VaultFile {
            format: MAGIC.into(),
            version: FORMAT_VERSION,
            vault_id,
            unlock,
            data_key: Sealed {
                nonce: B64(nonce.to_vec()),
                ciphertext: B64(ct),
            },
            secrets: Default::default(),
        };
        let vault = Vault {
            keys: Keys::derive(&data_key, &id),
            data_key,
            file,
        };
        vault.save(home)?;
        Ok(vault)
    }

    /// Re-reads the entries from `bytes` (the vault file as another process left
    /// it), keeping this vault's keys: a running server picks up secrets added or
    /// rotated by the CLI without asking for the master key again. The file must
    /// be the same vault (same id); entries are authenticated when read, as always.
    pub fn refresh(&mut self, bytes: &[u8]) -> Result<(), VaultError> {
        let file = VaultFile::parse(bytes)?;
        if file.vault_id != self.file.vault_id {
            return Err(VaultError::corrupt(
                "vault.json now holds a different vault; restart the server".into(),
            ));
        }
        self.file = file;
        Ok(())
    }

    /// Writes the vault atomically (temp file, fsync, rename, fsync directory).
    /// The caller holds [`Home::lock`] across load-change-save.
    pub fn save(&self, home: &Home) -> Result<(), VaultError> {
        airlock_home::write_atomic(&home.vault_path(), &self.file.to_bytes())?;
        Ok(())
    }

    /// The file's bytes, for tests and golden vectors.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.file.to_bytes()
    }

    /// How this vault is unlocked.
    pub fn mode(&self) -> UnlockMode {
        LockedVault {
            file: self.file.clone(),
        }
        .mode()
    }

    /// The key for the audit chain's HMAC: derived from the data key, so it survives
    /// a passphrase change.
    pub fn audit_key(&self) -> &[u8; KEY_LEN] {
        &self.keys.audit
    }

    /// Team mode's hook (issue 15): the key that seals this device's team keys
    /// (`team/device.sealed`), derived from the data key for that purpose only, so
    /// the device keys are as safe as the vault and never leave it unsealed.
    pub fn team_device_key(&self) -> Zeroizing<[u8; KEY_LEN]> {
        crypto::subkey(
            self.data_key.as_ref(),
            self.file.vault_id.as_bytes(),
            INFO_TEAM_DEVICE,
        )
    }

    /// How many secrets the vault holds.
    pub fn len(&self) -> usize {
        self.file.secrets.len()
    }

    /// Whether the vault holds no secret.
    pub fn is_empty(&self) -> bool {
        self.file.secrets.is_empty()
    }

    /// Whether a secret of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.file.secrets.contains_key(name)
    }

    /// Public facts about every secret, sorted by name.
    pub fn list(&self) -> Vec<SecretInfo> {
        self.file
            .secrets
            .iter()
            .map(|(name, e)| SecretInfo {
                name: name.clone(),
                version: e.version,
                created: e.created,
                rotated: e.rotated,
                fingerprint: e.fingerprint.clone(),
            })
            .collect()
    }

    /// Decrypts one secret.
    pub fn get(&self, name: &str) -> Result<SecretBytes, VaultError> {
        let entry = self.entry(name)?;
        let aad = secret_aad(&self.file.vault_id, name, entry.version);
        let plain = crypto::open(
            &self.keys.secrets,
            &entry.sealed.nonce.0,
            &entry.sealed.ciphertext.0,
            &aad,
        )
        .ok_or_else(|| VaultError::Tampered { name: name.into() })?;
        Ok(SecretBytes::from(plain.to_vec().into_boxed_slice()))
    }

    /// Stores a new secret; refuses to overwrite one (that is [`Vault::rotate`]).
    pub fn insert(&mut self, name: &str, value: &[u8]) -> Result<(), VaultError> {
        validate_name(name)?;
        if self.contains(name) {
            return Err(VaultError::SecretExists { name: name.into() });
        }
        let entry = self.seal_entry(name, value, 1, jiff::Timestamp::now(), None)?;
        self.file.secrets.insert(name.into(), entry);
        Ok(())
    }

    /// Replaces an existing secret's value, bumping its version.
    pub fn rotate(&mut self, name: &str, value: &[u8]) -> Result<(), VaultError> {
        let old = self.entry(name)?;
        let version = old.version.checked_add(1).ok_or_else(|| {
            VaultError::corrupt(format!("secret \"{name}\" has reached the maximum version"))
        })?;
        let created = old.created;
        let entry = self.seal_entry(name, value, version, created, Some(jiff::Timestamp::now()))?;
        self.file.secrets.insert(name.into(), entry);
        Ok(())
    }

    /// Deletes a secret.
    pub fn remove(&mut self, name: &str) -> Result<(), VaultError> {
        self.file
            .secrets
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| VaultError::no_such_secret(name))
    }

    /// The stored entry of secret `name`.
    fn entry(&self, name: &str) -> Result<&Entry, VaultError> {
        self.file
            .secrets
            .get(name)
            .ok_or_else(|| VaultError::no_such_secret(name))
    }

    /// The keyed fingerprint a value would get in this vault (hex, 16 chars), so
    /// `scan`/`migrate` can tell whether a found key is already stored.
    pub fn fingerprint(&self, value: &[u8]) -> String {
        hex::encode(&crypto::hmac(self.keys.fingerprint.as_ref(), &[value])[..8])
    }

    /// Re-protects the vault with a new passphrase (or moves it to passphrase mode).
    /// Only the data key is re-wrapped; no secret is rewritten.
    pub fn set_passphrase(
        &mut self,
        passphrase: &SecretString,
        params: KdfParams,
    ) -> Result<(), VaultError> {
        let (key, unlock) = passphrase_key(passphrase, params)?;
        self.rewrap(&key, unlock)
    }

    fn rewrap(&mut self, master: &MasterKey, unlock: UnlockHeader) -> Result<(), VaultError> {
        let id = hex::decode(&self.file.vault_id)
            .map_err(|_| VaultError::corrupt("vault_id is not hex".into()))?;
        let kek = crypto::subkey(master.expose(), &id, INFO_KEK);
        let (nonce, ct) = crypto::seal(
            &kek,
            self.data_key.as_ref(),
            &data_key_aad(&self.file.vault_id, &unlock),
        )?;
        self.file.unlock = unlock;
        self.file.data_key = Sealed {
            nonce: B64(nonce.to_vec()),
            ciphertext: B64(ct),
        };
        Ok(())
    }

    fn seal_entry(
        &self,
        name: &str,
        value: &[u8],
        version: u32,
        created: jiff::Timestamp,
        rotated: Option<jiff::Timestamp>,
    ) -> Result<Entry, VaultError> {
        if value.is_empty() {
            return Err(VaultError::InvalidValue {
                name: name.into(),
                problem: "empty",
            });
        }
        if value.len() > MAX_SECRET_LEN {
            return Err(VaultError::InvalidValue {
                name: name.into(),
                problem: "larger than 64 KiB",
            });
        }
        let aad = secret_aad(&self.file.vault_id, name, version);
        let (nonce, ct) = crypto::seal(&self.keys.secrets, value, &aad)?;
        Ok(Entry {
            version,
            created,
            rotated,
            fingerprint: self.fingerprint(value),
            sealed: Sealed {
                nonce: B64(nonce.to_vec()),
                ciphertext: B64(ct),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "stripe",
            "a",
            "OPENAI_API_KEY",
            "gh.token-2",
            &"x".repeat(64),
        ] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "",
            "-x",
            ".env",
            "a b",
            "a/b",
            "a\0b",
            "é",
            &"x".repeat(65),
            "..",
            "a\nb",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn aad_is_unambiguous() {
        assert_ne!(secret_aad("id", "ab", 1), secret_aad("id", "a", 1));
        assert_ne!(secret_aad("id", "a", 1), secret_aad("id", "a", 2));
        assert_ne!(secret_aad("id1", "a", 1), secret_aad("id", "1a", 1));
    }
}
