//! Reading secret values and passphrases: from an environment variable, from
//! stdin, or from a no-echo prompt on a terminal. Values go straight into
//! zeroizing buffers.

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::output;

/// The passphrase variable for non-interactive use.
pub(crate) const PASSPHRASE_ENV: &str = "AIRLOCK_PASSPHRASE";

/// A source for one secret value.
pub(crate) enum Source<'a> {
    Env(&'a str),
    Stdin,
    Literal(&'a str),
    Prompt,
}

/// Reads a secret value from `source`. `what` names it in messages ("key for
/// \"stripe\""); `flags` names the flags to suggest when nothing was given.
pub(crate) fn read_value(
    source: Source<'_>,
    what: &str,
    flags: &str,
) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let value = match source {
        Source::Env(var) => match std::env::var_os(var) {
            None => bail!("environment variable {var} is not set; export it first or use {flags}"),
            Some(v) => Zeroizing::new(v.into_encoded_bytes()),
        },
        Source::Stdin => {
            let mut buf = Zeroizing::new(Vec::new());
            let limit = airlock_vault::MAX_SECRET_LEN as u64 + 2;
            std::io::stdin()
                .take(limit)
                .read_to_end(&mut buf)
                .context("cannot read standard input")?;
            if buf.ends_with(b"\n") {
                buf.pop();
                if buf.ends_with(b"\r") {
                    buf.pop();
                }
            }
            buf
        }
        Source::Literal(v) => {
            output::warn(
                "a key given with --key is saved in your shell history; prefer --key-from-env or --key-stdin",
            );
            Zeroizing::new(v.as_bytes().to_vec())
        }
        Source::Prompt => {
            if !std::io::stdin().is_terminal() {
                bail!("no {what} given and no terminal to ask on; use {flags}");
            }
            let v = Zeroizing::new(
                rpassword::prompt_password(format!("{what} (input hidden): "))
                    .context("cannot read from the terminal")?,
            );
            Zeroizing::new(v.as_bytes().to_vec())
        }
    };
    if value.is_empty() {
        bail!("the {what} is empty; provide a value with {flags}");
    }
    if value.len() > airlock_vault::MAX_SECRET_LEN {
        bail!(
            "the {what} is larger than 64 KiB; airlock stores API keys and similar credentials, not files"
        );
    }
    Ok(value)
}

/// The vault passphrase: `AIRLOCK_PASSPHRASE`, or a prompt on a terminal.
/// `confirm` asks twice (for `init`).
pub(crate) fn passphrase(confirm: bool) -> anyhow::Result<SecretString> {
    if let Some(v) = std::env::var_os(PASSPHRASE_ENV) {
        let v = v
            .into_string()
            .map_err(|_| anyhow::anyhow!("{PASSPHRASE_ENV} is not valid UTF-8"))?;
        if v.is_empty() {
            bail!("{PASSPHRASE_ENV} is set but empty; set it to the vault passphrase");
        }
        return Ok(SecretString::from(v));
    }
    if !std::io::stdin().is_terminal() {
        return Err(airlock_vault::VaultError::PassphraseRequired.into());
    }
    let first = Zeroizing::new(
        rpassword::prompt_password("airlock passphrase: ")
            .context("cannot read from the terminal")?,
    );
    if first.is_empty() {
        bail!("the passphrase is empty; choose a passphrase");
    }
    if confirm {
        let second = Zeroizing::new(
            rpassword::prompt_password("repeat passphrase: ")
                .context("cannot read from the terminal")?,
        );
        if *first != *second {
            bail!("the passphrases do not match; run the command again");
        }
    }
    Ok(SecretString::from(first.as_str()))
}

/// Asks for a line of (non-secret) text on a terminal; `None` when there is no
/// terminal or the answer is empty.
pub(crate) fn ask(question: &str) -> anyhow::Result<Option<String>> {
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    output::prompt(question);
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    let answer = answer.trim();
    Ok((!answer.is_empty()).then(|| answer.to_string()))
}

/// Asks a yes/no question on a terminal; `false` when there is none.
pub(crate) fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    output::prompt(&format!("{question} [y/N] "));
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
