//! The airlock home directory: layout, private permissions, atomic writes and locks.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
