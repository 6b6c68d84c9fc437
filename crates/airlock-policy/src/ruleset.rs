//! A capability's compiled rules and the decision procedure.

use std::fmt;
use std::sync::Arc;

use crate::index::Index;
use crate::method::{MethodError, STANDARD_METHODS, check_extra_method, check_method};
use crate::normalize::{PathError, Target, check_normal, clip, normalize};
use crate::pattern::{PathSegments, Strictness};
use crate::rule::{Rule, RuleError};

/// A capability's allow and deny rules, compiled once.
///
/// The decision procedure (DESIGN.md §4), in order:
///
/// 1. the method must be a standard method or one of the capability's extra methods
///    ([`DenyReason::MethodNotAllowed`]);
/// 2. the target must be in normal form ([`DenyReason::InvalidPath`]);
/// 3. deny wins: the first deny rule that matches, *loosely*
///    ([`Rule::matches_loosely`]), denies ([`DenyReason::DenyRule`]);
/// 4. with no allow rules, everything not denied is allowed (open);
/// 5. otherwise the first allow rule that matches, *exactly* ([`Rule::matches`]),
///    allows, and no match denies ([`DenyReason::NoAllowMatch`]).
///
/// Cloning is cheap (a reference count): the broker hands each request its own
/// copy of the capability, which must not cost a copy of every rule (issue 16:
/// time per request independent of the number of rules).
#[derive(Debug, Clone)]
pub struct RuleSet(Arc<Compiled>);

/// What [`RuleSet`] shares between its clones.
#[derive(Debug)]
struct Compiled {
    allow: Vec<Rule>,
    deny: Vec<Rule>,
    /// Which allow rules can match a path (exact literals).
    allow_index: Index,
    /// Which deny rules can match a path (literals ignoring case).
    deny_index: Index,
    /// Upper-cased, validated, without duplicates.
    extra_methods: Vec<String>,
}

/// Which list of a capability a rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleList {
    /// The `allow` list.
    Allow,
    /// The `deny` list.
    Deny,
}

impl fmt::Display for RuleList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleList::Allow => "allow",
            RuleList::Deny => "deny",
        })
    }
}

/// Why a [`RuleSet`] could not be compiled. The message says which list and which
/// (0-based) index failed, then the rule's own error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleSetError {
    /// A rule of the allow or deny list was refused.
    #[error("{list}[{index}]: {error}")]
    Rule {
        /// The list the rule is in.
        list: RuleList,
        /// Its 0-based index in that list.
        index: usize,
        /// What is wrong with it.
        error: RuleError,
    },
    /// An entry of the extra methods was refused.
    #[error("extra method [{index}]: {error}")]
    ExtraMethod {
        /// Its 0-based index.
        index: usize,
        /// What is wrong with it.
        error: MethodError,
    },
}

/// The outcome of [`RuleSet::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The request may proceed (as far as method and path are concerned).
    Allow {
        /// The canonical text of the allow rule that matched; `None` when the
        /// capability has no allow rules, so everything not denied is allowed.
        rule: Option<String>,
    },
    /// The request is refused.
    Deny {
        /// Why.
        reason: DenyReason,
    },
}

impl Decision {
    /// Whether the decision allows the request.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

impl fmt::Display for Decision {
    /// A one-line summary, e.g. `allowed by rule "GET /v1/**"` or
    /// `denied by rule "* /v1/admin/**"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow { rule: Some(rule) } => write!(f, "allowed by rule {rule:?}"),
            Decision::Allow { rule: None } => {
                f.write_str("allowed: the capability has no allow rules and no deny rule matches")
            }
            Decision::Deny { reason } => write!(f, "{reason}"),
        }
    }
}

/// Why a request was denied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenyReason {
    /// A deny rule matched; its canonical text.
    DenyRule(String),
    /// The capability has allow rules and none matched.
    NoAllowMatch,
    /// The method is not allowed for this capability (as given, clipped).
    MethodNotAllowed(String),
    /// The path could not be normalized, or a hand-built [`Target`] was not in normal
    /// form.
    InvalidPath(PathError),
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::DenyRule(rule) => write!(f, "denied by rule {rule:?}"),
            DenyReason::NoAllowMatch => {
                f.write_str("denied: no allow rule of the capability matches this method and path")
            }
            DenyReason::MethodNotAllowed(m) => {
                write!(f, "denied: method {m:?} is not allowed for this capability")
            }
            DenyReason::InvalidPath(e) => write!(f, "denied: {e}"),
        }
    }
}

