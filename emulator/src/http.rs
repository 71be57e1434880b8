//! Request and reply values shared by every emulated service, plus Azure's wire helpers:
//! both ARM error envelopes, Azure timestamps, query encoding and `nextLink` paging.

use bytes::Bytes;
use hyper::HeaderMap;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::ids::percent_decode;

/// A fully read request, with the path split into decoded segments.
pub struct Req {
    pub method: String,
    /// The raw path as sent (for nextLink and error messages).
    pub path: String,
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// `https://host:port` as the client addressed us; links in answers point here.
    pub base_url: String,
}

impl Req {
    pub fn from_parts(method: &str, path_and_query: &str, headers: HeaderMap, body: Bytes, base_url: String) -> Req {
        let (path, raw_query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, q),
            None => (path_and_query, ""),
        };
        let segments = path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
        let query =
            form_urlencoded::parse(raw_query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        Req { method: method.to_ascii_uppercase(), path: path.to_string(), segments, query, headers, body, base_url }
    }

    /// A query parameter by name, ignoring the case of the name (ARM does).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json_body(&self) -> Result<Value, String> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| e.to_string())
    }
}

/// What a handler answers; the server adds the common headers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Vec<u8>>,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(status: u16, value: &Value) -> Reply {
        Reply {
            status,
            body: Some(serde_json::to_vec(value).unwrap_or_default()),
            content_type: "application/json; charset=utf-8",
            headers: Vec::new(),
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply { status, body: None, content_type: "application/json; charset=utf-8", headers: Vec::new() }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// ARM's standard error envelope: `{"error":{"code","message"}}`.
pub fn arm_error(status: u16, code: &str, message: impl Into<String>) -> Reply {
    Reply::json(status, &json!({"error": {"code": code, "message": message.into()}}))
}

/// The flat envelope some resource providers (AKS) send: `{"code","message"}` with no wrapper.
pub fn flat_error(status: u16, code: &str, message: impl Into<String>) -> Reply {
    Reply::json(status, &json!({"code": code, "message": message.into(), "details": []}))
}

/// Azure's timestamp form, with seven fractional digits: `2021-06-15T21:38:26.1537861Z`.
pub fn azure_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.nanosecond() / 100
    )
}

pub fn now_azure() -> String {
    azure_time(OffsetDateTime::now_utc())
}

pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// Percent-encodes a query value, leaving the characters Azure leaves readable (`$`, `'`, `(`).
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~'()*$:@/,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Cuts a list into pages: the page the request's `$skiptoken` points at, and a `nextLink`
/// to the next one on the emulator's own host, keeping every other query parameter.
pub fn page(req: &Req, items: Vec<Value>, page_size: usize) -> Result<Value, Reply> {
    page_of(req, items.into_iter(), page_size, |item| item)
}

/// The offset a request's `$skiptoken` asks for (0 without one).
fn skip_offset(req: &Req) -> Result<usize, Reply> {
    match req.query("$skiptoken") {
        None => Ok(0),
        Some(token) => token
            .parse::<usize>()
            .map_err(|_| arm_error(400, "InvalidSkipToken", format!("The skip token '{token}' is not valid."))),
    }
}

/// [`page`] over a lazy list: items before the page are skipped unrendered, only the page's
/// items go through `render`, and one more item is looked at to know whether a next page exists.
pub fn page_of<T>(
    req: &Req,
    items: impl Iterator<Item = T>,
    page_size: usize,
    render: impl FnMut(T) -> Value,
) -> Result<Value, Reply> {
    let offset = skip_offset(req)?;
    let mut rest = items.skip(offset);
    let page: Vec<Value> = rest.by_ref().take(page_size.max(1)).map(render).collect();
    let next = offset + page.len();
    let more = rest.next().is_some();
    let mut body = json!({ "value": page });
    if more {
        body["nextLink"] = json!(next_link(req, next));
    }
    Ok(body)
}

/// The same request's URL on the emulator's own host with `$skiptoken` at `next`, keeping
/// every other query parameter (ARM's `nextLink`, Graph's `@odata.nextLink`).
pub fn next_link(req: &Req, next: usize) -> String {
    let mut query: Vec<String> = req
        .query
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
        .map(|(k, v)| format!("{k}={}", encode_query_value(v)))
        .collect();
    query.push(format!("$skiptoken={next}"));
    format!("{}{}?{}", req.base_url, req.path, query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_time_has_seven_fraction_digits() {
        let at =
            OffsetDateTime::from_unix_timestamp_nanos(1_623_792_706_153_786_100).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(azure_time(at), "2021-06-15T21:31:46.1537861Z");
    }

    #[test]
    fn query_values_keep_odata_readable() {
        assert_eq!(encode_query_value("atScope() and assignedTo('x')"), "atScope()%20and%20assignedTo('x')");
    }
}
