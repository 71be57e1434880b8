//! Where an Entra-integrated cluster's API server is, kept between runs so that a plan does not
//! spend an ARM write (`listClusterUserCredential` is a POST) per cluster per run. Only
//! kubeconfigs whose user runs an exec plugin (kubelogin) are kept: they hold the server's URL
//! and CA and no credential (acrlink brings the Entra token itself). A local-account
//! kubeconfig, which holds a credential, is never written. Entries are keyed by the ARM
//! endpoint and the cluster's resource id, and dropped when the server refuses the TLS
//! connection or the token (the cluster moved, its CA rotated, it lost Entra integration).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct KubeconfigCache {
    dir: PathBuf,
}

impl KubeconfigCache {
    pub fn new(dir: &Path) -> KubeconfigCache {
        KubeconfigCache { dir: dir.join("kubeconfigs") }
    }

    fn path(&self, arm_endpoint: &str, cluster_id: &str) -> PathBuf {
        let key =
            format!("{}|{}", arm_endpoint.trim_end_matches('/').to_ascii_lowercase(), cluster_id.to_ascii_lowercase());
        let digest: String = Sha256::digest(key.as_bytes())[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{digest}.json"))
    }

    /// The kept kubeconfig of a cluster, if any (an unreadable entry counts as none).
    pub fn load(&self, arm_endpoint: &str, cluster_id: &str) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.path(arm_endpoint, cluster_id)).ok()?;
        let entry: serde_json::Value = serde_json::from_str(&text).ok()?;
        let same = entry["cluster_id"].as_str().is_some_and(|id| id.eq_ignore_ascii_case(cluster_id));
        let kubeconfig = entry.get("kubeconfig")?;
        (same && holds_no_credential(kubeconfig)).then(|| kubeconfig.clone())
    }

    /// Keeps a kubeconfig that holds no credential; anything else is not written.
    pub fn store(&self, arm_endpoint: &str, cluster_id: &str, kubeconfig: &serde_json::Value) {
        if !holds_no_credential(kubeconfig) {
            return;
        }
        let entry = serde_json::json!({ "cluster_id": cluster_id, "kubeconfig": kubeconfig });
        let path = self.path(arm_endpoint, cluster_id);
        // Write then rename, so a concurrent run never reads half a file.
        let temporary = path.with_extension(format!("{}.tmp", std::process::id()));
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(&temporary, entry.to_string()))
            .and_then(|()| std::fs::rename(&temporary, &path));
        if let Err(error) = written {
            tracing::debug!(%error, "cannot keep the cluster's kubeconfig; it is fetched again next run");
            let _ = std::fs::remove_file(&temporary);
        }
    }

    pub fn forget(&self, arm_endpoint: &str, cluster_id: &str) {
        let _ = std::fs::remove_file(self.path(arm_endpoint, cluster_id));
    }
}

/// Every user runs an exec plugin and none carries a token, a password, a client key or a
/// client certificate.
pub fn holds_no_credential(kubeconfig: &serde_json::Value) -> bool {
    let Some(users) = kubeconfig["users"].as_array() else { return false };
    let secret_fields = ["token", "tokenFile", "password", "client-key-data", "client-key", "client-certificate-data"];
    !users.is_empty()
        && users.iter().all(|u| {
            let user = &u["user"];
            user.get("exec").is_some_and(|e| !e.is_null()) && secret_fields.iter().all(|f| user.get(*f).is_none())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entra() -> serde_json::Value {
        serde_json::json!({
            "clusters": [{"name": "c", "cluster": {"server": "https://c:443", "certificate-authority-data": "Q0E="}}],
            "users": [{"name": "u", "user": {"exec": {"command": "kubelogin", "args": ["get-token"]}}}],
        })
    }

    #[test]
    fn keeps_entra_kubeconfigs_and_never_one_with_a_credential() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KubeconfigCache::new(dir.path());
        let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c";
        cache.store("https://arm", id, &entra());
        assert_eq!(cache.load("https://arm", &id.to_uppercase()), Some(entra()));
        assert_eq!(cache.load("https://other-arm", id), None, "keyed by the ARM endpoint too");
        cache.forget("https://arm", id);
        assert_eq!(cache.load("https://arm", id), None);

        let mut local = entra();
        local["users"][0]["user"] =
            serde_json::json!({ "client-key-data": "S0VZ", "client-certificate-data": "Q0VSVA==" });
        cache.store("https://arm", id, &local);
        assert_eq!(cache.load("https://arm", id), None, "a credential is never written");
        assert!(std::fs::read_dir(dir.path().join("kubeconfigs")).unwrap().next().is_none());
    }
}
