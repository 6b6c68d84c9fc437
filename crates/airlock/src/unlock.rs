//! Opening the home and unlocking the vault the way its header says.

use airlock_home::{Home, HomeLock};
use airlock_vault::{LockedVault, NewVaultKey, UnlockMode, Vault, VaultError};

use crate::{input, output};

/// Unlocks an existing vault with the master key its mode calls for.
pub(crate) fn open(home: &Home) -> anyhow::Result<Vault> {
    let locked = LockedVault::load(home)?;
    Ok(match locked.mode() {
        UnlockMode::KeyFile => locked.unlock_with_key_file(home)?,
        UnlockMode::Passphrase => locked.unlock_with_passphrase(&input::passphrase(false)?)?,
        UnlockMode::Keyring => locked.unlock_with_keyring()?,
    })
}

/// Takes the writer lock and unlocks the vault. With `create`, a home without a
/// vault first gets a key-file vault (and says so), so `airlock add` works on a
/// fresh machine.
pub(crate) fn open_for_write(home: &Home, create: bool) -> anyhow::Result<(HomeLock, Vault)> {
    if !home.vault_path().exists() {
        if !create {
            return Err(VaultError::NotInitialized {
                home: home.root().to_path_buf(),
            }
            .into());
        }
        match Vault::init(home, NewVaultKey::KeyFile) {
            Ok(_) => {
                output::note(format_args!(
                    "initialized a new airlock home at {} (key-file mode; see `airlock init --help` for passphrase or keyring)",
                    home.root().display()
                ));
            }
            // Another process initialized it at the same moment: use theirs.
            Err(VaultError::AlreadyInitialized { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let lock = home.lock()?;
    write_template(home)?;
    let vault = open(home)?;
    Ok((lock, vault))
}

/// Writes the commented config template if there is no config yet. The caller
/// holds the home lock.
pub(crate) fn write_template(home: &Home) -> anyhow::Result<()> {
    let path = home.config_path();
    if !path.exists() {
        airlock_home::write_atomic(&path, airlock_config::TEMPLATE.as_bytes())?;
    }
    Ok(())
}
