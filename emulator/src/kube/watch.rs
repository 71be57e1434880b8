//! Watches (`?watch=true`): newline-delimited `{"type","object"}` events over a chunked
//! answer. From `resourceVersion=N` the store's recent history is replayed first (too old:
//! an `ERROR` event with 410 Expired, as the apiserver sends); without one (or `0`) every
//! current object comes as `ADDED`. The stream ends after `timeoutSeconds` (default 30 min),
//! when the client goes away, or when the emulator stops.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::objects::Call;
use super::select::Selector;
use super::status::Failure;
use super::store::{Change, Store};

/// The answer body of a watch: chunks as the watch task produces them.
pub(crate) struct WatchBody {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for WatchBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.rx.poll_recv(cx).map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

struct Filter {
    plural: &'static str,
    namespace: String,
    name: String,
    selector: Selector,
}

impl Filter {
    fn matches(&self, change: &Change) -> bool {
        change.plural == self.plural
            && (self.namespace.is_empty() || change.namespace == self.namespace)
            && (self.name.is_empty() || change.object["metadata"]["name"] == self.name.as_str())
            && self.selector.matches(&change.object)
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

/// Starts a watch on `store`; the caller holds the state lock, so nothing is missed between
/// the replay and the live feed.
pub(crate) fn start(store: &Store, call: &Call<'_>) -> Result<WatchBody, Failure> {
    let selector = Selector::parse(call.res, call.req.query("labelSelector"), call.req.query("fieldSelector"))?;
    let filter = Filter {
        plural: call.res.plural,
        namespace: call.namespace.to_string(),
        name: call.name.to_string(),
        selector,
    };
    let mut initial = Vec::new();
    match call.req.query("resourceVersion").filter(|v| !v.is_empty() && *v != "0") {
        None => {
            let namespace = if call.namespace.is_empty() { None } else { Some(call.namespace) };
            for object in store.list(call.res, namespace) {
                let mut object = object.clone();
                object["kind"] = json!(call.res.kind);
                object["apiVersion"] = json!("v1");
                let change = Change {
                    revision: 0,
                    plural: call.res.plural,
                    namespace: object["metadata"]["namespace"].as_str().unwrap_or_default().to_string(),
                    kind: "ADDED",
                    object,
                };
                if filter.matches(&change) {
                    initial.push(line("ADDED", &change.object));
                }
            }
        }
        Some(text) => {
            let from: u64 =
                text.parse().map_err(|_| super::status::bad_request(format!("invalid resource version: {text}")))?;
            let oldest = store.history.front().map(|c| c.revision).unwrap_or(store.revision + 1);
            if from + 1 < oldest && from < store.revision {
                initial.push(line(
                    "ERROR",
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": format!("too old resource version: {from} ({})", oldest - 1), "reason": "Expired", "code": 410}),
                ));
            } else {
                for change in store.history.iter().filter(|c| c.revision > from && filter.matches(c)) {
                    initial.push(line(change.kind, &change.object));
                }
            }
        }
    }
    let expired = initial.first().is_some_and(|b| b.starts_with(b"{\"object\":{\"apiVersion\":\"v1\",\"code\":410"));
    let live = store.changes.subscribe();
    let timeout = call.req.query("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).unwrap_or(1800);
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(feed(tx, initial, live, filter, Duration::from_secs(timeout), expired));
    Ok(WatchBody { rx })
}

async fn feed(
    tx: mpsc::Sender<Bytes>,
    initial: Vec<Bytes>,
    mut live: broadcast::Receiver<Arc<Change>>,
    filter: Filter,
    timeout: Duration,
    expired: bool,
) {
    for chunk in initial {
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
    if expired {
        return;
    }
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = tx.closed() => return,
            received = live.recv() => match received {
                Ok(change) if filter.matches(&change) => {
                    if tx.send(line(change.kind, &change.object)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                // A watcher too slow for the feed is ended, as the apiserver ends slow watches.
                Err(_) => return,
            },
        }
    }
}
