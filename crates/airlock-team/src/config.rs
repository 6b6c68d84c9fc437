//! Services and capabilities shared as admin-signed rows (`airlock.config`).
//!
//! A row's body is one `[services.NAME]` or `[capabilities.NAME]` table of
//! `airlock.toml`, as a standalone TOML document (an empty body: removed). An admin
//! publishes them with `airlock team push-config`; every device verifies the
//! admin's signature over (team, kind, name, version, body, author) and writes the
//! table into its own `airlock.toml` (comments elsewhere in the file kept), where
//! every running server of the home already reloads it. The whole file is
//! re-validated before it is written: a device never saves a configuration it
//! would refuse to load.

use airlock_config::Config;
use airlock_home::Home;
use toml_edit::{DocumentMut, Item, Table};

use crate::{Result, TeamError};

/// The row kinds and the `airlock.toml` section each lives in.
pub(crate) const KINDS: [(&str, &str); 2] =
    [("service", "services"), ("capability", "capabilities")];

/// The section (`services`, `capabilities`) of a row kind.
pub(crate) fn section(kind: &str) -> Option<&'static str> {
    KINDS.iter().find(|(k, _)| *k == kind).map(|(_, s)| *s)
}

fn parse_doc(home: &Home, text: &str) -> Result<DocumentMut> {
    let path = home.config_path();
    Config::parse(&path, text)?;
    text.parse::<DocumentMut>().map_err(|e| TeamError::Local {
        path,
        detail: e.to_string(),
    })
}

/// This home's `airlock.toml` text (empty when there is none).
pub(crate) fn read_local(home: &Home) -> Result<String> {
    let path = home.config_path();
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(airlock_home::HomeError::io("cannot read", &path, e).into()),
    }
}

/// Every service and capability of a (valid) `airlock.toml` text, as rows:
/// (kind, name, body).
pub(crate) fn entries(home: &Home, text: &str) -> Result<Vec<(String, String, String)>> {
    let doc = parse_doc(home, text)?;
    let mut out = Vec::new();
    for (kind, sec) in KINDS {
        let Some(table) = doc.get(sec).and_then(Item::as_table_like) else {
            continue;
        };
        for (name, item) in table.iter() {
            out.push((kind.to_string(), name.to_string(), body_of(sec, name, item)));
        }
    }
    Ok(out)
}

/// One table as a standalone document: `[section.name]` and its keys.
fn body_of(sec: &str, name: &str, item: &Item) -> String {
    let mut table = item.clone().into_table().unwrap_or_default();
    table.decor_mut().clear();
    table.set_implicit(false);
    let mut outer = Table::new();
    outer.set_implicit(true);
    outer.insert(name, Item::Table(table));
    let mut doc = DocumentMut::new();
    doc.insert(sec, Item::Table(outer));
    doc.to_string()
}

/// The one table a row's body holds, checked to be exactly `[section.name]`.
pub(crate) fn table_of(sec: &str, name: &str, body: &str) -> Option<Item> {
    let doc = body.parse::<DocumentMut>().ok()?;
    if doc.len() != 1 {
        return None;
    }
    let outer = doc.get(sec)?.as_table_like()?;
    if outer.len() != 1 {
        return None;
    }
    outer.get(name).cloned()
}

/// Writes verified rows into this home's `airlock.toml` (the caller holds the
/// home lock): each (kind, name, body) replaces that table, an empty body removes
/// it. The result is validated as a whole before it replaces the file.
pub(crate) fn apply(home: &Home, rows: &[(String, String, String)]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let text = read_local(home)?;
    let text = if text.trim().is_empty() {
        airlock_config::TEMPLATE.to_string()
    } else {
        text
    };
    let mut doc = parse_doc(home, &text)?;
    for (kind, name, body) in rows {
        let sec = section(kind).ok_or_else(|| TeamError::Crypto(format!("kind {kind}")))?;
        let entry = doc.entry(sec).or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        let Some(table) = entry.as_table_like_mut() else {
            return Err(TeamError::Local {
                path: home.config_path(),
                detail: format!("`{sec}` is not a table"),
            });
        };
        if body.is_empty() {
            table.remove(name);
        } else if let Some(item) = table_of(sec, name, body) {
            table.insert(name, item);
        }
    }
    let new = doc.to_string();
    Config::parse(&home.config_path(), &new)?;
    airlock_home::write_atomic(&home.config_path(), new.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_exactly_one_named_table() {
        let body = "[services.echo]\nurl = \"http://127.0.0.1:1\"\n";
        assert!(table_of("services", "echo", body).is_some());
        assert!(table_of("services", "other", body).is_none());
        assert!(table_of("capabilities", "echo", body).is_none());
        let two = format!("{body}[services.more]\nurl = \"http://127.0.0.1:2\"\n");
        assert!(table_of("services", "echo", &two).is_none());
        let extra = format!("{body}[server]\ndefault_access = \"open\"\n");
        assert!(table_of("services", "echo", &extra).is_none());
    }
}
