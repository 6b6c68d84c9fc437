//! Keeping the master key in the operating system's keyring (`airlock init --keyring`).
//!
//! macOS Keychain, Windows Credential Manager, and the freedesktop Secret Service
//! (GNOME Keyring, KWallet) on Linux, through `keyring-core` and the per-OS store.
//! Where no keyring is reachable — typically a headless Linux box without a D-Bus
//! session — this fails with [`VaultError::KeyringUnavailable`], which names the
//! alternatives. There is deliberately no silent fallback to a weaker store.
//!
//! The entry is service `airlock`, account `vault-<vault id>`, so several homes on
//! one machine do not collide.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::{MasterKey, VaultError};

const SERVICE: &str = "airlock";

fn account(vault_id: &str) -> String {
    format!("vault-{vault_id}")
}

/// Describes a keyring error without ever including the stored data, which some
/// variants of `keyring_core::Error` carry.
fn describe(e: &keyring_core::Error) -> String {
    use keyring_core::Error as E;
    match e {
        E::PlatformFailure(p) | E::NoStorageAccess(p) => p.to_string(),
        E::NoEntry => "no airlock entry in the keyring".into(),
        E::BadEncoding(_) | E::BadDataFormat(..) => {
            "the keyring entry is not an airlock key".into()
        }
        other => format!("{other:?}").chars().take(200).collect(),
    }
}

/// [`VaultError::KeyringUnavailable`] for an error of the keyring crate.
fn unavailable(e: &keyring_core::Error) -> VaultError {
    VaultError::KeyringUnavailable {
        detail: describe(e),
    }
}

#[cfg(target_os = "linux")]
fn store() -> Result<Arc<keyring_core::CredentialStore>, VaultError> {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        // Without a session bus the Secret Service cannot be reached; say so plainly
        // rather than after a D-Bus connection timeout.
        return Err(VaultError::KeyringUnavailable {
            detail:
                "no D-Bus session (DBUS_SESSION_BUS_ADDRESS is unset), as on a headless Linux machine"
                    .into(),
        });
    }
    let store = zbus_secret_service_keyring_store::Store::new().map_err(|e| unavailable(&e))?;
    Ok(store)
}

#[cfg(target_os = "macos")]
fn store() -> Result<Arc<keyring_core::CredentialStore>, VaultError> {
    let store = apple_native_keyring_store::keychain::Store::new().map_err(|e| unavailable(&e))?;
    Ok(store)
}

#[cfg(target_os = "windows")]
fn store() -> Result<Arc<keyring_core::CredentialStore>, VaultError> {
    let store = windows_native_keyring_store::Store::new().map_err(|e| unavailable(&e))?;
    Ok(store)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
fn store() -> Result<Arc<keyring_core::CredentialStore>, VaultError> {
    Err(VaultError::KeyringUnavailable {
        detail: "this operating system has no supported keyring".into(),
    })
}

fn entry(vault_id: &str) -> Result<keyring_core::Entry, VaultError> {
    let store = store()?;
    keyring_core::Entry::new_in_store(&store, SERVICE, &account(vault_id))
        .map_err(|e| unavailable(&e))
}

/// Saves a new vault's master key in the keyring.
pub(crate) fn store_key(vault_id: &str, key: &MasterKey) -> Result<(), VaultError> {
    let encoded = Zeroizing::new(STANDARD.encode(key.expose()));
    entry(vault_id)?
        .set_password(&encoded)
        .map_err(|e| unavailable(&e))
}

/// Reads the master key of this vault from the keyring.
pub(crate) fn load(vault_id: &str) -> Result<MasterKey, VaultError> {
    let encoded = Zeroizing::new(
        entry(vault_id)?
            .get_password()
            .map_err(|e| unavailable(&e))?,
    );
    let bytes = Zeroizing::new(STANDARD.decode(encoded.as_bytes()).map_err(|_| {
        VaultError::KeyringUnavailable {
            detail: "the keyring entry is not an airlock key".into(),
        }
    })?);
    MasterKey::from_key_file(&bytes).ok_or(VaultError::WrongKey {
        source_name: "the OS keyring entry",
    })
}

/// Whether a keyring can be reached at all (for `doctor` and early errors).
pub fn available() -> Result<(), VaultError> {
    store().map(|_| ())
}
