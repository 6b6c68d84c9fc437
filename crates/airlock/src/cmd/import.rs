//! `airlock import janee [PATH]`: brings a Janee setup over — services, their
//! secrets (decrypted with Janee's own master key), capabilities and rules.
//! Nothing is overwritten, and the Janee home is left untouched.

use airlock_config::ConfigDoc;
use airlock_home::Home;
use anyhow::bail;
use secrecy::ExposeSecret;

use crate::cli::ImportArgs;
use crate::{output, unlock};

pub(crate) fn run(home: &Home, args: &ImportArgs) -> anyhow::Result<()> {
    if args.source != "janee" {
        bail!(
            "unknown import source \"{}\"; supported: janee",
            args.source.escape_debug()
        );
    }
    let dir = match &args.path {
        Some(p) => p.clone(),
        None => airlock_import::default_janee_dir().ok_or_else(|| {
            anyhow::anyhow!("cannot find Janee's home; give its path: airlock import janee PATH")
        })?,
    };
    let plan = airlock_import::read_janee(&dir)?;

    let (_lock, mut vault) = unlock::open_for_write(home, true)?;
    let mut doc = ConfigDoc::load(home)?;
    // Refuse before writing anything if a name is taken: nothing is overwritten.
    let mut clashes = Vec::new();
    for s in &plan.services {
        if doc.has_service(&s.name) {
            clashes.push(format!("service \"{}\"", s.name));
        }
        for (name, _) in &s.secrets {
            if vault.contains(name) {
                clashes.push(format!("secret \"{name}\""));
            }
        }
    }
    for c in &plan.capabilities {
        if doc.has_capability(&c.name) {
            clashes.push(format!("capability \"{}\"", c.name));
        }
    }
    for s in &plan.unmapped_secrets {
        if vault.contains(&s.name) {
            clashes.push(format!("secret \"{}\"", s.name));
        }
    }
    if !clashes.is_empty() {
        bail!(
            "these already exist in airlock: {}; remove them (or import into another AIRLOCK_HOME) and retry — nothing was changed",
            clashes.join(", ")
        );
    }
    for s in &plan.services {
        doc.add_service(&s.name, &s.url, &s.auth)?;
    }
    for c in &plan.capabilities {
        doc.add_capability(&c.name, &c.to_spec())?;
    }
    doc.config()?;
    let mut stored = 0;
    for s in &plan.services {
        for (name, value) in &s.secrets {
            vault.insert(name, value.expose_secret())?;
            stored += 1;
        }
    }
    for s in &plan.unmapped_secrets {
        vault.insert(&s.name, s.value.expose_secret())?;
        stored += 1;
    }
    // Vault first: airlock.toml never names a secret that is not stored.
    vault.save(home)?;
    doc.save()?;

    output::line(format_args!(
        "imported from {}: {} service(s), {} capability(ies), {} secret(s)",
        plan.config_path.display(),
        plan.services.len(),
        plan.capabilities.len(),
        stored
    ));
    for s in &plan.services {
        output::line(format_args!(
            "  service {} ({}) ← janee {}",
            s.name,
            s.auth.type_name(),
            s.janee_name
        ));
    }
    for c in &plan.capabilities {
        output::line(format_args!(
            "  capability {} ← janee {}",
            c.name, c.janee_name
        ));
    }
    for s in &plan.unmapped_secrets {
        output::line(format_args!(
            "  secret {} (kept; no airlock auth type for janee {})",
            s.name, s.janee_entry
        ));
    }
    for w in &plan.warnings {
        output::warn(w);
    }
    output::note(format_args!(
        "{} was left as it is; stop Janee and remove it once airlock serves your agents (`airlock mcp-config CLIENT`)",
        dir.display()
    ));
    Ok(())
}
