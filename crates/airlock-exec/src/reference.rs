//! `airlock://NAME` references: in `.env` files (`airlock run --env-file F`), in the
//! current environment (`airlock run`, like `op run`) and in `wrap --env VAR=…`.
//!
//! A reference is a whole value: `STRIPE_KEY=airlock://stripe`. In an env file, a
//! value that contains `airlock://` anywhere else (`URL=postgres://u:airlock://pw@h`)
//! is an error rather than a literal, since it almost certainly meant a reference;
//! in the process environment such values are passed on unchanged.
//!
//! # `.env` syntax
//!
//! One `KEY=VALUE` per line; blank lines and lines starting with `#` are skipped;
//! an optional `export ` prefix is allowed; spaces around `=` are allowed. `KEY` is
//! `[A-Za-z_][A-Za-z0-9_]*`. `VALUE` is
//!
//! * unquoted: up to ` #` (a comment) or the end of the line, trimmed;
//! * `'single quoted'`: literal, may span lines;
//! * `"double quoted"`: may span lines; `\n`, `\r`, `\t`, `\"`, `\\`, `\$` are
//!   escapes, any other backslash is kept as is.
//!
//! After a closing quote only spaces and a `# comment` may follow. There is no
//! `${VAR}` expansion. Errors name `file:line`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret as _, SecretSlice};
use zeroize::Zeroizing;

/// The reference scheme.
pub const REFERENCE_PREFIX: &str = "airlock://";

/// Environment variables whose values may be secret.
pub type EnvVars = Vec<(OsString, Zeroizing<Vec<u8>>)>;

/// Secrets by name (for scrubbing).
pub type NamedSecrets = Vec<(String, SecretSlice<u8>)>;

/// Looks up a vault secret by name (`None` when there is no such secret).
pub type SecretLookup<'a> = &'a dyn Fn(&str) -> Option<SecretSlice<u8>>;

/// A reference or an env file could not be resolved. Messages name the file and
/// line (or the variable), never a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The env file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line of the env file is malformed.
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A reference names a secret the vault does not have, or a malformed name.
    #[error("{location}: {message}")]
    Secret {
        /// `file:line` or the variable's name.
        location: String,
        /// What is wrong and what to do.
        message: String,
    },
}

/// An environment with every reference replaced by its secret, and the secrets
/// used (for scrubbing). `Debug` shows names only.
#[derive(Default)]
pub struct ResolvedEnv {
    vars: EnvVars,
    secrets: NamedSecrets,
}

impl fmt::Debug for ResolvedEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedEnv")
            .field("vars", &self.keys().collect::<Vec<_>>())
            .field("secrets", &self.secret_names().collect::<Vec<_>>())
            .finish()
    }
}

impl ResolvedEnv {
    /// The variable names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &OsStr> {
        self.vars.iter().map(|(k, _)| k.as_os_str())
    }

    /// The names of the secrets referenced, each once.
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.secrets.iter().map(|(n, _)| n.as_str())
    }

    /// The value of `key` (last one wins), for tests and callers that must inspect
    /// it. It may be a secret.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Appends `other` (its variables override earlier ones of the same name when
    /// given to a [`Launch`](crate::Launch)).
    pub fn extend(&mut self, other: ResolvedEnv) {
        self.vars.extend(other.vars);
        for (n, v) in other.secrets {
            self.add_secret(n, v);
        }
    }

    /// The variables and the secrets, for [`Launch::envs`](crate::Launch::envs).
    pub fn into_parts(self) -> (EnvVars, NamedSecrets) {
        (self.vars, self.secrets)
    }

    fn add_secret(&mut self, name: String, value: SecretSlice<u8>) {
        if !self.secrets.iter().any(|(n, _)| *n == name) {
            self.secrets.push((name, value));
        }
    }

    fn push(
        &mut self,
        key: OsString,
        value: &[u8],
        location: impl Fn() -> String,
        lookup: SecretLookup<'_>,
    ) -> Result<(), ReferenceError> {
        match reference_name(value) {
            Some(name) => {
                let secret = resolve_name(name, &location, lookup)?;
                self.vars
                    .push((key, Zeroizing::new(secret.expose_secret().to_vec())));
                self.add_secret(name.to_string(), secret);
            }
            None => self.vars.push((key, Zeroizing::new(value.to_vec()))),
        }
        Ok(())
    }
}