/// The steps of a decision in words, for the MCP tool `explain_access`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// One line per step, in the order they were taken; the last line states the
    /// decision.
    pub steps: Vec<String>,
    /// The decision, identical to what [`RuleSet::decide`] returns for the same input.
    pub decision: Decision,
}

impl RuleSet {
    /// Compiles a capability's rules.
    ///
    /// `extra_methods` are the methods the capability allows beyond
    /// [`STANDARD_METHODS`]; rules may name them. `TRACE`, `TRACK` and `CONNECT` are
    /// refused even there (see [`crate::FORBIDDEN_METHODS`]).
    ///
    /// # Errors
    ///
    /// [`RuleSetError`] naming the list (`allow`/`deny`, or the extra methods) and the
    /// index of the first entry that is refused, plus why.
    pub fn compile<S: AsRef<str>>(
        allow: &[S],
        deny: &[S],
        extra_methods: &[String],
    ) -> Result<RuleSet, RuleSetError> {
        let mut extras: Vec<String> = Vec::with_capacity(extra_methods.len());
        for (index, m) in extra_methods.iter().enumerate() {
            let m = check_extra_method(m)
                .map_err(|error| RuleSetError::ExtraMethod { index, error })?;
            if !STANDARD_METHODS.contains(&m.as_str()) && !extras.contains(&m) {
                extras.push(m);
            }
        }
        let mut scratch = Vec::new();
        let mut parse = |list: RuleList, rules: &[S]| -> Result<Vec<Rule>, RuleSetError> {
            rules
                .iter()
                .enumerate()
                .map(|(index, s)| {
                    Rule::parse_reusing(s.as_ref(), &extras, &mut scratch)
                        .map_err(|error| RuleSetError::Rule { list, index, error })
                })
                .collect()
        };
        let allow = parse(RuleList::Allow, allow)?;
        let deny = parse(RuleList::Deny, deny)?;
        Ok(RuleSet(Arc::new(Compiled {
            allow_index: Index::build(allow.iter().map(Rule::literal_prefix), false),
            deny_index: Index::build(deny.iter().map(Rule::literal_prefix), true),
            allow,
            deny,
            extra_methods: extras,
        })))
    }

    /// Decides whether `method` may be used on `target`.
    ///
    /// `method` is normalized here (so `"get"` is `GET`). `target` should come from
    /// [`crate::normalize`]; since its fields are public, a target that is not in
    /// normal form is denied ([`DenyReason::InvalidPath`]) rather than matched, so
    /// the path matched is always the path sent.
    pub fn decide(&self, method: &str, target: &Target) -> Decision {
        self.evaluate(method, Err(target), &mut Trace(None))
    }

    /// Explains, step by step, how `method` on the raw request target `raw_path`
    /// (as an agent would send it, query included) would be decided.
    ///
    /// The decision is computed by the same code as [`RuleSet::decide`] on
    /// `normalize(raw_path)`, so the explanation cannot disagree with enforcement.
    pub fn explain(&self, method: &str, raw_path: &str) -> Explanation {
        let mut steps = Vec::new();
        let decision = self.evaluate(method, Ok(raw_path), &mut Trace(Some(&mut steps)));
        steps.push(format!("decision: {decision}"));
        Explanation { steps, decision }
    }

