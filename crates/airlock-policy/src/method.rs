//! HTTP methods: upper-casing, validation and the allow-list.

use std::borrow::Cow;
use std::fmt;

use crate::rule::RuleError;

/// The methods every capability may use (DESIGN.md §4). Others must be named by the
/// capability (its extra methods).
pub const STANDARD_METHODS: [&str; 7] =
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Methods that are refused even when a capability names them.
///
/// `TRACE` (and IIS's `TRACK`) make the server echo the request back, *including the
/// credential airlock just injected*, straight into the agent's context; `CONNECT`
/// asks for a raw tunnel, which no path rule can describe.
pub const FORBIDDEN_METHODS: [&str; 3] = ["TRACE", "TRACK", "CONNECT"];

/// Longest method accepted. Real methods are short (`VERSION-CONTROL` is 15); the
/// bound keeps error messages and logs small when an agent sends garbage.
const MAX_METHOD_LEN: usize = 32;

/// Why a method was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MethodError {
    /// The method is the empty string.
    #[error("the HTTP method is empty; expected one of {}", AllowedList(&[]))]
    Empty,
    /// The method contains characters that no HTTP method has.
    #[error(
        "method {method:?} is not a valid HTTP method: use ASCII letters, digits, '-' or '_' \
         (at most {MAX_METHOD_LEN} characters), e.g. \"GET\""
    )]
    InvalidToken {
        /// The method as given (clipped).
        method: String,
    },
    /// The method is well formed but not in the standard set nor among the extra
    /// methods the capability names.
    #[error(
        "method {method:?} is not allowed; allowed methods are {allowed} \
         (a capability allows others by listing them in its `methods`)"
    )]
    NotAllowed {
        /// The method, upper-cased.
        method: String,
        /// The allowed methods, comma-separated.
        allowed: String,
    },
    /// The method is one of [`FORBIDDEN_METHODS`], refused even when named.
    #[error("method {method:?} is never allowed: {why}")]
    Forbidden {
        /// The method, upper-cased.
        method: String,
        /// Why airlock refuses it.
        why: &'static str,
    },
}

/// Upper-cases `m` and checks that it is one of [`STANDARD_METHODS`] or one of
/// `extra` (compared case-insensitively).
///
/// `*` is not a method: it is only meaningful inside a rule (see [`crate::Rule`]).
/// [`FORBIDDEN_METHODS`] are refused even if `extra` names them.
///
/// # Errors
///
/// [`RuleError::Method`] when `m` is empty, not a method token, forbidden or not
/// allowed.
pub fn normalize_method(m: &str, extra: &[String]) -> Result<String, RuleError> {
    check_method(m, extra)
        .map(Cow::into_owned)
        .map_err(RuleError::Method)
}

/// [`normalize_method`] with the narrower error type, for internal callers.
///
/// A standard method comes back borrowed (no allocation: this runs for every rule
/// loaded and every request).
pub(crate) fn check_method(m: &str, extra: &[String]) -> Result<Cow<'static, str>, MethodError> {
    if let Some(standard) = STANDARD_METHODS.iter().find(|s| s.eq_ignore_ascii_case(m)) {
        // A standard method is a valid token and never forbidden.
        return Ok(Cow::Borrowed(standard));
    }
    let upper = check_token(m)?;
    if let Some(why) = forbidden_reason(&upper) {
        return Err(MethodError::Forbidden { method: upper, why });
    }
    if extra.iter().any(|e| e.eq_ignore_ascii_case(&upper)) {
        Ok(Cow::Owned(upper))
    } else {
        Err(MethodError::NotAllowed {
            method: upper,
            allowed: AllowedList(extra).to_string(),
        })
    }
}

/// Validates an entry of a capability's extra methods: a method token, not forbidden.
/// Returns it upper-cased.
pub(crate) fn check_extra_method(m: &str) -> Result<String, MethodError> {
    let upper = check_token(m)?;
    match forbidden_reason(&upper) {
        Some(why) => Err(MethodError::Forbidden { method: upper, why }),
        None => Ok(upper),
    }
}

