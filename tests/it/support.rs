//! Runs the real `acrlink` binary in a scratch directory and captures what it did.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (where Cargo.toml, examples/ and schemas/ are).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Output {
    /// The exit code; None when the process was killed by a signal (a crash).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Fails unless the run ended with `expected`, showing everything it printed.
    #[track_caller]
    pub fn assert_exit(&self, expected: i32) -> &Self {
        assert_eq!(self.code, Some(expected), "unexpected exit code\n{self}");
        self
    }

    /// Fails if the run panicked, crashed, or printed a Rust backtrace.
    #[track_caller]
    pub fn assert_no_panic(&self) -> &Self {
        assert!(self.code.is_some(), "killed by a signal (crash)\n{self}");
        assert_ne!(self.code, Some(101), "exit code 101 is a Rust panic\n{self}");
        let all = format!("{}\n{}", self.stdout, self.stderr);
        for sign in ["panicked", "RUST_BACKTRACE", "stack backtrace", "internal error"] {
            assert!(!all.contains(sign), "output contains {sign:?}\n{self}");
        }
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{self}"))
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// A fresh temporary working directory to run acrlink in.
pub struct Sandbox {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox { dir: tempfile::tempdir().expect("create a temp dir"), env: Vec::new() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file in the sandbox and returns its absolute path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dirs");
        }
        std::fs::write(&path, contents).expect("write a sandbox file");
        path
    }

    /// Sets an environment variable for later runs.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs `acrlink ARGS` with the sandbox as working directory and a clean environment
    /// (no colour or config variables inherited from whoever runs the tests).
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(env!("CARGO_BIN_EXE_acrlink"));
        command.args(args).current_dir(self.dir.path());
        for var in ["NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "ACRLINK_CONFIG", "ACRLINK_LOG", "RUST_LOG", "TERM"] {
            command.env_remove(var);
        }
        // Were there a panic, its message and backtrace would show; the tests look for them.
        command.env("RUST_BACKTRACE", "1");
        // Kept kubeconfigs stay in the sandbox, never in the user's cache.
        command.env("ACRLINK_CACHE_DIR", self.dir.path().join(".cache"));
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let output = command.output().expect("run the acrlink binary");
        Output {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs `acrlink ARGS` in a fresh sandbox.
pub fn acrlink<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Sandbox::new().run(args)
}

/// The files of a repository directory with one of `extensions`, sorted.
pub fn files_in(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| extensions.contains(&e)))
        .collect();
    files.sort();
    files
}

/// TOML text as a JSON value (the data model both file formats share).
pub fn toml_to_json(text: &str) -> serde_json::Value {
    toml::from_str(text).expect("TOML parses")
}

/// The same document as YAML, as a user converting their file would write it.
pub fn json_to_yaml(value: &serde_json::Value) -> String {
    serde_saphyr::to_string(value).expect("YAML serialises")
}

/// The emulator running in-process (so tests can read its ledger, inject faults and change
/// state behind acrlink's back), with the runtime that serves it.
pub struct Emulated {
    emulator: Option<acrlink_emulator::Emulator>,
    pub runtime: tokio::runtime::Runtime,
}

impl Emulated {
    pub fn start(world: &str) -> Emulated {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let world = acrlink_emulator::World::from_toml_str(world).expect("a valid world");
        let emulator = runtime
            .block_on(acrlink_emulator::Emulator::start(world, "127.0.0.1:0".parse().unwrap()))
            .expect("emulator starts");
        Emulated { emulator: Some(emulator), runtime }
    }

    pub fn emulator(&self) -> &acrlink_emulator::Emulator {
        self.emulator.as_ref().expect("running")
    }

    /// A sandbox holding `config` as acrlink.toml, with the environment that targets the emulator.
    pub fn sandbox_with(&self, config: &str) -> Sandbox {
        let mut sandbox = Sandbox::new();
        for (key, value) in self.emulator().env() {
            sandbox = sandbox.env(&key, &value);
        }
        sandbox = sandbox.env("ACRLINK_RETRY_BUDGET_SECONDS", "60").env("ACRLINK_ARM_REQUESTS_PER_SECOND", "1000");
        write_config(sandbox.path(), config);
        sandbox
    }
}

/// The file the demo's service-principal binding names for its client secret.
const DEMO_PARTNER_SECRET_FILE: &str = "partner-puller.secret";

/// Writes `config` as DIR/acrlink.toml. The demo's service-principal binding reads its secret
/// from a file beside the config (examples/demo/partner-puller.secret): a directory holding
/// that config gets it too, as the demo's own directory has it.
pub fn write_config(dir: &Path, config: &str) {
    std::fs::write(dir.join("acrlink.toml"), config).expect("write acrlink.toml");
    if config.contains(&format!("client_secret_file = \"{DEMO_PARTNER_SECRET_FILE}\"")) {
        let secret = std::fs::read(repo_root().join("examples/demo").join(DEMO_PARTNER_SECRET_FILE)).unwrap();
        std::fs::write(dir.join(DEMO_PARTNER_SECRET_FILE), secret).expect("write the partner's secret");
    }
}

impl Drop for Emulated {
    fn drop(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            self.runtime.block_on(emulator.shutdown());
        }
    }
}