    /// The rules and methods in words, for `explain_access` without a method or path,
    /// and for `list_services`.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!("methods: {}", self.methods().join(", "))];
        if self.0.deny.is_empty() {
            lines.push("deny rules: none".to_owned());
        }
        for (i, r) in self.0.deny.iter().enumerate() {
            lines.push(format!("deny[{i}]: {r}"));
        }
        if self.0.allow.is_empty() {
            lines.push("allow rules: none, so every path not denied is allowed".to_owned());
        }
        for (i, r) in self.0.allow.iter().enumerate() {
            lines.push(format!("allow[{i}]: {r}"));
        }
        lines
    }

    /// The allow rules, in order.
    pub fn allow_rules(&self) -> &[Rule] {
        &self.0.allow
    }

    /// The deny rules, in order.
    pub fn deny_rules(&self) -> &[Rule] {
        &self.0.deny
    }

    /// The capability's extra methods, upper-cased, without duplicates or standard
    /// methods.
    pub fn extra_methods(&self) -> &[String] {
        &self.0.extra_methods
    }

    /// Every method this rule set allows: the standard ones, then the extras. This is
    /// what `*` in a rule stands for.
    pub fn methods(&self) -> Vec<&str> {
        STANDARD_METHODS
            .iter()
            .copied()
            .chain(self.0.extra_methods.iter().map(String::as_str))
            .collect()
    }

    /// The one decision procedure. `path` is either a raw path to normalize
    /// (`explain`) or a target to verify (`decide`).
    fn evaluate(
        &self,
        method: &str,
        path: Result<&str, &Target>,
        trace: &mut Trace<'_>,
    ) -> Decision {
        let deny = |reason| Decision::Deny { reason };

        let method = match check_method(method, &self.0.extra_methods) {
            Ok(m) => {
                trace.step(|| format!("method {:?} is allowed, as {m}", clip(method)));
                m
            }
            Err(e) => {
                trace.step(|| format!("method refused: {e}"));
                return deny(DenyReason::MethodNotAllowed(clip(method)));
            }
        };

        let normalized;
        let target = match path {
            Err(target) => match check_normal(target) {
                Ok(()) => target,
                Err(e) => return deny(DenyReason::InvalidPath(e)),
            },
            Ok(raw) => match normalize(raw) {
                Ok(t) => {
                    normalized = t;
                    trace.step(|| {
                        let mut s = format!(
                            "path {:?} is normalized to {:?}; that is what is matched and sent",
                            clip(raw),
                            normalized.path
                        );
                        if let Some(q) = &normalized.query {
                            s.push_str(&format!(
                                " (query {:?} is sent as is, never matched)",
                                clip(q)
                            ));
                        }
                        s
                    });
                    &normalized
                }
                Err(e) => {
                    trace.step(|| format!("path refused: {e}"));
                    return deny(DenyReason::InvalidPath(e));
                }
            },
        };

        let segments = PathSegments::new(&target.path);
        // Deciding looks only at the rules that can match (the index); explaining
        // walks every rule, to say why each one does not match. Both run the same
        // loop and matcher.
        let explaining = trace.0.is_some();
        let candidates = |index: &Index, all: usize| -> Vec<usize> {
            if explaining {
                (0..all).collect()
            } else {
                index.candidates(&segments)
            }
        };
        for i in candidates(&self.0.deny_index, self.0.deny.len()) {
            let rule = &self.0.deny[i];
            if rule.matches_segments(&method, &segments, Strictness::Loose) {
                trace.step(|| {
                    let how = if rule.matches_segments(&method, &segments, Strictness::Exact) {
                        "matches"
                    } else {
                        "matches (deny rules also match other letter case, ';' parameters, and HEAD for GET)"
                    };
                    format!("deny[{i}] {:?} {how}: deny wins", rule.as_str())
                });
                return deny(DenyReason::DenyRule(rule.as_str().to_owned()));
            }
            trace.step(|| format!("deny[{i}] {:?} does not match", rule.as_str()));
        }

        if self.0.allow.is_empty() {
            trace.step(|| "no allow rules: everything not denied is allowed".to_owned());
            return Decision::Allow { rule: None };
        }
        for i in candidates(&self.0.allow_index, self.0.allow.len()) {
            let rule = &self.0.allow[i];
            if rule.matches_segments(&method, &segments, Strictness::Exact) {
                trace.step(|| format!("allow[{i}] {:?} matches", rule.as_str()));
                return Decision::Allow {
                    rule: Some(rule.as_str().to_owned()),
                };
            }
            trace.step(|| format!("allow[{i}] {:?} does not match", rule.as_str()));
        }
        trace.step(|| {
            "no allow rule matches, and with allow rules present that means deny".to_owned()
        });
        deny(DenyReason::NoAllowMatch)
    }
}

/// Collects explanation steps when explaining; formats nothing when deciding.
struct Trace<'a>(Option<&'a mut Vec<String>>);

