//! Real clients the tests drive (az CLI, kubectl): where to find them, and the rule that a
//! missing one fails the test unless the developer explicitly opts out (CI never does).

use std::path::PathBuf;
use std::process::Command;

/// A directory removed on drop (no tempfile crate in the tree).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        use std::time::{SystemTime, UNIX_EPOCH};
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The client at `path`, which must run (else the test fails, saying how to fix it).
pub fn require_at(what: &str, path: &str, skip_var: &str, version_args: &[&str]) -> Option<PathBuf> {
    let program = PathBuf::from(path);
    let runs = Command::new(&program).args(version_args).output().is_ok_and(|o| o.status.success());
    assert!(runs, "{what} at {path} does not run; set {skip_var}=1 to skip these tests on purpose");
    Some(program)
}

/// The client to run: the path in `path_var` if set, else `default` on PATH. `None` only when
/// `skip_var=1` is set; a client that cannot run otherwise fails the test, saying how to fix it.
pub fn require(what: &str, path_var: &str, default: &str, skip_var: &str, version_args: &[&str]) -> Option<PathBuf> {
    if std::env::var(skip_var).is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED by {skip_var}=1: {what} tests");
        return None;
    }
    let program = std::env::var_os(path_var).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default));
    let runs = Command::new(&program).args(version_args).output().is_ok_and(|o| o.status.success());
    assert!(
        runs,
        "{what} is required for this test but `{} {}` does not run. Install it (CI: .ci/run does), \
         point {path_var} at it, or set {skip_var}=1 to skip these tests on purpose.",
        program.display(),
        version_args.join(" ")
    );
    Some(program)
}
