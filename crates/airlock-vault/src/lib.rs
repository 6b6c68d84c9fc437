//! airlock's encrypted secret store: key hierarchy, sealed entries, versioned on-disk format.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
