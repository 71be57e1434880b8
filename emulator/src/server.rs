//! The HTTPS server: accepts loopback connections, terminates TLS, and runs every request
//! through the same pipeline (latency, fault rules, dispatch, common headers, ledger).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ring::hmac;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::faults::{FaultState, Fire};
use crate::http::{Reply, Req, arm_error, now_azure};
use crate::ledger::{DROPPED, Ledger};
use crate::route::{Route, Target, classify};
use crate::state::State;
use crate::throttle::Throttler;
use crate::{admin, arm, entra, graph, identity, kube, registry};

/// Everything a request handler may touch.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub faults: Mutex<FaultState>,
    pub ledger: Mutex<Ledger>,
    pub throttle: Mutex<Throttler>,
    pub signing_key: hmac::Key,
    /// `https://127.0.0.1:PORT`, the emulator's canonical base URL.
    pub endpoint: String,
    pub ca_pem: String,
    /// The CI token services' claims and the machine's managed identities.
    pub sign_in: crate::world::SignIn,
    /// Where the Azure Arc identity service writes the keys it challenges with.
    pub arc_key_directory: std::path::PathBuf,
    /// The world's cloud: which ARM audiences count, which resources Entra knows.
    pub cloud: crate::cloud::CloudName,
    /// List items turned into JSON for list answers (ARM and Resource Graph pages), so tests
    /// can count the work paging costs.
    pub rendered: AtomicU64,
}

// A handler that panicked must not take the emulator down with a poisoned lock: the state it
// left is still the best there is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
    pub fn faults(&self) -> MutexGuard<'_, FaultState> {
        lock(&self.faults)
    }
    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        lock(&self.ledger)
    }
    pub fn throttle(&self) -> MutexGuard<'_, Throttler> {
        lock(&self.throttle)
    }
}

/// Returned to hyper to close the connection without an answer (the `drop` fault).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

pub(crate) async fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(config);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _peer)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                connections.spawn(async move {
                    let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request| {
                        let shared = shared.clone();
                        async move { handle(shared, request).await }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        }
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

/// Whole answers, or a watch's stream.
type AnswerBody = Either<Full<Bytes>, kube::watch::WatchBody>;

/// The route of a request: a registry's data plane (found by Host or `/acr/`), else by path.
fn route_for(shared: &Shared, req: &Req, located: Option<&registry::Located>) -> Route {
    match located {
        Some(at) => {
            let (template, operation) = registry::ledger_names(&req.method, &at.rest);
            let subscription = shared
                .state()
                .registries
                .values()
                .find(|r| r.login_server == at.login_server)
                .map(|r| r.subscription.clone());
            Route {
                template,
                operation,
                family: None,
                subscription,
                cluster: None,
                registry: Some(at.login_server.clone()),
                target: Target::RegistryData { login_server: at.login_server.clone() },
            }
        }
        None => {
            let mut route = classify(&req.method, &req.segments);
            if matches!(route.target, Target::Kube { .. }) && kube::is_watch(req) {
                let rest: Vec<&str> = req.segments.iter().skip(4).map(String::as_str).collect();
                (route.template, route.operation) = kube::routes::ledger_names(&req.method, &rest, true);
            }
            route
        }
    }
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Response<AnswerBody>, Dropped> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()));
    // HTTP/2 clients send `:authority` instead of a Host header; both name the host.
    let base_url = host.as_ref().map(|h| format!("https://{h}")).unwrap_or_else(|| shared.endpoint.clone());
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let req = Req::from_parts(parts.method.as_str(), path_and_query, parts.headers, body, base_url);

    if req.segments.first().is_some_and(|s| s == "_emulator") {
        return Ok(respond(&req, admin::handle(&shared, &req)).map(Either::Left));
    }

    let located = {
        let state = shared.state();
        registry::locate(&state, host.as_deref(), &req.segments, &req.base_url)
    };
    let route = route_for(&shared, &req, located.as_ref());
    let delay = shared.faults().latency();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let target = route.cluster.as_deref().or(route.registry.as_deref());
    let fire = shared.faults().take(&req.method, route.template, route.operation, target);
    let is_entra =
        matches!(route.target, Target::Token { .. } | Target::OpenId { .. } | Target::Keys | Target::InstanceDiscovery);
    let is_kube = matches!(route.target, Target::Kube { .. });
    let is_registry = matches!(route.target, Target::RegistryData { .. });
    let reply = match fire {
        Some(Fire::Drop) => {
            record(&shared, &req, &route, DROPPED);
            return Err(Dropped);
        }
        Some(fire) if is_kube => kube_fault(&fire),
        Some(Fire::Throttle { retry_after_seconds }) if is_registry => registry::fault_reply(429, Some(retry_after_seconds)),
        Some(Fire::ServerError { status }) if is_registry => registry::fault_reply(status, None),
        Some(Fire::Throttle { retry_after_seconds }) => arm_error(
            429,
            "TooManyRequests",
            "The request is being throttled as the limit has been reached for operation type - 'Requests'. For more information, see - https://aka.ms/msdn-throttling",
        )
        .with_header("Retry-After", retry_after_seconds.to_string()),
        Some(Fire::ServerError { status }) if is_entra => Reply::json(
            status,
            &json!({"error": "temporarily_unavailable", "error_description": "AADSTS90033: A transient error has occurred. Please try again.", "error_codes": [90033]}),
        ),
        Some(Fire::ServerError { status }) => {
            let (code, what) = if status == 503 { ("ServiceUnavailable", "service unavailable") } else { ("InternalServerError", "internal server error") };
            arm_error(
                status,
                code,
                format!(
                    "Encountered {what}. Diagnostic information: timestamp '{}', tracking id '{}', request correlation id '{}'.",
                    now_azure(),
                    uuid::Uuid::new_v4(),
                    uuid::Uuid::new_v4()
                ),
            )
        }
        None => match &route.target {
            Target::Token { tenant } => entra::token(&shared, &req, tenant),
            Target::OpenId { tenant } => entra::openid_configuration(&shared, &req, tenant),
            Target::InstanceDiscovery => entra::instance_discovery(&req),
            Target::Keys => entra::keys(),
            Target::Metadata => arm::metadata(&req, shared.cloud),
            Target::GithubIdToken => identity::github(&shared, &req),
            Target::PipelinesIdToken => identity::pipelines(&shared, &req),
            Target::Imds => identity::imds(&shared, &req),
            Target::AppServiceIdentity => identity::app_service(&shared, &req),
            Target::ArcIdentity => identity::arc(&shared, &req),
            Target::Graph { rest } => graph::handle(&shared, &req, rest),
            Target::Kube { .. } if kube::is_watch(&req) => match kube::watch(&shared, &req, &route) {
                Ok(body) => {
                    record(&shared, &req, &route, 200);
                    let head = respond(&req, Reply { body: None, ..Reply::empty(200) });
                    let (mut parts, _) = head.into_parts();
                    parts.headers.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
                    return Ok(Response::from_parts(parts, Either::Right(body)));
                }
                Err(reply) => reply,
            },
            Target::Kube { .. } => kube::handle(&shared, &req, &route),
            Target::RegistryData { .. } => match &located {
                Some(at) => registry::handle(&shared, &req, at),
                None => arm::handle(&shared, &req, &route),
            },
            _ => arm::handle(&shared, &req, &route),
        },
    };
    record(&shared, &req, &route, reply.status);
    Ok(respond(&req, reply).map(Either::Left))
}

