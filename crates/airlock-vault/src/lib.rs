//! airlock's encrypted secret store: key hierarchy, sealed entries, versioned on-disk format.
//!
//! The vault is one JSON file (`vault.json`) whose format is specified in
//! `docs/format.md`. Every secret is sealed with XChaCha20-Poly1305 under a fresh
//! random nonce, with the vault id, the secret's name and its version bound as
//! associated data, so ciphertexts cannot be swapped between entries or vaults. The
//! secrets key derives from a random data key, which the master key wraps; the master
//! key comes from a key file, a passphrase (Argon2id) or the OS keyring.
//!
//! Reading: [`LockedVault::load`] parses the file without any key and tells which
//! [`UnlockMode`] it needs; `unlock_*` checks the key and yields a [`Vault`]. Writing:
//! hold [`airlock_home::Home::lock`], load, change, [`Vault::save`] (atomic).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod crypto;
mod format;
pub mod keyring;
mod vault;

pub use crypto::{KdfParams, MasterKey, derive_from_passphrase};
pub use format::FORMAT_VERSION;
pub use vault::{
    LockedVault, MAX_SECRET_LEN, NewVaultKey, SecretInfo, UnlockMode, Vault, validate_name,
};

use std::path::PathBuf;

/// A secret value in memory: wiped on drop, never printed.
pub type SecretBytes = secrecy::SecretSlice<u8>;

/// Everything that can go wrong with the vault. Messages name the file or secret
/// and say what to do; none ever contains a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// No vault in this home yet.
    #[error("no airlock vault in {}; run `airlock init` first", home.display())]
    NotInitialized {
        /// The home directory.
        home: PathBuf,
    },
    /// `init` on a home that already has a vault.
    #[error("airlock is already initialized in {} ({mode} mode); nothing was changed", home.display())]
    AlreadyInitialized {
        /// The home directory.
        home: PathBuf,
        /// The existing vault's unlock mode.
        mode: UnlockMode,
    },
    /// The vault file is not a readable airlock vault.
    #[error("the vault file is corrupt ({detail}); restore vault.json from a backup")]
    Corrupt {
        /// What exactly is wrong.
        detail: String,
    },
    /// The vault was written by a newer airlock.
    #[error(
        "the vault file has format version {found}, newer than this airlock understands ({FORMAT_VERSION}); upgrade airlock"
    )]
    UnsupportedVersion {
        /// The version found in the file.
        found: u32,
    },
    /// The passphrase does not unlock the vault.
    #[error("wrong passphrase for this vault; check AIRLOCK_PASSPHRASE or retype it")]
    WrongPassphrase,
    /// The key file (or keyring entry) is not the key of this vault.
    #[error(
        "{source_name} does not unlock this vault (the key does not match); restore the original {source_name}"
    )]
    WrongKey {
        /// "master.key" or "the OS keyring entry".
        source_name: &'static str,
    },
    /// The key file exists but is not 32 bytes.
    #[error("{} is not a valid key file (expected 32 bytes, found {len}); restore it from a backup", path.display())]
    BadKeyFile {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// The vault needs a passphrase and none could be obtained.
    #[error(
        "this vault is protected by a passphrase; set AIRLOCK_PASSPHRASE or run the command in a terminal"
    )]
    PassphraseRequired,
    /// A sealed entry fails authentication: the file was modified.
    #[error(
        "secret \"{name}\" failed authentication: vault.json was modified or damaged; restore it from a backup"
    )]
    Tampered {
        /// The entry's name.
        name: String,
    },
    /// No secret of this name.
    #[error("no secret named \"{name}\"; see `airlock secret list`")]
    NoSuchSecret {
        /// The name asked for.
        name: String,
    },
    /// A secret of this name already exists.
    #[error(
        "a secret named \"{name}\" already exists; use `airlock secret rotate {name}` to replace its value"
    )]
    SecretExists {
        /// The name.
        name: String,
    },
    /// A name that airlock does not accept.
    #[error("invalid name \"{name}\": {}", airlock_home::NAME_RULE)]
    InvalidName {
        /// The name given (already checked to hold no control characters before display).
        name: String,
    },
    /// A secret value that cannot be stored.
    #[error("the value for \"{name}\" is {problem}")]
    InvalidValue {
        /// The secret's name.
        name: String,
        /// What is wrong ("empty", "larger than 64 KiB").
        problem: &'static str,
    },
    /// The OS keyring cannot be used here.
    #[error(
        "the OS keyring is not available ({detail}); use `airlock init` (key file) or `airlock init --passphrase` instead"
    )]
    KeyringUnavailable {
        /// Why.
        detail: String,
    },
    /// The OS random source failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    /// A file-level problem (permissions, lock, I/O).
    #[error(transparent)]
    Home(#[from] airlock_home::HomeError),
}

impl VaultError {
    pub(crate) fn corrupt(detail: String) -> Self {
        VaultError::Corrupt { detail }
    }

    /// No secret `name` (escaped for a one-line message).
    pub(crate) fn no_such_secret(name: &str) -> Self {
        VaultError::NoSuchSecret {
            name: name.escape_debug().to_string(),
        }
    }
}
