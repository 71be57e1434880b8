//! acrlink keeps AKS clusters able to pull from Azure Container Registries, declaratively.
//!
//! Data flows one way: `config` (file → validated model) → `observe` the fleet (clusters,
//! registries, kubelet identities) → binding `methods` produce desired resources → observe the
//! live objects they need (batched per cluster and registry) → each of the `kinds` diffs its
//! objects (pure) → one typed `plan` → one `graph` built from it → `apply` walks the graph and
//! hands each change to its kind, after `check` for a saved plan; `render` turns results into
//! text, JSON or Markdown. `engine` sequences the stages.
//! `model` holds the types every stage shares, `ownership` every mark acrlink leaves.
//! The command line is the binary's (`src/main.rs`, `src/cli`): only it reads the
//! environment (into `settings`), builds concrete adapters, prints, or starts the emulator;
//! no library module imports the emulator (`tests/it/boundary.rs`).

// Only the binary's CLI writes to the terminal, and nothing input or the network can make fail
// is unwrapped (tests may).
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used))]

pub mod apply;
pub mod auth;
pub mod check;
pub mod config;
pub mod engine;
pub mod graph;
pub mod import;
pub mod kinds;
pub mod methods;
pub mod model;
pub mod observe;
pub mod ownership;
pub mod plan;
pub mod provider;
pub mod render;
pub mod sensitive;
pub mod settings;
pub mod subset;
pub mod verify;
