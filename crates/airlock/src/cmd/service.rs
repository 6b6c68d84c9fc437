//! `airlock add`, `remove` and `list`: services with their secret, and with
//! a first capability (NAME, the template's rules, ttl 1h; `--no-cap` for none).

use airlock_config::{AUTH_TYPES, Auth, AuthValue, CapabilitySpec, Config, ConfigDoc, FlagInput};
use airlock_home::Home;
use anyhow::bail;
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::{AddArgs, JsonFlag, RemoveArgs, SearchArgs};
use crate::input::{self, Source};
use crate::templates::{self, Template, TemplateAuth};
use crate::{output, unlock};

const KEY_FLAGS: &str = "--key-from-env VAR or --key-stdin";

/// Secret parts to store: (vault name, value).
type SecretParts = Vec<(String, Zeroizing<Vec<u8>>)>;

/// A value from a flag, or asked for on a terminal, or an error naming the flag.
fn need(value: Option<&str>, auth: &str, flag: &str, what: &str) -> anyhow::Result<String> {
    if let Some(v) = value {
        return Ok(v.to_string());
    }
    input::ask(&format!("{what}: "))?
        .ok_or_else(|| anyhow::anyhow!("auth type \"{auth}\" needs {flag} ({what})"))
}

/// One secret part: from `--<part>-from-env VAR`, else a no-echo prompt on a
/// terminal, else an error naming the flag.
fn part(env: Option<&str>, what: &str, flag: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let source = env.map_or(Source::Prompt, Source::Env);
    input::read_value(source, what, &format!("{flag} VAR"))
}

/// A secret that lives in a file (a PEM key, a service-account JSON): read once
/// into the vault. The file itself stays where it is; `scan` will flag it.
fn file_part(path: &std::path::Path, what: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", path.display()))?;
    if meta.len() > airlock_vault::MAX_SECRET_LEN as u64 {
        bail!(
            "{} is larger than 64 KiB; is it really the {what}?",
            path.display()
        );
    }
    let bytes = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", path.display()))?,
    );
    if bytes.is_empty() {
        bail!("{} is empty; expected the {what}", path.display());
    }
    Ok(bytes)
}

/// The service's main secret (key, password, client secret): `--key-*`, a
/// type-specific `--…-from-env`, or a prompt.
fn main_secret(
    args: &AddArgs,
    name: &str,
    specific_env: Option<&str>,
    what: &str,
) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let source = match (
        specific_env,
        args.key.key_from_env.as_deref(),
        args.key.key_stdin,
        &args.key.key,
    ) {
        (Some(var), ..) | (None, Some(var), _, _) => Source::Env(var),
        (None, None, true, _) => Source::Stdin,
        (None, None, false, Some(v)) => Source::Literal(v),
        (None, None, false, None) => Source::Prompt,
    };
    input::read_value(source, &format!("{what} for \"{name}\""), KEY_FLAGS)
}

/// A field the template fills in when its flag is not given.
fn template_value(template: &Template, field: &str) -> Option<&'static str> {
    match (template.auth, field) {
        (TemplateAuth::Header(h), "header_name") => Some(h),
        (TemplateAuth::AwsSigV4(s), "aws_service") => Some(s),
        _ => None,
    }
}