/// The secret name if `value` is exactly a reference (`airlock://NAME`).
pub fn reference_name(value: &[u8]) -> Option<&str> {
    let rest = value.strip_prefix(REFERENCE_PREFIX.as_bytes())?;
    std::str::from_utf8(rest).ok()
}

fn resolve_name(
    name: &str,
    location: &dyn Fn() -> String,
    lookup: SecretLookup<'_>,
) -> Result<SecretSlice<u8>, ReferenceError> {
    if !airlock_home::is_valid_name(name) {
        return Err(ReferenceError::Secret {
            location: location(),
            message: format!(
                "invalid secret name \"{}\" in {REFERENCE_PREFIX} reference; {}",
                crate::error::shown(name),
                airlock_home::NAME_RULE
            ),
        });
    }
    lookup(name).ok_or_else(|| ReferenceError::Secret {
        location: location(),
        message: format!(
            "unknown secret \"{name}\"; add it with `airlock secret set {name}` or fix the reference"
        ),
    })
}

/// Resolves references among `vars` (the current environment: pass
/// `std::env::vars_os()`). Values that are exactly `airlock://NAME` become the
/// secret; every other value is kept unchanged.
pub fn resolve_environment<I>(
    vars: I,
    lookup: SecretLookup<'_>,
) -> Result<ResolvedEnv, ReferenceError>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    resolve_vars(vars, |key| format!("environment variable {key}"), lookup)
}

/// Resolves references among `vars`; `location(key)` says in messages where a
/// value came from.
fn resolve_vars<V: AsRef<OsStr>>(
    vars: impl IntoIterator<Item = (OsString, V)>,
    location: impl Fn(&str) -> String,
    lookup: SecretLookup<'_>,
) -> Result<ResolvedEnv, ReferenceError> {
    let mut env = ResolvedEnv::default();
    for (key, value) in vars {
        let shown_key = key.to_string_lossy().into_owned();
        env.push(
            key,
            value.as_ref().as_bytes(),
            || location(&shown_key),
            lookup,
        )?;
    }
    Ok(env)
}

/// Resolves `VAR=airlock://NAME` (or `VAR=literal`) as given to
/// `airlock wrap --env`.
pub fn resolve_assignment(
    assignment: &str,
    lookup: SecretLookup<'_>,
) -> Result<ResolvedEnv, ReferenceError> {
    let bad = |message: String| ReferenceError::Secret {
        location: format!(
            "--env {}",
            crate::error::shown(assignment.split('=').next().unwrap_or(""))
        ),
        message,
    };
    let Some((key, value)) = assignment.split_once('=') else {
        return Err(bad("expected VAR=airlock://NAME".into()));
    };
    if !valid_key(key) {
        return Err(bad(format!(
            "invalid variable name \"{}\"; use letters, digits and _, not starting with a digit",
            crate::error::shown(key)
        )));
    }
    resolve_vars([(key.into(), value)], |key| format!("--env {key}"), lookup)
}

