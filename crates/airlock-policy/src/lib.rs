//! airlock's request policy: rule parsing, path normalization and matching.
//!
//! Every request an agent makes through airlock passes through this crate, so it is
//! kept small, pure (no I/O, no clock, no network) and fuzzable.
//!
//! The central promise (DESIGN.md §7, invariant 3) is **what is checked is what is
//! sent**: [`normalize`] turns the agent's raw request target into a [`Target`] whose
//! `path` is *both* the string the rules are matched against *and* the string the
//! engine sends upstream. Anything that cannot be normalized unambiguously is refused
//! with a [`PathError`] rather than guessed.
//!
//! ```
//! use airlock_policy::{normalize, Decision, DenyReason, RuleSet};
//!
//! let rules = RuleSet::compile(
//!     &["* /v1/**".to_string()],
//!     &["* /v1/admin/**".to_string()],
//!     &[],
//! )
//! .expect("valid rules");
//!
//! // `%2e%2e` is decoded first, then resolved as a dot segment: the path that is
//! // checked (and sent) is `/v1/admin/users`, which the deny rule covers.
//! let target = normalize("/v1/x/%2e%2e/admin/users?limit=1").expect("normalizable");
//! assert_eq!(target.path, "/v1/admin/users");
//! assert_eq!(target.query.as_deref(), Some("limit=1"));
//! assert!(matches!(
//!     rules.decide("get", &target),
//!     Decision::Deny { reason: DenyReason::DenyRule(_) }
//! ));
//!
//! // An encoded slash cannot be normalized unambiguously: refused, not guessed.
//! assert!(normalize("/v1/%2fadmin").is_err());
//! ```
//!
//! The full rule syntax, the normalization table and the decisions taken where the
//! design is silent are in `docs/policy.md` at the root of the repository.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Tests may unwrap: a panic there is a failed test, which is what we want.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod diff;
mod index;
mod method;
mod normalize;
mod pattern;
mod rule;
mod ruleset;

pub use diff::{
    Change, DiffError, ListName, MAX_DIFF_STATES, MatchedRule, PathClass, Presence, RuleDiff, diff,
};
pub use method::{FORBIDDEN_METHODS, MethodError, STANDARD_METHODS, normalize_method};
pub use normalize::{MAX_TARGET_LEN, PathError, Target, normalize};
pub use rule::{Rule, RuleError, RuleProblem};
pub use ruleset::{Decision, DenyReason, Explanation, RuleList, RuleSet, RuleSetError};
