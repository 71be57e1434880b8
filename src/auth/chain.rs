//! `--auth auto`: the methods in order; the first that gets a token wins and keeps serving
//! every later request, as DefaultAzureCredential does.

use std::sync::{Arc, OnceLock};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};

use super::AuthMethod;

/// One method of the chain: its credential, or why it cannot be used here.
type Link = (AuthMethod, Result<Arc<dyn TokenCredential>, String>);

pub struct ChainCredential {
    links: Vec<Link>,
    chosen: OnceLock<usize>,
}

impl std::fmt::Debug for ChainCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainCredential").field("chosen", &self.chosen()).finish_non_exhaustive()
    }
}

impl ChainCredential {
    pub fn new(links: Vec<Link>) -> ChainCredential {
        ChainCredential { links, chosen: OnceLock::new() }
    }

    /// The method that signed in, once one has.
    pub fn chosen(&self) -> Option<AuthMethod> {
        self.chosen.get().map(|&i| self.links[i].0)
    }
}

/// The first line of an error and of each cause, joined: enough to see why, on one line.
fn reason(error: &Error) -> String {
    let mut text = error.to_string().lines().next().unwrap_or_default().to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let line = cause.to_string();
        let line = line.lines().next().unwrap_or_default();
        if !text.contains(line) {
            text.push_str(": ");
            text.push_str(line);
        }
        source = cause.source();
    }
    text
}

#[async_trait::async_trait]
impl TokenCredential for ChainCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        if let Some(&i) = self.chosen.get()
            && let (_, Ok(credential)) = &self.links[i]
        {
            return credential.get_token(scopes, options).await;
        }
        let mut report = Vec::new();
        for (i, (method, link)) in self.links.iter().enumerate() {
            let credential = match link {
                Ok(credential) => credential,
                Err(why) => {
                    tracing::debug!(method = method.name(), "sign-in method skipped: {why}");
                    report.push(format!("  {}: not used: {why}", method.name()));
                    continue;
                }
            };
            match credential.get_token(scopes, options.clone()).await {
                Ok(token) => {
                    let _ = self.chosen.set(i);
                    tracing::info!(method = method.name(), "signed in to Azure with {}", method.name());
                    return Ok(token);
                }
                Err(error) => {
                    let why = reason(&error);
                    tracing::debug!(method = method.name(), "sign-in method failed: {why}");
                    report.push(format!("  {}: failed: {why}", method.name()));
                }
            }
        }
        Err(Error::with_message(
            ErrorKind::Credential,
            format!("no sign-in method worked (--auth auto tried each in order):\n{}", report.join("\n")),
        ))
    }
}
