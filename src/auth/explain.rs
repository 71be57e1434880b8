//! Sign-in failures told so a person can act on them: which host refused, Entra's AADSTS code,
//! what it means and what to check. azure_identity's own messages bury the code, and for
//! Entra's real answers (whose descriptions carry `\r\n`) fail to read the body at all and
//! quote it whole inside a deserialisation error.

use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};

/// Entra's sign-in errors acrlink has advice for (`AADSTS<code>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntraCode {
    WrongSecret,
    ExpiredSecret,
    UnknownTenant,
    UnknownClient,
    NoFederatedMatch,
    AssertionOutOfTime,
    Other,
}

impl EntraCode {
    fn of(code: u32) -> EntraCode {
        match code {
            7000215 => EntraCode::WrongSecret,
            7000222 => EntraCode::ExpiredSecret,
            90002 => EntraCode::UnknownTenant,
            700016 => EntraCode::UnknownClient,
            70021 | 700211 | 700212 | 700213 => EntraCode::NoFederatedMatch,
            700024 => EntraCode::AssertionOutOfTime,
            _ => EntraCode::Other,
        }
    }

    fn advice(self) -> Option<&'static str> {
        Some(match self {
            EntraCode::WrongSecret => {
                "the client secret is wrong: set AZURE_CLIENT_SECRET to the secret's value (not its id) from the app registration"
            }
            EntraCode::ExpiredSecret => "the client secret has expired: create a new one and set AZURE_CLIENT_SECRET",
            EntraCode::UnknownTenant => {
                "no such tenant: check AZURE_TENANT_ID (or azure.tenant_id in the file) and azure.cloud"
            }
            EntraCode::UnknownClient => {
                "no such application in this tenant: check AZURE_CLIENT_ID, and that AZURE_TENANT_ID is the tenant it is registered in"
            }
            EntraCode::NoFederatedMatch => {
                "no federated credential of the application matches the token's issuer, subject and audience: check them (the subject is case-sensitive)"
            }
            EntraCode::AssertionOutOfTime => "the assertion is expired or not yet valid: check this machine's clock",
            EntraCode::Other => return None,
        })
    }
}

/// A refused sign-in told with what it means: `told` carries the advice for Entra's code too,
/// for callers that print one line; `bare` and `advice` apart, for callers that print a hint.
#[derive(Debug, thiserror::Error)]
#[error("{told}")]
pub struct SignInRefused {
    told: String,
    bare: String,
    advice: Option<&'static str>,
}

/// A sign-in error acrlink has advice for: the error without it, and the advice.
pub fn advice(error: &Error) -> Option<(&str, &'static str)> {
    let refused = error.downcast_ref::<SignInRefused>()?;
    Some((refused.bare.as_str(), refused.advice?))
}

/// A credential whose failures name `host` (the authority) and explain Entra's code.
pub struct Explained {
    inner: Arc<dyn TokenCredential>,
    host: String,
}

impl std::fmt::Debug for Explained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Explained").field("host", &self.host).finish_non_exhaustive()
    }
}

impl Explained {
    /// `authority` is the authority host URL (`https://login.microsoftonline.com/`).
    pub fn wrap(inner: Arc<dyn TokenCredential>, authority: &str) -> Arc<dyn TokenCredential> {
        let host = authority.split("://").nth(1).unwrap_or(authority).trim_end_matches('/').to_string();
        Arc::new(Explained { inner, host })
    }
}

#[async_trait::async_trait]
impl TokenCredential for Explained {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.inner.get_token(scopes, options).await.map_err(|error| explain(&error, &self.host))
    }
}

/// The error and its causes on one line.
fn chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `AADSTS<code>: <description>` found in an error's text, description cut at its first line.
fn entra_error(text: &str) -> Option<(u32, String)> {
    let at = text.find("AADSTS")? + "AADSTS".len();
    let digits: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    let code = digits.parse().ok()?;
    let rest = text[at + digits.len()..].trim_start_matches(':').trim_start();
    let end = ["\\r\\n", "\r\n", "\n", "\""].iter().filter_map(|stop| rest.find(stop)).min().unwrap_or(rest.len());
    let description: String = rest[..end].trim().chars().take(300).collect();
    Some((code, description))
}

fn explain(error: &Error, host: &str) -> Error {
    let text = chain(error);
    let refused = match entra_error(&text) {
        Some((code, description)) => {
            let head = format!("Entra ID at {host} refused the sign-in with AADSTS{code}");
            let advice = EntraCode::of(code).advice();
            let told = advice.map_or_else(|| head.clone(), |advice| format!("{head} ({advice})"));
            let tail = |text: String| if description.is_empty() { text } else { format!("{text}: {description}") };
            SignInRefused { told: tail(told), bare: tail(head), advice }
        }
        None if matches!(error.kind(), ErrorKind::Io) => {
            let told = format!("cannot reach Entra ID at {host}: {}", text.lines().next().unwrap_or_default());
            SignInRefused { bare: told.clone(), told, advice: None }
        }
        None => {
            let told = format!("signing in at {host} failed: {text}");
            SignInRefused { bare: told.clone(), told, advice: None }
        }
    };
    Error::new(ErrorKind::Credential, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entra_code_and_first_line_of_its_description_are_found() {
        let text = r#"ClientSecretCredential authentication failed. invalid type: string "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1", expected a borrowed string"#;
        assert_eq!(entra_error(text), Some((7000215, "Invalid client secret provided.".to_string())));
        assert_eq!(
            entra_error("AADSTS90002: Tenant 'x' not found.\r\nTrace ID: 1"),
            Some((90002, "Tenant 'x' not found.".into()))
        );
        assert_eq!(entra_error("no code here"), None);
        assert_eq!(EntraCode::of(700016), EntraCode::UnknownClient);
        assert!(EntraCode::of(1).advice().is_none());
    }
}
