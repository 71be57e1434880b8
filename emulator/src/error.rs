//! The emulator's one error type: what can go wrong loading a world, generating one, or serving.

use std::path::PathBuf;

/// One problem found while checking a world file, located as precisely as the file allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldProblem {
    /// Dotted path of the offending field, e.g. `clusters[2].resource_group`.
    pub field: String,
    /// 1-based line and column of that field in the file, when it could be found.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for WorldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: {}: {}", self.field, self.message),
            _ => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The world file is not valid TOML or does not fit the world's shape; toml's message
    /// already names the line, column and field.
    #[error("invalid world file {origin}: {message}")]
    WorldSyntax { origin: String, message: String },
    #[error("invalid world file {origin}:\n{}", problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    WorldInvalid { origin: String, problems: Vec<WorldProblem> },
    #[error("invalid --generate spec {spec:?}: {message} (expected e.g. clusters=1000,registries=20,subscriptions=5)")]
    GenerateSpec { spec: String, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    #[error("cannot write {what}: {source}")]
    Output {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A live-state change asked through the library or the admin endpoint cannot be made.
    #[error("{0}")]
    State(String),
}
