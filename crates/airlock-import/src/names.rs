//! Janee names (any YAML key) → airlock names (`airlock_home::is_valid_name`).

use std::collections::BTreeSet;

use airlock_home::is_valid_name;

const MAX: usize = 64;

/// The airlock name closest to `raw`: characters outside `A-Z a-z 0-9 _ . -` become
/// `-`, runs of `-` collapse, leading characters that are not a letter or digit and
/// trailing `-` go, and the result is cut to 64 characters. Never empty.
pub(crate) fn sanitize(raw: &str) -> String {
    if is_valid_name(raw) {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            c
        } else {
            '-'
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    let start = out
        .find(|c: char| c.is_ascii_alphanumeric())
        .unwrap_or(out.len());
    let mut out = out[start..].to_string();
    out.truncate(MAX);
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("imported");
    }
    out
}

/// `base`, or `base-2`, `base-3`… — the first not in `taken` (which it joins).
pub(crate) fn unique(base: &str, taken: &mut BTreeSet<String>) -> String {
    let mut n = 1usize;
    loop {
        let candidate = if n == 1 {
            base.to_string()
        } else {
            let suffix = format!("-{n}");
            let mut b = base.to_string();
            b.truncate(MAX - suffix.len());
            format!("{b}{suffix}")
        };
        if !taken.contains(&candidate) {
            taken.insert(candidate.clone());
            return candidate;
        }
        n += 1;
    }
}

/// The vault name of one part of a service's credential: `service` itself, or
/// `service.part` (the convention `airlock add` uses), cut to fit 64 characters.
pub(crate) fn secret_name(service: &str, part: Option<&str>) -> String {
    match part {
        None => service.to_string(),
        Some(part) => {
            let part = sanitize(part);
            let mut svc = service.to_string();
            svc.truncate(MAX.saturating_sub(part.len() + 1).max(1));
            format!("{svc}.{part}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes() {
        assert_eq!(sanitize("stripe"), "stripe");
        assert_eq!(sanitize("my service/prod"), "my-service-prod");
        assert_eq!(sanitize("_hidden"), "hidden");
        assert_eq!(sanitize("日本"), "imported");
        assert_eq!(sanitize("a  b!!"), "a-b");
        assert_eq!(sanitize(&"x".repeat(100)).len(), 64);
        for raw in ["-x", "..", "a/b", "ü", "", "a b c"] {
            assert!(is_valid_name(&sanitize(raw)), "{raw:?}");
        }
    }

    #[test]
    fn unique_names() {
        let mut taken = BTreeSet::new();
        assert_eq!(unique("a", &mut taken), "a");
        assert_eq!(unique("a", &mut taken), "a-2");
        assert_eq!(unique("a", &mut taken), "a-3");
        let long = "y".repeat(64);
        assert_eq!(unique(&long, &mut taken), long);
        let second = unique(&long, &mut taken);
        assert!(second.ends_with("-2") && second.len() == 64);
    }

    #[test]
    fn secret_names_fit() {
        assert_eq!(secret_name("tw", Some("consumer_key")), "tw.consumer_key");
        assert!(is_valid_name(&secret_name(
            &"s".repeat(64),
            Some("token_secret")
        )));
    }
}
