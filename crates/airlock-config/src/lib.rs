//! airlock.toml: typed, validated configuration with located errors and comment-preserving edits.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