/// Reads every field the auth type needs — as its row of `AUTH_TABLE` says: flags,
/// prompts, files, the template's defaults — and builds its config entry.
/// Returns the auth and the (vault name, value) pairs to store.
fn build_auth(
    args: &AddArgs,
    name: &str,
    auth_type: &str,
    template: Option<&Template>,
) -> anyhow::Result<(Auth, SecretParts)> {
    let Some(ty) = airlock_config::auth_type(auth_type) else {
        bail!(
            "unknown auth type \"{}\"; expected one of: {}",
            auth_type.escape_debug(),
            AUTH_TYPES.join(", ")
        );
    };
    let f = &args.typed;
    let flag_of = |field: &str| ty.field(field).and_then(|f| f.flag?.long);
    let keys_given = args.key.key_stdin || args.key.key_from_env.is_some();
    let mut values = Vec::new();
    let mut secrets: SecretParts = Vec::new();
    for field in ty.fields {
        let Some(flag) = field.flag else { continue };
        // Fields set together: both flags or neither, checked before either is read.
        for (a, b) in ty.together.iter().filter(|(a, _)| *a == field.name) {
            let (fa, fb) = (flag_of(a).unwrap_or(a), flag_of(b).unwrap_or(b));
            if f.get(fa).is_some() != f.get(fb).is_some() {
                bail!("auth type \"{auth_type}\" needs both --{fa} and --{fb}, or neither");
            }
        }
        let long = flag.long.unwrap_or(field.name);
        let given = flag.long.and_then(|l| f.get(l));
        let missing =
            || anyhow::anyhow!("auth type \"{auth_type}\" needs --{long} ({})", flag.what);
        let value = if field.secret {
            let value = match flag.input {
                FlagInput::SecretEnv if given.is_none() && !field.required => continue,
                FlagInput::SecretEnv => part(given, flag.what, &format!("--{long}"))?,
                FlagInput::SecretFile { key_what, missing } => match f.path(long) {
                    Some(p) => file_part(p, flag.what)?,
                    None if keys_given => main_secret(args, name, None, key_what)?,
                    None => bail!(
                        "auth type \"{auth_type}\" needs --{long} {} ({missing})",
                        flag.value_name
                    ),
                },
                _ => main_secret(args, name, given, flag.what)?,
            };
            let vault_name = match field.vault_part() {
                None => name.to_string(),
                Some(part) => format!("{name}.{part}"),
            };
            secrets.push((vault_name.clone(), value));
            AuthValue::Text(vault_name)
        } else {
            match flag.input {
                FlagInput::List => match f.list(long) {
                    [] if field.required => return Err(missing()),
                    [] => continue,
                    list => AuthValue::List(list.to_vec()),
                },
                FlagInput::Number => match given {
                    Some(n) => AuthValue::Number(n.parse()?),
                    None if field.required => return Err(missing()),
                    None => continue,
                },
                _ => {
                    let given =
                        given.or_else(|| template.and_then(|t| template_value(t, field.name)));
                    let v = match given {
                        None if !field.required => continue,
                        given => need(given, auth_type, &format!("--{long}"), flag.what)?,
                    };
                    if let Some(check) = flag.check {
                        check(&v).map_err(anyhow::Error::msg)?;
                    }
                    AuthValue::Text(v)
                }
            }
        };
        values.push((field.name.to_string(), value));
    }
    let auth = Auth::from_values(ty.kind, values).map_err(anyhow::Error::msg)?;
    Ok((auth, secrets))
}

