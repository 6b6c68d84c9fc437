//! The one place that writes to the terminal. stdout carries results (tables or
//! JSON); stderr carries warnings, notes and errors. Nothing here ever receives a
//! secret value: callers pass names, fingerprints and metadata only.
//!
//! A closed stdout (`airlock list | head -1`) ends the process quietly with exit
//! 0, as ripgrep does: the reader has what it wanted. A closed stderr is ignored.

use std::io::Write;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

/// Writes `s` and a newline on stdout. A broken pipe exits 0 at once, without a
/// message; any other write error is the one-line error, exit 2.
fn out(s: impl std::fmt::Display) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = writeln!(o, "{s}").and_then(|()| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        error(format_args!("cannot write to standard output: {e}"));
        std::process::exit(2);
    }
}

/// Writes `s` on stderr; errors (a closed stderr) are ignored.
fn err(s: impl std::fmt::Display) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{s}");
}

/// Whether an error's cause chain is a broken pipe on our output: the reader went
/// away, which ends a command quietly with exit 0.
pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(
                c.downcast_ref::<airlock_scan::ScanError>(),
                Some(airlock_scan::ScanError::Output(io)) if io.kind() == std::io::ErrorKind::BrokenPipe
            )
    })
}

/// Prints a result line on stdout.
pub(crate) fn line(s: impl std::fmt::Display) {
    out(s);
}

/// Prints a value as pretty JSON on stdout.
pub(crate) fn json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    out(serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Prints a table on stdout, or `empty` when there are no rows.
pub(crate) fn table(header: &[&str], rows: Vec<Vec<String>>, empty: &str) {
    if rows.is_empty() {
        out(empty);
        return;
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    for r in rows {
        t.add_row(r);
    }
    out(t);
}

/// Prints `items` for scripts or for people: with `json`, a JSON array of
/// `to_json` of each; otherwise a [`table`] under `header`, a `to_row` of each
/// (`empty` when there are none).
pub(crate) fn list<T>(
    json: bool,
    items: &[T],
    to_json: impl Fn(&T) -> serde_json::Value,
    header: &[&str],
    to_row: impl Fn(&T) -> Vec<String>,
    empty: &str,
) -> anyhow::Result<()> {
    if json {
        return self::json(&items.iter().map(to_json).collect::<Vec<_>>());
    }
    table(header, items.iter().map(to_row).collect(), empty);
    Ok(())
}

/// A note for the person at the terminal (stderr).
pub(crate) fn note(s: impl std::fmt::Display) {
    err(s);
}

/// A warning (stderr).
pub(crate) fn warn(s: impl std::fmt::Display) {
    err(format_args!("warning: {s}"));
}

/// The one-line error for a failed command (stderr).
pub(crate) fn error(s: impl std::fmt::Display) {
    err(format_args!("error: {s}"));
}

/// Writes a prompt on stderr without a newline.
pub(crate) fn prompt(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = write!(e, "{s}");
    let _ = e.flush();
}
