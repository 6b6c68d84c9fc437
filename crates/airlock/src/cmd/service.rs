//! `airlock add`, `remove` and `list`: services with their secret, and with
//! a first capability (NAME, the template's rules, ttl 1h; `--no-cap` for none).

use airlock_config::{AUTH_TYPES, Auth, CapabilitySpec, Config, ConfigDoc};
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

/// Reads every secret part the auth type needs and builds its config entry.
/// Returns the auth and the (vault name, value) pairs to store.
fn build_auth(
    args: &AddArgs,
    name: &str,
    auth_type: &str,
    template: Option<&Template>,
) -> anyhow::Result<(Auth, SecretParts)> {
    let f = &args.typed;
    let sub = |part: &str| format!("{name}.{part}");
    Ok(match auth_type {
        "bearer" => (
            Auth::Bearer {
                secret: name.into(),
            },
            vec![(name.into(), main_secret(args, name, None, "key")?)],
        ),
        "basic" => {
            let username = need(
                f.username.as_deref(),
                auth_type,
                "--username",
                "the username",
            )?;
            let pw = main_secret(args, name, f.password_from_env.as_deref(), "password")?;
            (
                Auth::Basic {
                    username,
                    secret: name.into(),
                },
                vec![(name.into(), pw)],
            )
        }
        "header" => {
            let from_template = template.and_then(|t| match t.auth {
                TemplateAuth::Header(h) => Some(h),
                _ => None,
            });
            let header_name = need(
                f.header_name.as_deref().or(from_template),
                auth_type,
                "--header-name",
                "the header that carries the key, e.g. X-Api-Key",
            )?;
            let prefix = f.prefix.clone().unwrap_or_default();
            (
                Auth::Header {
                    header_name,
                    prefix,
                    secret: name.into(),
                },
                vec![(name.into(), main_secret(args, name, None, "key")?)],
            )
        }
        "query" => {
            let param = need(
                f.param.as_deref(),
                auth_type,
                "--param",
                "the query parameter that carries the key, e.g. api_key",
            )?;
            (
                Auth::Query {
                    param,
                    secret: name.into(),
                },
                vec![(name.into(), main_secret(args, name, None, "key")?)],
            )
        }
        "aws-sigv4" => {
            let region = need(
                f.region.as_deref(),
                auth_type,
                "--region",
                "the AWS region, e.g. us-east-1",
            )?;
            let from_template = template.and_then(|t| match t.auth {
                TemplateAuth::AwsSigV4(s) => Some(s),
                _ => None,
            });
            let aws_service = need(
                f.aws_service.as_deref().or(from_template),
                auth_type,
                "--aws-service",
                "the AWS service name, e.g. s3",
            )?;
            let mut secrets = vec![
                (
                    sub("access_key_id"),
                    part(
                        f.access_key_id_from_env.as_deref(),
                        "AWS access key id",
                        "--access-key-id-from-env",
                    )?,
                ),
                (
                    sub("secret_access_key"),
                    part(
                        f.secret_access_key_from_env.as_deref(),
                        "AWS secret access key",
                        "--secret-access-key-from-env",
                    )?,
                ),
            ];
            let session_token = match f.session_token_from_env.as_deref() {
                Some(var) => {
                    secrets.push((
                        sub("session_token"),
                        part(Some(var), "AWS session token", "--session-token-from-env")?,
                    ));
                    Some(sub("session_token"))
                }
                None => None,
            };
            (
                Auth::AwsSigV4 {
                    region,
                    aws_service,
                    access_key_id: sub("access_key_id"),
                    secret_access_key: sub("secret_access_key"),
                    session_token,
                },
                secrets,
            )
        }
        "oauth1" => {
            let mut secrets = vec![
                (
                    sub("consumer_key"),
                    part(
                        f.consumer_key_from_env.as_deref(),
                        "OAuth consumer key",
                        "--consumer-key-from-env",
                    )?,
                ),
                (
                    sub("consumer_secret"),
                    part(
                        f.consumer_secret_from_env.as_deref(),
                        "OAuth consumer secret",
                        "--consumer-secret-from-env",
                    )?,
                ),
            ];
            let (token, token_secret) = match (
                f.token_from_env.as_deref(),
                f.token_secret_from_env.as_deref(),
            ) {
                (Some(t), Some(ts)) => {
                    secrets.push((
                        sub("token"),
                        part(Some(t), "OAuth access token", "--token-from-env")?,
                    ));
                    secrets.push((
                        sub("token_secret"),
                        part(Some(ts), "OAuth token secret", "--token-secret-from-env")?,
                    ));
                    (Some(sub("token")), Some(sub("token_secret")))
                }
                (None, None) => (None, None),
                _ => bail!(
                    "auth type \"oauth1\" needs both --token-from-env and --token-secret-from-env, or neither"
                ),
            };
            (
                Auth::OAuth1 {
                    consumer_key: sub("consumer_key"),
                    consumer_secret: sub("consumer_secret"),
                    token,
                    token_secret,
                },
                secrets,
            )
        }
        "github-app" => {
            let app_id = need(
                f.app_id.as_deref(),
                auth_type,
                "--app-id",
                "the GitHub App id",
            )?;
            let Some(installation_id) = f.installation_id else {
                bail!(
                    "auth type \"github-app\" needs --installation-id (the App installation's numeric id)"
                );
            };
            let pem = match &f.pem_file {
                Some(p) => file_part(p, "GitHub App private key (PEM)")?,
                None if args.key.key_stdin || args.key.key_from_env.is_some() => {
                    main_secret(args, name, None, "private key (PEM)")?
                }
                None => {
                    bail!("auth type \"github-app\" needs --pem-file FILE (the App's private key)")
                }
            };
            (
                Auth::GitHubApp {
                    app_id,
                    installation_id,
                    secret: name.into(),
                },
                vec![(name.into(), pem)],
            )
        }
        "gcp-service-account" => {
            let json = match &f.json_file {
                Some(p) => file_part(p, "service-account key JSON")?,
                None if args.key.key_stdin || args.key.key_from_env.is_some() => {
                    main_secret(args, name, None, "service-account key JSON")?
                }
                None => bail!(
                    "auth type \"gcp-service-account\" needs --json-file FILE (the service-account key)"
                ),
            };
            if f.scopes.is_empty() {
                bail!(
                    "auth type \"gcp-service-account\" needs --scopes (e.g. https://www.googleapis.com/auth/cloud-platform)"
                );
            }
            (
                Auth::GcpServiceAccount {
                    secret: name.into(),
                    scopes: f.scopes.clone(),
                },
                vec![(name.into(), json)],
            )
        }
        "oauth2" => {
            let token_url = need(
                f.token_url.as_deref(),
                auth_type,
                "--token-url",
                "the token endpoint URL",
            )?;
            let token_url =
                airlock_config::check_token_url(&token_url).map_err(anyhow::Error::msg)?;
            let client_id = need(
                f.client_id.as_deref(),
                auth_type,
                "--client-id",
                "the OAuth client id",
            )?;
            let secret = main_secret(
                args,
                name,
                f.client_secret_from_env.as_deref(),
                "client secret",
            )?;
            (
                Auth::OAuth2 {
                    token_url,
                    client_id,
                    secret: name.into(),
                    scope: f.scope.clone(),
                    client_auth: airlock_config::ClientAuth::default(),
                },
                vec![(name.into(), secret)],
            )
        }
        other => bail!(
            "unknown auth type \"{}\"; expected one of: {}",
            other.escape_debug(),
            AUTH_TYPES.join(", ")
        ),
    })
}

pub(crate) fn add(home: &Home, args: &AddArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    if !airlock_home::is_valid_name(name) {
        bail!(
            "invalid service name \"{}\": {}",
            name.escape_debug(),
            airlock_home::NAME_RULE
        );
    }
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
            let region = need(args.typed.region.as_deref(), &auth_type, "--region", "the AWS region, e.g. us-east-1")?;
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
        if !airlock_home::is_valid_name(cap) {
            bail!(
                "invalid capability name \"{}\": {}",
                cap.escape_debug(),
                airlock_home::NAME_RULE
            );
        }
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
    let found = templates::search(args.query.as_deref());
    if args.json {
        let v: Vec<_> = found
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "url": t.url, "auth": t.auth.type_name(), "allow": t.allow, "deny": t.deny}))
            .collect();
        return output::json(&v);
    }
    let rows = found
        .iter()
        .map(|t| {
            vec![
                t.name.to_string(),
                t.auth.type_name().to_string(),
                t.url.to_string(),
                t.description.to_string(),
            ]
        })
        .collect();
    output::table(
        &["TEMPLATE", "AUTH", "URL", "WHAT"],
        rows,
        "no template matches; `airlock add NAME --url URL --auth TYPE` works for any API",
    );
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