pub(crate) fn add(home: &Home, args: &AddArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    super::check_name("service", name)?;
    let template = match &args.template {
        Some(t) => Some(templates::find(t).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown template \"{}\"; see `airlock search`",
                t.escape_debug()
            )
        })?),
        None => templates::find(name),
    };
    let auth_type = args
        .auth
        .clone()
        .or_else(|| template.map(|t| t.auth.type_name().to_string()))
        .unwrap_or_else(|| "bearer".to_string());
    if !AUTH_TYPES.contains(&auth_type.as_str()) {
        bail!(
            "unknown auth type \"{}\"; expected one of: {}",
            auth_type.escape_debug(),
            AUTH_TYPES.join(", ")
        );
    }
    let url_arg = match (&args.url, template) {
        (Some(u), _) => u.clone(),
        (None, Some(t)) if t.url.contains("{region}") => {
            let region = need(args.typed.get("region"), &auth_type, "--region", "the AWS region, e.g. us-east-1")?;
            t.url.replace("{region}", &region)
        }
        (None, Some(t)) => t.url.to_string(),
        (None, None) => input::ask(&format!("base URL for \"{name}\" (e.g. https://api.example.com): "))?
            .ok_or_else(|| {
                anyhow::anyhow!("no URL given for \"{name}\"; add --url https://api.example.com (the API's base URL)")
            })?,
    };
    let url = airlock_config::check_service_url(&url_arg).map_err(anyhow::Error::msg)?;
    if url.scheme() == "http" && !is_loopback(&url) {
        output::warn(format_args!(
            "{} uses plain http: the credential would cross the network unencrypted; prefer https",
            url.host_str().unwrap_or_default()
        ));
    }

    // Read every secret before taking the lock: a prompt can wait on a person.
    let (auth, secrets) = build_auth(args, name, &auth_type, template)?;

    let (_lock, mut vault) = unlock::open_for_write(home, true)?;
    let mut doc = ConfigDoc::load(home)?;
    doc.add_service(name, url_arg.trim_end_matches('/'), &auth)?;
    // The capability DESIGN §3 promises (NAME, the template's rules, ttl 1h), so
    // `add` then `mcp-config` gives an agent access; `--no-cap` leaves the service
    // without one, so a narrower capability the owner adds next is the only access
    // there is. Either way the last line says exactly what was granted.
    let cap_name = if args.no_cap {
        None
    } else {
        Some(match args.cap.as_deref() {
            None | Some("") => name,
            Some(c) => c,
        })
    };
    let spec = cap_name.map(|_| CapabilitySpec {
        service: name.to_string(),
        ttl: Some("1h".into()),
        allow: template
            .map(|t| t.allow.iter().map(|r| (*r).to_string()).collect())
            .unwrap_or_default(),
        deny: template
            .map(|t| t.deny.iter().map(|r| (*r).to_string()).collect())
            .unwrap_or_default(),
        agents: args.agents.clone(),
        ..Default::default()
    });
    if let (Some(cap), Some(spec)) = (cap_name, &spec) {
        super::check_name("capability", cap)?;
        doc.add_capability(cap, spec)?;
    }
    doc.config()?;
    if let Some((taken, _)) = secrets.iter().find(|(s, _)| vault.contains(s)) {
        // The service is new, so its key's name is free unless an interrupted
        // `add` (vault written, config not) or `secret set` took it.
        bail!(
            "a secret named \"{taken}\" is already in the vault, though no service \"{name}\" exists (left by an interrupted `airlock add`, or set with `airlock secret set`): run `airlock secret rm {taken}` and add again, or choose another service name"
        );
    }
    for (secret_name, value) in &secrets {
        vault.insert(secret_name, value)?;
    }

    // Vault first, then config. Should the config write fail, take the secrets
    // back out so the command leaves both as they were.
    vault.save(home)?;
    if let Err(e) = doc.save() {
        for (secret_name, _) in &secrets {
            vault.remove(secret_name)?;
        }
        vault.save(home)?;
        return Err(e.into());
    }
    let default_access = doc.config()?.server.default_access;
    output::line(format_args!(
        "added service \"{name}\" ({}, {auth_type}); {} secret(s) in the vault",
        display_url(&url),
        secrets.len()
    ));
    match (cap_name, &spec) {
        (Some(cap), Some(spec)) => output::line(granted(cap, spec, default_access)),
        _ => output::line(format_args!(
            "granted: nothing (--no-cap); agents cannot use \"{name}\" until you add a capability: `airlock cap add NAME --service {name} --allow 'GET /**' --agents AGENT` (see `airlock cap add --help`)"
        )),
    }
    Ok(())
}

/// The one line that says what a new capability lets agents do: its name, rules,
/// agents and ttl.
fn granted(
    cap: &str,
    spec: &CapabilitySpec,
    default_access: airlock_config::DefaultAccess,
) -> String {
    let allow = if spec.allow.is_empty() {
        "every method and path".to_string()
    } else {
        spec.allow.join(", ")
    };
    let deny = if spec.deny.is_empty() {
        String::new()
    } else {
        format!("; deny {}", spec.deny.join(", "))
    };
    let agents = match (&spec.agents, default_access) {
        (Some(a), _) => format!("agents {}", a.join(", ")),
        (None, airlock_config::DefaultAccess::Restricted) => {
            "no agent (default_access is \"restricted\" and it has no agents list)".to_string()
        }
        (None, _) => "every agent (no agents list)".to_string(),
    };
    format!(
        "granted: capability \"{cap}\": allow {allow}{deny}; {agents}; ttl {}",
        spec.ttl.as_deref().unwrap_or("1h")
    )
}

pub(crate) fn search(args: &SearchArgs) -> anyhow::Result<()> {
    output::list(
        args.json,
        &templates::search(args.query.as_deref()),
        |t| json!({"name": t.name, "description": t.description, "url": t.url, "auth": t.auth.type_name(), "allow": t.allow, "deny": t.deny}),
        &["TEMPLATE", "AUTH", "URL", "WHAT"],
        |t| {
            vec![
                t.name.to_string(),
                t.auth.type_name().to_string(),
                t.url.to_string(),
                t.description.to_string(),
            ]
        },
        "no template matches; `airlock add NAME --url URL --auth TYPE` works for any API",
    )
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
