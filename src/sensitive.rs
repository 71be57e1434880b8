//! Secret values (registry passwords, tokens, pull-secret payloads) travel only inside
//! `Sensitive`, which cannot be printed, logged, serialized or shown in a panic message, and
//! leave it only through `expose`, at the one place that must send them.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    pub fn new(value: T) -> Self {
        Sensitive(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<sensitive>")
    }
}

/// A keyed digest of a credential, safe to store on the Secret and in plans: it tells whether a
/// credential changed without revealing it. Keyed (and domain-separated per registry) so it
/// cannot be matched against plain hashes from elsewhere; registry passwords are long random
/// strings, so it cannot be guessed back either.
pub fn fingerprint(login_server: &str, username: &str, password: &Sensitive<String>) -> String {
    let key = format!("acrlink credential fingerprint v1 {}", login_server.to_ascii_lowercase());
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(username.as_bytes());
    mac.update(b"\0");
    mac.update(password.expose().as_bytes());
    let digest = mac.finalize().into_bytes();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_and_fingerprints_are_stable_and_keyed() {
        let password = Sensitive::new("canary-Pa55word".to_string());
        assert_eq!(format!("{password:?}"), "<sensitive>");
        assert_eq!(format!("{:?}", Some(&password)), "Some(<sensitive>)");
        let a = fingerprint("a.azurecr.io", "a", &password);
        assert_eq!(a, fingerprint("A.azurecr.io", "a", &password));
        assert_eq!(a.len(), 32);
        assert_ne!(a, fingerprint("b.azurecr.io", "a", &password));
        assert_ne!(a, fingerprint("a.azurecr.io", "b", &password));
        assert_ne!(a, fingerprint("a.azurecr.io", "a", &Sensitive::new("other".into())));
        assert!(!a.contains("canary"));
    }
}
