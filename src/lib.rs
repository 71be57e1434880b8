//! acrlink keeps AKS clusters able to pull from Azure Container Registries, declaratively.
//!
//! Data flows one way, one module per stage:
//! `config` (file → validated model) → resolve → graph → observe → diff → plan → apply,
//! with `render` turning results into text, JSON or Markdown. Only `cli` builds concrete
//! adapters, and only the `emulator`/`demo` commands start the emulator; no engine module
//! imports it.

pub mod cli;
pub mod config;
pub mod render;