impl Trace<'_> {
    fn step(&mut self, line: impl FnOnce() -> String) {
        if let Some(steps) = self.0.as_deref_mut() {
            steps.push(line());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn set(allow: &[&str], deny: &[&str]) -> RuleSet {
        RuleSet::compile(&strings(allow), &strings(deny), &[]).unwrap()
    }

    fn decide(rs: &RuleSet, method: &str, raw: &str) -> Decision {
        rs.decide(method, &normalize(raw).unwrap())
    }

    #[test]
    fn deny_wins_over_allow() {
        let rs = set(&["GET /v1/**"], &["* /v1/charges/**"]);
        assert_eq!(
            decide(&rs, "GET", "/v1/charges/ch_1"),
            Decision::Deny {
                reason: DenyReason::DenyRule("* /v1/charges/**".into())
            }
        );
        assert_eq!(
            decide(&rs, "get", "/v1/customers"),
            Decision::Allow {
                rule: Some("GET /v1/**".into())
            }
        );
    }

    #[test]
    fn allow_rules_make_everything_else_denied() {
        let rs = set(&["GET /v1/**"], &[]);
        assert_eq!(
            decide(&rs, "POST", "/v1/x"),
            Decision::Deny {
                reason: DenyReason::NoAllowMatch
            }
        );
        assert_eq!(
            decide(&rs, "GET", "/v2"),
            Decision::Deny {
                reason: DenyReason::NoAllowMatch
            }
        );
    }

    #[test]
    fn no_allow_rules_means_open() {
        let rs = set(&[], &["DELETE /**"]);
        assert_eq!(
            decide(&rs, "GET", "/anything"),
            Decision::Allow { rule: None }
        );
        assert!(!decide(&rs, "DELETE", "/anything").is_allowed());
    }

    #[test]
    fn methods_are_checked_first() {
        let rs = set(&[], &[]);
        for m in ["TRACE", "CONNECT", "PROPFIND", "", "G ET"] {
            assert!(
                matches!(
                    decide(&rs, m, "/"),
                    Decision::Deny {
                        reason: DenyReason::MethodNotAllowed(_)
                    }
                ),
                "{m:?}"
            );
        }
        let dav = RuleSet::compile(&strings(&["* /dav/**"]), &[], &strings(&["propfind"])).unwrap();
        assert!(decide(&dav, "PROPFIND", "/dav/x").is_allowed());
        assert_eq!(dav.methods().last(), Some(&"PROPFIND"));
    }

    #[test]
    fn hand_built_targets_must_be_normal() {
        let rs = set(&["* /v1/**"], &["* /v1/admin/**"]);
        let sneaky = Target {
            path: "/v1/x/../admin".into(),
            query: None,
        };
        assert!(matches!(
            rs.decide("GET", &sneaky),
            Decision::Deny {
                reason: DenyReason::InvalidPath(PathError::NotNormalized { .. })
            }
        ));
    }

    #[test]
    fn compile_errors_name_list_and_index() {
        let e = RuleSet::compile(
            &strings(&["GET /v1/**"]),
            &strings(&["GET /ok", "GET v1/**"]),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "deny[1]: rule \"GET v1/**\": the path must start with '/'"
        );
        let e = RuleSet::compile(&strings(&["PROPFIND /x"]), &[], &[]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("allow[0]: rule \"PROPFIND /x\": method \"PROPFIND\""),
            "{e}"
        );
        let e = RuleSet::compile::<String>(&[], &[], &strings(&["MKCOL", "TRACE"])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("extra method [1]: method \"TRACE\" is never allowed"),
            "{e}"
        );
    }

    #[test]
    fn explain_agrees_with_decide_and_says_why() {
        let rs = set(&["GET /v1/**"], &["* /v1/admin/**"]);
        let ex = rs.explain("get", "/v1/x/%2e%2e/ADMIN/users?limit=1");
        assert_eq!(
            ex.decision,
            decide(&rs, "get", "/v1/x/%2e%2e/ADMIN/users?limit=1")
        );
        let text = ex.steps.join("\n");
        assert!(text.contains("normalized to \"/v1/ADMIN/users\""), "{text}");
        assert!(text.contains("other letter case"), "{text}");
        assert!(text.contains("\"limit=1\" is sent as is"), "{text}");
        assert!(
            ex.steps
                .last()
                .unwrap()
                .starts_with("decision: denied by rule \"* /v1/admin/**\""),
            "{text}"
        );

        let ex = rs.explain("GET", "/v1\\admin");
        assert!(matches!(
            ex.decision,
            Decision::Deny {
                reason: DenyReason::InvalidPath(_)
            }
        ));
        assert!(ex.steps[1].starts_with("path refused: "), "{:?}", ex.steps);

        let ex = rs.explain("GET", "/v1/ok");
        assert_eq!(
            ex.steps.last().unwrap(),
            "decision: allowed by rule \"GET /v1/**\""
        );
    }

    #[test]
    fn describe_lists_rules() {
        let rs = set(&["GET /v1/**"], &[]);
        let lines = rs.describe();
        assert_eq!(
            lines[0],
            "methods: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
        );
        assert!(lines.contains(&"allow[0]: GET /v1/**".to_owned()));
        assert!(lines.contains(&"deny rules: none".to_owned()));
    }
}