/// A fault as the Kubernetes API server words it (its throttling is API Priority and Fairness).
fn kube_fault(fire: &Fire) -> Reply {
    use crate::kube::status::Failure;
    let failure = match fire {
        Fire::Throttle { retry_after_seconds } => {
            let mut f = Failure::new(429, "TooManyRequests", "Too many requests, please try again later.")
                .with_details(json!({"retryAfterSeconds": retry_after_seconds}));
            f.retry_after = Some(*retry_after_seconds);
            f
        }
        Fire::ServerError { status: 503 } => {
            Failure::new(503, "ServiceUnavailable", "the server is currently unable to handle the request")
        }
        Fire::ServerError { status } => {
            Failure::new(*status, "InternalError", "Internal error occurred: injected fault")
                .with_details(json!({"causes": [{"message": "injected fault"}]}))
        }
        Fire::Drop => Failure::new(500, "InternalError", "dropped"),
    };
    failure.reply()
}

fn record(shared: &Shared, req: &Req, route: &Route, status: u16) {
    shared.ledger().record(&req.method, route, status);
}

fn respond(req: &Req, reply: Reply) -> Response<Full<Bytes>> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut builder = Response::builder()
        .status(reply.status)
        .header("x-ms-request-id", &request_id)
        .header("x-ms-correlation-request-id", &request_id)
        .header(
            "x-ms-routing-request-id",
            format!("LOCAL:{}:{}", now_azure().replace(['-', ':', '.'], ""), uuid::Uuid::new_v4()),
        )
        .header("Pragma", "no-cache")
        .header("Expires", "-1")
        .header("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        .header("X-Content-Type-Options", "nosniff");
    if !reply.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("cache-control")) {
        builder = builder.header("Cache-Control", "no-cache");
    }
    if let Some(client_id) = req.header("x-ms-client-request-id") {
        builder = builder.header("x-ms-client-request-id", client_id);
    }
    for (name, value) in &reply.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = match reply.body {
        Some(bytes) => {
            builder = builder.header("Content-Type", reply.content_type);
            Full::new(Bytes::from(bytes))
        }
        None => Full::new(Bytes::new()),
    };
    builder.body(body).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
