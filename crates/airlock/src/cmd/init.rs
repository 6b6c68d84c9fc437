//! `airlock init`.

use airlock_home::Home;
use airlock_vault::{KdfParams, LockedVault, NewVaultKey, Vault, VaultError};

use crate::cli::InitArgs;
use crate::{input, output, unlock};

pub(crate) fn run(home: &Home, args: &InitArgs) -> anyhow::Result<()> {
    // An existing vault is reported before asking for anything.
    let result = if home.vault_path().exists() {
        Err(VaultError::AlreadyInitialized {
            home: home.root().to_path_buf(),
            mode: LockedVault::load(home)?.mode(),
        })
    } else if args.passphrase {
        let pass = input::passphrase(true)?;
        Vault::init(home, NewVaultKey::Passphrase(&pass, KdfParams::DEFAULT))
    } else if args.keyring {
        // Fail before creating anything when no keyring is reachable.
        airlock_vault::keyring::available()?;
        Vault::init(home, NewVaultKey::Keyring)
    } else {
        Vault::init(home, NewVaultKey::KeyFile)
    };
    match result {
        Ok(vault) => {
            let _lock = home.lock()?;
            unlock::write_template(home)?;
            output::line(format_args!(
                "initialized airlock in {} ({} mode)",
                home.root().display(),
                vault.mode()
            ));
            output::line(
                "next: `airlock add NAME --url URL --key-from-env VAR` to store an API key",
            );
            Ok(())
        }
        Err(VaultError::AlreadyInitialized { home, mode }) => {
            let asked = if args.passphrase {
                "passphrase"
            } else if args.keyring {
                "keyring"
            } else {
                "key-file"
            };
            if asked == mode.to_string() {
                output::line(format_args!(
                    "airlock is already initialized in {} ({mode} mode); nothing changed",
                    home.display()
                ));
                Ok(())
            } else {
                Err(VaultError::AlreadyInitialized { home, mode }.into())
            }
        }
        Err(e) => Err(e.into()),
    }
}
