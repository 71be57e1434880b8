//! acrlink keeps AKS clusters able to pull from Azure Container Registries, declaratively.
//!
//! Data flows one way, one module per stage:
//! `config` (file → validated model) → resolve → graph → observe → diff → plan → apply,
//! with `render` turning results into text, JSON or Markdown. Only `cli` builds concrete
//! adapters, and only the `emulator`/`demo` commands start the emulator; no engine module
//! imports it.

// Only the binary's CLI writes to the terminal, and nothing input or the network can make fail
// is unwrapped (tests may).
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used))]

pub mod apply;
pub mod check;
pub mod config;
pub mod diff;
pub mod engine;
pub mod graph;
pub mod model;
pub mod observe;
pub mod ownership;
pub mod plan;
pub mod provider;
pub mod pullsecret;
pub mod render;
pub mod resolve;
pub mod sensitive;
pub mod settings;