/// Reads and resolves an env file.
pub fn resolve_env_file(
    path: &Path,
    lookup: SecretLookup<'_>,
) -> Result<ResolvedEnv, ReferenceError> {
    let text = std::fs::read(path).map_err(|source| ReferenceError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = Zeroizing::new(text);
    let text = std::str::from_utf8(&text).map_err(|e| ReferenceError::Syntax {
        path: path.to_path_buf(),
        line: line_of(&text[..e.valid_up_to()]),
        message: "not valid UTF-8".into(),
    })?;
    resolve_env_text(path, text, lookup)
}

fn line_of(prefix: &[u8]) -> usize {
    1 + prefix.iter().filter(|&&b| b == b'\n').count()
}

/// Resolves env-file `text`; `path` is only used in messages.
pub fn resolve_env_text(
    path: &Path,
    text: &str,
    lookup: SecretLookup<'_>,
) -> Result<ResolvedEnv, ReferenceError> {
    let mut env = ResolvedEnv::default();
    for entry in parse_env(path, text)? {
        let EnvEntry { key, value, line } = entry;
        if reference_name(value.as_bytes()).is_none() && value.contains(REFERENCE_PREFIX) {
            return Err(ReferenceError::Syntax {
                path: path.to_path_buf(),
                line,
                message: format!(
                    "{key}: an {REFERENCE_PREFIX} reference must be the whole value (KEY={REFERENCE_PREFIX}NAME)"
                ),
            });
        }
        let location = || format!("{}:{line}", path.display());
        env.push(key.into(), value.as_bytes(), location, lookup)?;
    }
    Ok(env)
}

struct EnvEntry {
    key: String,
    value: Zeroizing<String>,
    line: usize,
}

fn valid_key(key: &str) -> bool {
    key.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn parse_env(path: &Path, text: &str) -> Result<Vec<EnvEntry>, ReferenceError> {
    let err = |line: usize, message: String| ReferenceError::Syntax {
        path: path.to_path_buf(),
        line,
        message,
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i + 1;
        let raw = lines[i].strip_suffix('\r').unwrap_or(lines[i]);
        i += 1;
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export")
            .filter(|r| r.starts_with([' ', '\t']))
            .map_or(line, str::trim_start);
        let Some((key, rest)) = line.split_once('=') else {
            return Err(err(
                lineno,
                format!(
                    "expected KEY=VALUE, found \"{}\"",
                    crate::error::shown(line.split_whitespace().next().unwrap_or(""))
                ),
            ));
        };
        let key = key.trim_end();
        if !valid_key(key) {
            return Err(err(
                lineno,
                format!(
                    "invalid variable name \"{}\"; use letters, digits and _, not starting with a digit",
                    crate::error::shown(key)
                ),
            ));
        }
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => {
                // Quoted, possibly over several lines.
                let mut value = Zeroizing::new(String::new());
                let mut body: &str = &rest[1..];
                let mut closed_tail: Option<&str> = None;
                loop {
                    let mut chars = body.char_indices();
                    while let Some((at, c)) = chars.next() {
                        if c == q {
                            closed_tail = Some(&body[at + 1..]);
                            break;
                        }
                        if q == '"' && c == '\\' {
                            match chars.next() {
                                Some((_, 'n')) => value.push('\n'),
                                Some((_, 'r')) => value.push('\r'),
                                Some((_, 't')) => value.push('\t'),
                                Some((_, e @ ('"' | '\\' | '$'))) => value.push(e),
                                Some((_, other)) => {
                                    value.push('\\');
                                    value.push(other);
                                }
                                None => value.push('\\'),
                            }
                        } else {
                            value.push(c);
                        }
                    }
                    if closed_tail.is_some() {
                        break;
                    }
                    let Some(next) = lines.get(i) else {
                        return Err(err(
                            lineno,
                            format!("{key}: unterminated {q}quoted{q} value (add the closing {q})"),
                        ));
                    };
                    value.push('\n');
                    body = next.strip_suffix('\r').unwrap_or(next);
                    i += 1;
                }
                let tail = closed_tail.unwrap_or("").trim_start();
                if !(tail.is_empty() || tail.starts_with('#')) {
                    return Err(err(
                        i,
                        format!("{key}: unexpected text after the closing quote"),
                    ));
                }
                value
            }
            _ => {
                let end = rest
                    .match_indices('#')
                    .find(|(at, _)| *at == 0 || rest[..*at].ends_with([' ', '\t']))
                    .map_or(rest.len(), |(at, _)| at);
                Zeroizing::new(rest[..end].trim_end().to_string())
            }
        };
        out.push(EnvEntry {
            key: key.to_string(),
            value,
            line: lineno,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<SecretSlice<u8>> {
        (name == "stripe").then(|| b"sk_live_x".to_vec().into())
    }

    #[test]
    fn parses_syntax() {
        let text = "# c\n\nexport A=1\nB = two words # comment\nC='lit $x # no'\nD=\"a\\nb\\\"c\"\nE=\"multi\nline\"\nF=x#y\nG=\n";
        let env = resolve_env_text(Path::new("t.env"), text, &lookup).unwrap();
        assert_eq!(env.get("A"), Some(&b"1"[..]));
        assert_eq!(env.get("B"), Some(&b"two words"[..]));
        assert_eq!(env.get("C"), Some(&b"lit $x # no"[..]));
        assert_eq!(env.get("D"), Some(&b"a\nb\"c"[..]));
        assert_eq!(env.get("E"), Some(&b"multi\nline"[..]));
        assert_eq!(env.get("F"), Some(&b"x#y"[..]));
        assert_eq!(env.get("G"), Some(&b""[..]));
    }
}
