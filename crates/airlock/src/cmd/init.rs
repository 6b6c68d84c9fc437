//! `airlock init`.

use std::io::IsTerminal;

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
        // No vault yet: this chooses the passphrase of a new one. Say so, rather
        // than the unlock error ("this vault is protected by a passphrase").
        if std::env::var_os(input::PASSPHRASE_ENV).is_none() && !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "--passphrase needs the passphrase for the new vault and there is no terminal to ask on: set {} to the passphrase you choose (every later command reads it from there too, or asks on a terminal), or run `airlock init --passphrase` in a terminal",
                input::PASSPHRASE_ENV
            );
        }
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
            if vault.mode() == airlock_vault::UnlockMode::Passphrase {
                output::line(format_args!(
                    "the vault is sealed with your passphrase: no file holds it, and it cannot be recovered if lost. Commands ask for it on a terminal, or read {} where there is none (an MCP client starting `airlock serve`)",
                    input::PASSPHRASE_ENV
                ));
            }
            output::line(
                "next: `airlock add NAME --url URL --key-from-env VAR` to store an API key, then `airlock cap add` to say what agents may do with it",
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
