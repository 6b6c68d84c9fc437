//! Comment-preserving edits of `airlock.toml` for the CLI.

use std::path::PathBuf;

use airlock_home::Home;
use toml_edit::{Array, DocumentMut, Item, Table, Value};

use crate::{Config, ConfigError};

/// The file `airlock init` writes: settings with the why next to them.
pub const TEMPLATE: &str = r#"# airlock configuration. No secret value ever lives in this file: services name a
# vault secret instead, so it is safe to review and commit. Reference: docs/config.md

[server]
# "open": every agent sees every capability that has no `agents` list.
# "restricted": capabilities without `agents` are hidden from all agents.
default_access = "open"
"#;

/// A capability to add, as given on the command line (validated when the edited
/// document is re-parsed).
#[derive(Debug, Clone, Default)]
pub struct CapabilitySpec {
    /// The service it uses.
    pub service: String,
    /// Session TTL, e.g. "1h".
    pub ttl: Option<String>,
    /// Allow rules.
    pub allow: Vec<String>,
    /// Deny rules.
    pub deny: Vec<String>,
    /// Trusted agents allowed to use it.
    pub agents: Option<Vec<String>>,
    /// Whether every request needs a reason.
    pub requires_reason: bool,
    /// Whether every request needs human approval.
    pub approval: bool,
    /// Rate limit, e.g. "60/min".
    pub rate: Option<String>,
    /// Learning mode until then (`learn_until`, RFC 3339).
    pub learn_until: Option<String>,
}

impl CapabilitySpec {
    /// The `[capabilities.NAME]` table: the keys that are set, in the order
    /// `airlock.toml` documents them (service, ttl, allow, deny, agents,
    /// requires_reason, approval, rate, learn_until).
    pub fn to_table(&self) -> Table {
        let mut t = Table::new();
        t.insert("service", toml_edit::value(&self.service));
        if let Some(ttl) = &self.ttl {
            t.insert("ttl", toml_edit::value(ttl));
        }
        if !self.allow.is_empty() {
            t.insert("allow", string_array(&self.allow));
        }
        if !self.deny.is_empty() {
            t.insert("deny", string_array(&self.deny));
        }
        if let Some(agents) = &self.agents {
            t.insert("agents", string_array(agents));
        }
        if self.requires_reason {
            t.insert("requires_reason", toml_edit::value(true));
        }
        if self.approval {
            t.insert("approval", toml_edit::value(true));
        }
        if let Some(rate) = &self.rate {
            t.insert("rate", toml_edit::value(rate));
        }
        if let Some(until) = &self.learn_until {
            t.insert("learn_until", toml_edit::value(until));
        }
        t
    }
}

/// The exec part of a capability (`airlock cap add --mode exec`), as given on
/// the command line (validated when the edited document is re-parsed and the
/// capability compiled).
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    /// Allowed programs (`commands`).
    pub commands: Vec<String>,
    /// `env` entries, `{{secret}}` standing for the service's secret.
    pub env: Vec<(String, String)>,
    /// `workdirs`.
    pub workdirs: Vec<String>,
    /// `confine = false` when false.
    pub confine: bool,
    /// `network`, when given.
    pub network: Option<String>,
    /// `inject`, when given.
    pub inject: Option<String>,
}

/// `airlock.toml` as an editable document that keeps the user's comments, order
/// and formatting.
#[derive(Debug)]
pub struct ConfigDoc {
    path: PathBuf,
    doc: DocumentMut,
}

