//! Records the git commit acrlink is built from, for `acrlink --version`: the short hash of
//! HEAD in a git checkout of this crate, "unknown" anywhere else (a source tarball, a crates.io
//! download, a machine without git). Never fails the build.
//!
//! Cargo reruns this script when HEAD moves: it watches `HEAD` and the ref HEAD points to (or
//! `packed-refs`), each only if it exists (cargo treats a missing watched path as always
//! changed, which would rebuild on every run).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = match checkout(&manifest_dir) {
        Some(checkout) => {
            for path in checkout.watched() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
            checkout.short_head().unwrap_or_else(|| "unknown".into())
        }
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=ACRLINK_GIT_COMMIT={commit}");
}

/// The git checkout whose top level is this crate's directory (not one merely above it).
struct Checkout {
    dir: PathBuf,
    git_dir: PathBuf,
    common_dir: PathBuf,
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn checkout(dir: &Path) -> Option<Checkout> {
    let top = PathBuf::from(git(dir, &["rev-parse", "--show-toplevel"])?);
    // A tarball unpacked inside some other repository must not report that repository's commit.
    if top.canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    let absolute = |p: String| {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { dir.join(p) }
    };
    let git_dir = absolute(git(dir, &["rev-parse", "--git-dir"])?);
    let common_dir = git(dir, &["rev-parse", "--git-common-dir"]).map(absolute).unwrap_or_else(|| git_dir.clone());
    Some(Checkout { dir: dir.to_path_buf(), git_dir, common_dir })
}

impl Checkout {
    fn short_head(&self) -> Option<String> {
        git(&self.dir, &["rev-parse", "--short", "HEAD"])
    }

    /// HEAD, the ref it points to (loose, in a worktree's common directory) and packed-refs:
    /// those that exist.
    fn watched(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.git_dir.join("HEAD")];
        if let Some(reference) = git(&self.dir, &["symbolic-ref", "-q", "HEAD"]) {
            paths.push(self.git_dir.join(&reference));
            paths.push(self.common_dir.join(&reference));
        }
        paths.push(self.common_dir.join("packed-refs"));
        paths.sort();
        paths.dedup();
        paths.retain(|p| p.is_file());
        paths
    }
}