/// Checks the token syntax and upper-cases it.
///
/// RFC 9110 allows more punctuation in a method token, but no method in use has any;
/// a narrow alphabet keeps methods safe to print and to compare.
fn check_token(m: &str) -> Result<String, MethodError> {
    if m.is_empty() {
        return Err(MethodError::Empty);
    }
    let ok = m.len() <= MAX_METHOD_LEN
        && m.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(MethodError::InvalidToken {
            method: crate::normalize::clip(m),
        });
    }
    Ok(m.to_ascii_uppercase())
}

fn forbidden_reason(upper: &str) -> Option<&'static str> {
    match upper {
        "TRACE" | "TRACK" => Some(
            "the server would echo the request, including the injected credential, back to the agent",
        ),
        "CONNECT" => Some("it opens a raw tunnel that no path rule can describe"),
        _ => None,
    }
}

/// Renders the allowed methods for error messages: the standard ones, then extras.
struct AllowedList<'a>(&'a [String]);

impl fmt::Display for AllowedList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let extras = self.0.iter().map(String::as_str);
        for m in STANDARD_METHODS.iter().copied().chain(extras) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            // Extras are printed upper-cased, as they are compared.
            for c in m.chars() {
                fmt::Write::write_char(f, c.to_ascii_uppercase())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_methods_are_upper_cased() {
        assert_eq!(normalize_method("get", &[]).unwrap(), "GET");
        assert_eq!(normalize_method("Patch", &[]).unwrap(), "PATCH");
        assert_eq!(normalize_method("OPTIONS", &[]).unwrap(), "OPTIONS");
    }

    #[test]
    fn standard_methods_are_not_copied_and_extras_are() {
        let extra = vec!["propfind".to_string()];
        for m in ["get", "GET", "dElEtE"] {
            assert!(
                matches!(check_method(m, &extra), Ok(Cow::Borrowed(_))),
                "{m}"
            );
        }
        assert_eq!(
            check_method("PropFind", &extra).unwrap(),
            Cow::<str>::Owned("PROPFIND".into())
        );
        assert!(check_method("GETS", &extra).is_err());
    }

    #[test]
    fn extra_methods_are_case_insensitive() {
        let extra = vec!["propfind".to_string(), "VERSION-CONTROL".to_string()];
        assert_eq!(normalize_method("PROPFIND", &extra).unwrap(), "PROPFIND");
        assert_eq!(
            normalize_method("version-control", &extra).unwrap(),
            "VERSION-CONTROL"
        );
        let err = normalize_method("MKCOL", &extra).unwrap_err().to_string();
        assert!(err.contains("\"MKCOL\" is not allowed"), "{err}");
        assert!(
            err.contains("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, PROPFIND"),
            "{err}"
        );
    }

    #[test]
    fn forbidden_methods_stay_forbidden_even_when_named() {
        let extra = vec!["TRACE".to_string(), "connect".to_string()];
        for m in ["TRACE", "trace", "TRACK", "CONNECT"] {
            let err = normalize_method(m, &extra).unwrap_err();
            assert!(
                matches!(err, RuleError::Method(MethodError::Forbidden { .. })),
                "{m}: {err}"
            );
        }
        assert!(check_extra_method("trace").is_err());
        assert_eq!(check_extra_method("mkcol").unwrap(), "MKCOL");
    }

    #[test]
    fn malformed_methods_are_refused() {
        for m in [
            "",
            "*",
            "GET ",
            " GET",
            "G\r\nET",
            "GET/1",
            "GÉT",
            &"A".repeat(33),
        ] {
            assert!(normalize_method(m, &[]).is_err(), "{m:?}");
        }
        let err = normalize_method("GE\nT", &[]).unwrap_err().to_string();
        // The message escapes the control character rather than printing it.
        assert!(err.contains("\"GE\\nT\""), "{err}");
    }
}