impl ConfigDoc {
    /// Loads the home's config (the template if there is none yet). The text must
    /// already be a valid config: the CLI never edits a file it cannot understand.
    pub fn load(home: &Home) -> Result<ConfigDoc, ConfigError> {
        let path = home.config_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => TEMPLATE.to_string(),
            Err(e) => return Err(airlock_home::HomeError::io("cannot read", &path, e).into()),
        };
        Config::parse(&path, &text)?;
        let doc = text.parse::<DocumentMut>().map_err(|e| {
            // Config::parse accepted it, so toml_edit should too; report it plainly if not.
            ConfigError::Edit(format!("{}: {e}", path.display()))
        })?;
        Ok(ConfigDoc { path, doc })
    }

    /// The validated configuration this document describes.
    pub fn config(&self) -> Result<Config, ConfigError> {
        Config::parse(&self.path, &self.doc.to_string())
    }

    /// Writes the document atomically after validating it. The caller holds the
    /// home lock.
    pub fn save(&self) -> Result<Config, ConfigError> {
        let text = self.doc.to_string();
        let config = Config::parse(&self.path, &text)?;
        airlock_home::write_atomic(&self.path, text.as_bytes())?;
        Ok(config)
    }

    /// The text as it would be saved.
    pub fn to_text(&self) -> String {
        self.doc.to_string()
    }

    fn section(&mut self, key: &str) -> &mut Table {
        let item = self.doc.entry(key).or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        if !item.is_table() {
            // An inline `services = {}` — normalize to a table we can add to.
            let replaced = std::mem::take(item)
                .into_table()
                .unwrap_or_else(|_| Table::new());
            *item = Item::Table(replaced);
        }
        #[allow(clippy::expect_used)]
        item.as_table_mut().expect("just made a table")
    }

    /// Whether a service of this name exists.
    pub fn has_service(&self, name: &str) -> bool {
        self.doc.get("services").and_then(|s| s.get(name)).is_some()
    }

    /// Whether a capability of this name exists.
    pub fn has_capability(&self, name: &str) -> bool {
        self.doc
            .get("capabilities")
            .and_then(|s| s.get(name))
            .is_some()
    }

    /// Adds `[services.NAME]` with `auth` written as an inline table.
    pub fn add_service(
        &mut self,
        name: &str,
        url: &str,
        auth: &crate::Auth,
    ) -> Result<(), ConfigError> {
        if self.has_service(name) {
            return Err(ConfigError::Edit(format!(
                "a service named \"{name}\" already exists; pick another name or `airlock remove {name}` first"
            )));
        }
        let mut t = Table::new();
        t.insert("url", toml_edit::value(url));
        t.insert(
            "auth",
            Item::Value(Value::InlineTable(auth.to_inline_table())),
        );
        self.section("services").insert(name, Item::Table(t));
        Ok(())
    }

    /// Adds `[capabilities.NAME]`.
    pub fn add_capability(&mut self, name: &str, spec: &CapabilitySpec) -> Result<(), ConfigError> {
        if self.has_capability(name) {
            return Err(ConfigError::Edit(format!(
                "a capability named \"{name}\" already exists; pick another name or `airlock cap remove {name}` first"
            )));
        }
        self.section("capabilities")
            .insert(name, Item::Table(spec.to_table()));
        Ok(())
    }

    /// Ends learning for `[capabilities.NAME]`: its `allow` rules become
    /// `allow` (replacing any there were) and `learn_until` is removed; the
    /// rest of the file stays as it is.
    pub fn apply_learned(&mut self, name: &str, allow: &[String]) -> Result<(), ConfigError> {
        let t = self.capability_table(name)?;
        t.insert("allow", string_array(allow));
        t.remove("learn_until");
        Ok(())
    }

    /// `[capabilities.NAME]` as a table to edit.
    fn capability_table(&mut self, name: &str) -> Result<&mut Table, ConfigError> {
        self.doc
            .get_mut("capabilities")
            .and_then(|c| c.get_mut(name))
            .and_then(Item::as_table_mut)
            .ok_or_else(|| {
                ConfigError::Edit(format!(
                    "capability \"{name}\" is not in the file; add it first"
                ))
            })
    }

    /// Makes `[capabilities.NAME]` (added with [`ConfigDoc::add_capability`])
    /// an exec capability: `mode = "exec"`, `commands`, `env` (an inline table),
    /// `workdirs`, and `confine`/`network` when they differ from the defaults.
    pub fn set_exec(&mut self, name: &str, spec: &ExecSpec) -> Result<(), ConfigError> {
        let t = self.capability_table(name)?;
        t.insert("mode", toml_edit::value("exec"));
        t.insert("commands", string_array(&spec.commands));
        if !spec.env.is_empty() {
            let mut env = toml_edit::InlineTable::new();
            for (k, v) in &spec.env {
                env.insert(k, v.as_str().into());
            }
            t.insert("env", Item::Value(Value::InlineTable(env)));
        }
        if !spec.workdirs.is_empty() {
            t.insert("workdirs", string_array(&spec.workdirs));
        }
        if !spec.confine {
            t.insert("confine", toml_edit::value(false));
        }
        if let Some(n) = &spec.network {
            t.insert("network", toml_edit::value(n));
        }
        if let Some(i) = &spec.inject {
            t.insert("inject", toml_edit::value(i));
        }
        Ok(())
    }

    /// Removes `[services.NAME]`; returns whether it existed.
    pub fn remove_service(&mut self, name: &str) -> bool {
        self.remove_entry("services", name)
    }

    /// Removes `[capabilities.NAME]`; returns whether it existed.
    pub fn remove_capability(&mut self, name: &str) -> bool {
        self.remove_entry("capabilities", name)
    }

    /// Removes `[TABLE.NAME]`; returns whether it existed.
    fn remove_entry(&mut self, table: &str, name: &str) -> bool {
        self.doc
            .get_mut(table)
            .and_then(Item::as_table_like_mut)
            .and_then(|t| t.remove(name))
            .is_some()
    }
}

/// A TOML array of strings, as a value to insert.
fn string_array(items: &[String]) -> Item {
    let mut a = Array::new();
    for i in items {
        a.push(i.as_str());
    }
    toml_edit::value(a)
}
