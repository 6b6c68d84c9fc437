//! `airlock secret set|rotate|list|rm`.

use airlock_config::Config;
use airlock_home::Home;
use airlock_vault::LockedVault;
use anyhow::bail;
use serde_json::json;

use crate::cli::{SecretCommand, ValueInput};
use crate::input::{self, Source};
use crate::{output, unlock};

const VALUE_FLAGS: &str = "--from-env VAR or --stdin";

fn source(input: &ValueInput) -> Source<'_> {
    match (&input.from_env, input.stdin) {
        (Some(var), _) => Source::Env(var),
        (None, true) => Source::Stdin,
        (None, false) => Source::Prompt,
    }
}

pub(crate) fn run(home: &Home, cmd: &SecretCommand) -> anyhow::Result<()> {
    match cmd {
        SecretCommand::Set { name, input } => {
            airlock_vault::validate_name(name)?;
            let value =
                input::read_value(source(input), &format!("value for \"{name}\""), VALUE_FLAGS)?;
            let store = crate::store::open(home);
            let (_lock, mut vault) = unlock::open_for_write(home, true)?;
            let (version, tell) = store.set_secret(&mut vault, name, &value)?;
            output::line(format_args!("stored secret \"{name}\" (version {version})"));
            tell.tell()?;
        }
        SecretCommand::Rotate { name, input } => {
            // Fail fast, before asking for a value, if the secret does not exist.
            if !LockedVault::load(home)?.contains(name) {
                return Err(airlock_vault::VaultError::NoSuchSecret {
                    name: name.escape_debug().to_string(),
                }
                .into());
            }
            let value = input::read_value(
                source(input),
                &format!("new value for \"{name}\""),
                VALUE_FLAGS,
            )?;
            let store = crate::store::open(home);
            let (_lock, mut vault) = unlock::open_for_write(home, false)?;
            let (version, tell) = store.rotate_secret(&mut vault, name, &value)?;
            output::line(format_args!(
                "rotated secret \"{name}\" (now version {version})"
            ));
            tell.tell()?;
        }
        SecretCommand::List(flag) => {
            let vault = unlock::open(home)?;
            let config = Config::load(home)?;
            let users = config.referenced_secrets();
            output::list(
                flag.json,
                &vault.list(),
                |s| {
                    json!({
                        "name": s.name,
                        "version": s.version,
                        "created": s.created.to_string(),
                        "rotated": s.rotated.map(|t| t.to_string()),
                        "fingerprint": s.fingerprint,
                        "used_by": users.get(s.name.as_str()).cloned().unwrap_or_default(),
                    })
                },
                &[
                    "NAME",
                    "VERSION",
                    "CREATED",
                    "ROTATED",
                    "FINGERPRINT",
                    "USED BY",
                ],
                |s| {
                    vec![
                        s.name.clone(),
                        s.version.to_string(),
                        s.created.strftime("%Y-%m-%d %H:%M UTC").to_string(),
                        s.rotated
                            .map_or("-".into(), |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string()),
                        s.fingerprint.chars().take(12).collect(),
                        users
                            .get(s.name.as_str())
                            .map_or("-".into(), |u| u.join(", ")),
                    ]
                },
                "no secrets yet — `airlock add` or `airlock secret set NAME` stores one",
            )?;
        }
        SecretCommand::Rm { name } => {
            let (_lock, mut vault) = unlock::open_for_write(home, false)?;
            let config = Config::load(home)?;
            if let Some(users) = config.referenced_secrets().get(name.as_str()) {
                bail!(
                    "secret \"{name}\" is used by service {}; remove the service first (`airlock remove {}`)",
                    users.join(", "),
                    users[0]
                );
            }
            crate::store::open(home).remove_secret(&mut vault, name)?;
            output::line(format_args!("deleted secret \"{name}\""));
        }
    }
    Ok(())
}
