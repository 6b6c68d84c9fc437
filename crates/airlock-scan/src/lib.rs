//! Finds exposed secrets in files, configs and git history, with a risk rating.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
