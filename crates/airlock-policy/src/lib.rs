//! airlock's request policy: rule parsing, path normalization and matching. Pure and fuzzable.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
