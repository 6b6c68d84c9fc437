//! One module per command group.

pub(crate) mod audit;
pub(crate) mod cap;
pub(crate) mod doctor;
pub(crate) mod import;
pub(crate) mod incident;
pub(crate) mod init;
pub(crate) mod learn;
pub(crate) mod mcp_config;
pub(crate) mod migrate;
pub(crate) mod policy;
pub(crate) mod run;
pub(crate) mod run_proxy;
pub(crate) mod secret;
pub(crate) mod serve;
pub(crate) mod service;
pub(crate) mod sessions;
pub(crate) mod team;
pub(crate) mod token;
pub(crate) mod ui;
pub(crate) mod wrap;

/// Refuses a service, capability or agent `name` that is not a valid name: the
/// error says which `kind` of name, shows it escaped, and states the rule.
pub(crate) fn check_name(kind: &str, name: &str) -> anyhow::Result<()> {
    if !airlock_home::is_valid_name(name) {
        anyhow::bail!(
            "invalid {kind} name \"{}\": {}",
            name.escape_debug(),
            airlock_home::NAME_RULE
        );
    }
    Ok(())
}

/// The home's audit log, opened with the vault's audit key.
pub(crate) fn open_audit(
    home: &airlock_home::Home,
    vault: &airlock_vault::Vault,
) -> Result<airlock_audit::AuditLog, airlock_audit::AuditError> {
    airlock_audit::AuditLog::open_home(home, vault.audit_key(), airlock_audit::Options::default())
}

/// Formats a duration the way the config writes it ("1h", "90m" → "1h30m").
pub(crate) fn human_duration(d: std::time::Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    out
}
