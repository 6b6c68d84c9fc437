//! The `airlock` command line.
#![forbid(unsafe_code)]

fn main() {}
