//! The `.dockerconfigjson` payload of a pull Secret and the annotation that describes it
//! without revealing it. Building and reading the payload are the only places a registry
//! password is handled in the clear, and only in memory.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::model::{CredentialKind, PasswordSlot};
use crate::sensitive::{Sensitive, fingerprint};

/// One registry's credential, ready to write.
#[derive(Debug, Clone)]
pub struct Credential {
    pub username: String,
    pub password: Sensitive<String>,
}

impl Credential {
    pub fn fingerprint(&self, login_server: &str) -> String {
        fingerprint(login_server, &self.username, &self.password)
    }
}

/// What the Secret's `acrlink.io/credentials` annotation says of one registry's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialNote {
    pub kind: CredentialKind,
    pub username: String,
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<PasswordSlot>,
    /// When ACR made the token password (tells a regeneration behind acrlink's back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

impl CredentialNote {
    /// A note of `kind` for `username`, with only the fingerprint of its password.
    pub fn new(kind: CredentialKind, username: &str, fingerprint: String) -> CredentialNote {
        CredentialNote {
            kind,
            username: username.to_string(),
            fingerprint,
            token: None,
            slot: None,
            created: None,
            expires: None,
        }
    }
}

pub type Notes = BTreeMap<String, CredentialNote>;

pub fn parse_notes(annotation: Option<&String>) -> Notes {
    annotation.and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default()
}

pub fn render_notes(notes: &Notes) -> String {
    serde_json::to_string(notes).unwrap_or_default()
}

/// `{"auths": {login: {username, password, auth}}}`, as `kubectl create secret docker-registry` writes it.
pub fn build(credentials: &BTreeMap<String, Credential>) -> Sensitive<String> {
    let auths: serde_json::Map<String, serde_json::Value> = credentials
        .iter()
        .map(|(login, c)| {
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password.expose()));
            (login.clone(), serde_json::json!({"username": c.username, "password": c.password.expose(), "auth": auth}))
        })
        .collect();
    Sensitive::new(serde_json::json!({ "auths": auths }).to_string())
}

/// The credentials in a live payload, by login server; entries that cannot be read are left out.
pub fn parse(payload: &Sensitive<Vec<u8>>) -> BTreeMap<String, Credential> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(payload.expose()) else {
        return BTreeMap::new();
    };
    let Some(auths) = value.get("auths").and_then(|a| a.as_object()) else {
        return BTreeMap::new();
    };
    auths
        .iter()
        .filter_map(|(login, entry)| {
            let from_fields = entry["username"].as_str().zip(entry["password"].as_str());
            let credential = match from_fields {
                Some((user, password)) => {
                    Credential { username: user.into(), password: Sensitive::new(password.into()) }
                }
                None => {
                    let decoded = base64::engine::general_purpose::STANDARD.decode(entry["auth"].as_str()?).ok()?;
                    let text = String::from_utf8(decoded).ok()?;
                    let (user, password) = text.split_once(':')?;
                    Credential { username: user.into(), password: Sensitive::new(password.into()) }
                }
            };
            Some((login.to_ascii_lowercase(), credential))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_what_kubectl_writes() {
        let credential = Credential { username: "tok".into(), password: Sensitive::new("s3cret".into()) };
        let built = build(&BTreeMap::from([("a.azurecr.io".to_string(), credential.clone())]));
        let parsed = parse(&Sensitive::new(built.expose().as_bytes().to_vec()));
        assert_eq!(parsed["a.azurecr.io"].password.expose(), "s3cret");
        // kubectl create secret docker-registry writes username, password and auth; some tools only auth.
        let only_auth = br#"{"auths":{"B.azurecr.io":{"auth":"dXNlcjpwYTpzcw=="}}}"#.to_vec();
        let parsed = parse(&Sensitive::new(only_auth));
        assert_eq!(parsed["b.azurecr.io"].username, "user");
        assert_eq!(parsed["b.azurecr.io"].password.expose(), "pa:ss");
        assert!(parse(&Sensitive::new(b"not json".to_vec())).is_empty());
        assert_eq!(
            credential.fingerprint("a.azurecr.io"),
            parse(&Sensitive::new(built.expose().as_bytes().to_vec()))["a.azurecr.io"].fingerprint("a.azurecr.io")
        );
    }
}
