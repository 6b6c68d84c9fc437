//! `airlock add`, `remove` and `list`: services with their secret and default
//! capability.

use airlock_config::{AUTH_TYPES, CapabilitySpec, Config, ConfigDoc};
use airlock_home::Home;
use anyhow::bail;
use serde_json::json;

use crate::cli::{AddArgs, JsonFlag, RemoveArgs};
use crate::input::{self, Source};
use crate::{output, unlock};

const KEY_FLAGS: &str = "--key-from-env VAR or --key-stdin";

pub(crate) fn add(home: &Home, args: &AddArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    if !airlock_home::is_valid_name(name) {
        bail!(
            "invalid service name \"{}\": {}",
            name.escape_debug(),
            airlock_home::NAME_RULE
        );
    }
    if !AUTH_TYPES.contains(&args.auth.as_str()) {
        bail!(
            "unknown auth type \"{}\"; expected one of: {}",
            args.auth.escape_debug(),
            AUTH_TYPES.join(", ")
        );
    }
    let url_arg = match &args.url {
        Some(u) => u.clone(),
        None => input::ask(&format!("base URL for \"{name}\" (e.g. https://api.example.com): "))?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no URL given for \"{name}\"; add --url https://api.example.com (the API's base URL)"
                )
            })?,
    };
    let url_arg = url_arg.as_str();
    let url = airlock_config::check_service_url(url_arg).map_err(anyhow::Error::msg)?;
    if url.scheme() == "http" && !is_loopback(&url) {
        output::warn(format_args!(
            "{} uses plain http: the credential would cross the network unencrypted; prefer https",
            url.host_str().unwrap_or_default()
        ));
    }

    // Read the key before taking the lock: a prompt can wait on a person.
    let source = match (&args.key.key_from_env, args.key.key_stdin, &args.key.key) {
        (Some(var), _, _) => Source::Env(var),
        (None, true, _) => Source::Stdin,
        (None, false, Some(v)) => Source::Literal(v),
        (None, false, None) => Source::Prompt,
    };
    let value = input::read_value(source, &format!("key for \"{name}\""), KEY_FLAGS)?;

    let (_lock, mut vault) = unlock::open_for_write(home, true)?;
    let mut doc = ConfigDoc::load(home)?;
    // Write the URL as the user gave it (checked above), minus a trailing slash.
    doc.add_service(name, url_arg.trim_end_matches('/'), &args.auth, name)?;
    doc.add_capability(
        name,
        &CapabilitySpec {
            service: name.to_string(),
            ttl: Some("1h".into()),
            ..Default::default()
        },
    )?;
    doc.config()?;
    vault.insert(name, &value)?;

    // Vault first, then config. Should the config write fail, take the secret
    // back out so the command leaves both as they were.
    vault.save(home)?;
    if let Err(e) = doc.save() {
        vault.remove(name)?;
        vault.save(home)?;
        return Err(e.into());
    }
    output::line(format_args!(
        "added service \"{name}\" ({}) with capability \"{name}\" (ttl 1h, all paths); the key is in the vault",
        display_url(&url)
    ));
    output::line(format_args!(
        "restrict it with `airlock cap add ... --allow 'GET /v1/**'`, or see `airlock list`"
    ));
    Ok(())
}

/// A service URL as people write it: no trailing slash on a bare origin.
fn display_url(url: &url::Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub(crate) fn remove(home: &Home, args: &RemoveArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    let config = Config::load(home)?;
    let Some(service) = config.services.get(name) else {
        bail!(
            "unknown service \"{}\"; see `airlock list`",
            name.escape_debug()
        );
    };
    let caps: Vec<&str> = config
        .capabilities
        .values()
        .filter(|c| c.service == name)
        .map(|c| c.name.as_str())
        .collect();
    // Secrets only this service uses go with it; shared ones stay.
    let secrets: Vec<&str> = service
        .auth
        .secrets()
        .into_iter()
        .filter(|s| {
            config
                .referenced_secrets()
                .get(s)
                .is_some_and(|users| users.len() == 1)
        })
        .collect();
    if !args.yes {
        let question = format!(
            "remove service \"{name}\", capabilities [{}] and secrets [{}]?",
            caps.join(", "),
            secrets.join(", ")
        );
        if !input::confirm(&question)? {
            bail!("not removed; pass --yes to remove \"{name}\" without a prompt");
        }
    }

    let (_lock, mut vault) = unlock::open_for_write(home, false)?;
    let mut doc = ConfigDoc::load(home)?;
    // Re-check under the lock: another process may have changed things meanwhile.
    let current = doc.config()?;
    if !current.services.contains_key(name) {
        bail!(
            "unknown service \"{}\"; see `airlock list`",
            name.escape_debug()
        );
    }
    for cap in current.capabilities.values().filter(|c| c.service == name) {
        doc.remove_capability(&cap.name);
    }
    doc.remove_service(name);
    let remaining = doc.config()?;
    let mut removed_secrets = Vec::new();
    for s in &secrets {
        if vault.contains(s) && !remaining.referenced_secrets().contains_key(s) {
            vault.remove(s)?;
            removed_secrets.push(*s);
        }
    }
    // Config first: a config without the service but a vault with the secret is
    // harmless (the secret is unused); the other order would leave a service
    // whose secret is gone.
    doc.save()?;
    vault.save(home)?;
    output::line(format_args!(
        "removed service \"{name}\", capabilities [{}], secrets [{}]",
        caps.join(", "),
        removed_secrets.join(", ")
    ));
    Ok(())
}

pub(crate) fn list(home: &Home, args: &JsonFlag) -> anyhow::Result<()> {
    let config = Config::load(home)?;
    if args.json {
        let services: Vec<_> = config
            .services
            .values()
            .map(|s| {
                json!({
                    "name": s.name,
                    "url": display_url(&s.url),
                    "auth": s.auth.type_name(),
                    "secrets": s.auth.secrets(),
                })
            })
            .collect();
        let caps: Vec<_> = config
            .capabilities
            .values()
            .map(crate::cmd::cap::to_json)
            .collect();
        return output::json(&json!({ "services": services, "capabilities": caps }));
    }
    let rows = config
        .services
        .values()
        .map(|s| {
            vec![
                s.name.clone(),
                display_url(&s.url),
                s.auth.type_name().to_string(),
                s.auth.secrets().join(", "),
            ]
        })
        .collect();
    output::line("Services");
    output::table(
        &["NAME", "URL", "AUTH", "SECRET"],
        rows,
        "  (none — add one with `airlock add NAME --url URL`)",
    );
    output::line("");
    output::line("Capabilities");
    crate::cmd::cap::print_table(&config);
    Ok(())
}
