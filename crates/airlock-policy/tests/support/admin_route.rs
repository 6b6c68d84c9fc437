//! The oracle both the policy tests and the `normalize_and_match` fuzz target
//! check allowed paths against (each includes this file with `#[path]`): where a
//! lenient server would route a path.

/// Whether a server that decodes escapes (once), ignores case and strips `;params`
/// would route `path` to `/v1/admin` or below.
pub(crate) fn reaches_admin(path: &str) -> bool {
    let segments: Vec<String> = path
        .split('/')
        .map(|s| {
            let s = decode(s).to_ascii_lowercase();
            s.split(';').next().unwrap_or_default().to_owned()
        })
        .filter(|s| !s.is_empty())
        .collect();
    segments.len() >= 2 && segments[0] == "v1" && segments[1] == "admin"
}

/// Percent-decodes `s` once (a `%` not followed by two hex digits stays).
pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(hi), Some(lo)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(u8::try_from(hi * 16 + lo).expect("byte"));
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
