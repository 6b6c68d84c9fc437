//! airlock-inject integration tests: published signature vectors, independent
//! verifiers, and local token endpoints on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod contract;
mod minting;
mod oauth1;
mod sigv4;
mod static_keys;
mod support;
