//! The one place that writes to the terminal. stdout carries results (tables or
//! JSON); stderr carries warnings, notes and errors. Nothing here ever receives a
//! secret value: callers pass names, fingerprints and metadata only.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

/// Prints a result line on stdout.
pub(crate) fn line(s: impl std::fmt::Display) {
    println!("{s}");
}

/// Prints a value as pretty JSON on stdout.
pub(crate) fn json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Prints a table on stdout, or `empty` when there are no rows.
pub(crate) fn table(header: &[&str], rows: Vec<Vec<String>>, empty: &str) {
    if rows.is_empty() {
        println!("{empty}");
        return;
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    for r in rows {
        t.add_row(r);
    }
    println!("{t}");
}

/// A note for the person at the terminal (stderr).
pub(crate) fn note(s: impl std::fmt::Display) {
    eprintln!("{s}");
}

/// A warning (stderr).
pub(crate) fn warn(s: impl std::fmt::Display) {
    eprintln!("warning: {s}");
}

/// The one-line error for a failed command (stderr).
pub(crate) fn error(s: impl std::fmt::Display) {
    eprintln!("error: {s}");
}

/// Writes a prompt on stderr without a newline.
pub(crate) fn prompt(s: &str) {
    use std::io::Write;
    eprint!("{s}");
    let _ = std::io::stderr().flush();
}
