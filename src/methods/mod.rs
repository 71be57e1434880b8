//! Binding methods: each turns the file's bindings of its `method`, against the observed
//! fleet, into desired resources of the kinds in `crate::kinds`, and does nothing else (no
//! I/O, no diff). A new method is one file here plus its arm in `crate::engine::desired`.

pub mod acr_names;
pub mod managed_identity;
pub mod pull_secret;
