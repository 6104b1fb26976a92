//! The daemon's HTTP listener on `metrics.listen`: `/metrics` (Prometheus text), `/healthz`
//! (the process is alive), `/readyz` (every flow running, connected, and progressing or idle;
//! otherwise 503 with one line per flow saying why), `/status` (flows as JSON, read by
//! `hubmirror status`), and the offset-translation store for the inspection commands while
//! this process holds it (`/store/checkpoints`, `/store/translate`, `/store/reverse`,
//! `/store/both-ways`, and `/store/sync`, which reads a flow's segments topic to its end into
//! the store before the command asks the others).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use prometheus::{Encoder, TextEncoder};

use crate::metrics::Metrics;
use crate::segments::{self, CaughtUp, Readable};
use crate::shutdown::CancellationToken;
use crate::status::Registry;
use crate::store::{PartitionKey, Resume, Store, StoreError, StoredCheckpoint, Translation};
use serde::Deserialize;

/// What the handlers read.
#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    flows: Registry,
    store: Store,
    /// Every flow's segments topic, for `/store/sync`.
    segments: Arc<Vec<Readable>>,
}

/// How long `/store/sync` may read (the commands wait 10 s for an answer).
const SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// `/store/sync?source=S&target=T`.
#[derive(Debug, Deserialize)]
pub struct FlowQuery {
    /// Flow source alias.
    pub source: String,
    /// Flow target alias.
    pub target: String,
}

/// One flow partition and an offset on it, as the `/store/translate` and `/store/reverse`
/// query strings carry them.
#[derive(Debug, Deserialize)]
pub struct OffsetQuery {
    /// Flow source alias.
    pub source: String,
    /// Flow target alias.
    pub target: String,
    /// Source topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The offset to translate (upstream for translate, downstream for reverse).
    pub offset: i64,
}

/// `/store/both-ways`: [`OffsetQuery`] and the topic the flow back copies into it.
#[derive(Debug, Deserialize)]
pub struct BothWaysQuery {
    /// Flow source alias.
    pub source: String,
    /// Flow target alias.
    pub target: String,
    /// Source topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The group's offset on the source.
    pub offset: i64,
    /// The topic on the target whose copies the flow back writes into `topic`.
    pub back_topic: String,
}

/// `/store/checkpoints?group=G`.
#[derive(Debug, Deserialize)]
pub struct GroupQuery {
    /// Only this group's checkpoints, when given.
    pub group: Option<String>,
}

/// Binds `addr`: the one step of serving that can fail, done before anything else starts.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// While the daemon waits for its first Entra ID tokens (before any client or flow exists):
/// serves `/healthz` and a `/readyz` that says what it waits for, on a second handle of
/// `listener`'s socket, until `done`. The listener itself stays open for [`serve`].
pub fn serve_while_starting(
    listener: &tokio::net::TcpListener,
    done: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let spare = socket2::SockRef::from(listener).try_clone()?;
    let std: std::net::TcpListener = spare.into();
    std.set_nonblocking(true)?;
    let spare = tokio::net::TcpListener::from_std(std)?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|| async {
                let mut lines = vec!["not ready".to_string()];
                for c in crate::entra::cell::statuses() {
                    if c.expires_at.is_none() {
                        lines.push(format!(
                            "cluster '{}': waiting for its first Entra ID token{}",
                            c.alias,
                            c.unavailable
                                .map(|why| format!(": {why}"))
                                .unwrap_or_default()
                        ));
                    }
                }
                (StatusCode::SERVICE_UNAVAILABLE, lines.join("\n") + "\n")
            }),
        );
    Ok(tokio::spawn(async move {
        let served = axum::serve(spare, app)
            .with_graceful_shutdown(async move { done.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!("HTTP listener failed: {e}");
        }
    }))
}

/// Serves on `listener` (from [`bind`]) until `shutdown`; `segments` are the flows' segments
/// topics `/store/sync` reads.
pub fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    flows: Registry,
    (store, segments): (Store, Vec<Readable>),
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/store/checkpoints", get(checkpoints))
        .route("/store/translate", get(translate))
        .route("/store/reverse", get(reverse))
        .route("/store/both-ways", get(both_ways))
        .route("/store/sync", get(sync))
        .with_state(AppState {
            metrics,
            flows,
            store,
            segments: Arc::new(segments),
        });
    if let Ok(bound) = listener.local_addr() {
        tracing::info!(listen = %bound, "serving /metrics, /healthz, /readyz, /status");
    }
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!("HTTP listener failed: {e}");
        }
    })
}

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    s.flows.export(&s.metrics);
    export_tokens(&s.metrics);
    let mut buf = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&s.metrics.registry.gather(), &mut buf) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoder.format_type().to_string())],
            buf,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain".to_string())],
            e.to_string().into_bytes(),
        ),
    }
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let mut reasons = s.flows.readiness().err().unwrap_or_default();
    // An authority that cannot be reached: the current token still works until it expires, but
    // the instance will lose its clusters then.
    for c in crate::entra::cell::statuses() {
        if let Some(why) = &c.unavailable {
            reasons.push(format!(
                "cluster '{}': cannot refresh its Entra ID token: {why}",
                c.alias
            ));
        }
    }
    if reasons.is_empty() {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready\n{}\n", reasons.join("\n")),
        )
    }
}

/// The Entra ID token gauges, from every token cell.
fn export_tokens(metrics: &Metrics) {
    let now = std::time::SystemTime::now();
    for c in crate::entra::cell::statuses() {
        let l = [c.alias.as_str()];
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        metrics
            .entra_tokens
            .with_label_values(&l)
            .set(count(c.refreshed));
        metrics
            .entra_token_failures
            .with_label_values(&l)
            .set(count(c.failed));
        let left = c
            .expires_at
            .and_then(|e| e.duration_since(now).ok())
            .unwrap_or_default();
        metrics
            .entra_token_expiry
            .with_label_values(&l)
            .set(left.as_secs_f64());
        metrics
            .entra_authority_up
            .with_label_values(&l)
            .set(i64::from(c.unavailable.is_none()));
    }
}

async fn status(State(s): State<AppState>) -> impl IntoResponse {
    Json(s.flows.reports())
}

fn store_error(e: StoreError) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn checkpoints(
    State(s): State<AppState>,
    Query(q): Query<GroupQuery>,
) -> Result<Json<Vec<StoredCheckpoint>>, (StatusCode, String)> {
    s.store
        .checkpoints(q.group.as_deref())
        .map(Json)
        .map_err(store_error)
}

async fn translate(
    State(s): State<AppState>,
    Query(q): Query<OffsetQuery>,
) -> Result<Json<Translation>, (StatusCode, String)> {
    let key = PartitionKey::new(&q.source, &q.target, &q.topic, q.partition);
    s.store
        .translate(&key, q.offset)
        .map(Json)
        .map_err(store_error)
}

async fn reverse(
    State(s): State<AppState>,
    Query(q): Query<OffsetQuery>,
) -> Result<Json<Option<i64>>, (StatusCode, String)> {
    let key = PartitionKey::new(&q.source, &q.target, &q.topic, q.partition);
    s.store
        .reverse(&key, q.offset)
        .map(Json)
        .map_err(store_error)
}

async fn both_ways(
    State(s): State<AppState>,
    Query(q): Query<BothWaysQuery>,
) -> Result<Json<Resume>, (StatusCode, String)> {
    let key = PartitionKey::new(&q.source, &q.target, &q.topic, q.partition);
    let back = PartitionKey::new(&q.target, &q.source, &q.back_topic, q.partition);
    s.store
        .both_ways(&key, &back, q.offset)
        .map(Json)
        .map_err(store_error)
}

async fn sync(
    State(s): State<AppState>,
    Query(q): Query<FlowQuery>,
) -> Result<Json<CaughtUp>, (StatusCode, String)> {
    let Some(r) = s
        .segments
        .iter()
        .find(|r| r.merger.flow() == (q.source.as_str(), q.target.as_str()))
        .cloned()
    else {
        let flow = format!("{} -> {}", q.source, q.target);
        return Err((StatusCode::NOT_FOUND, format!("no flow {flow}")));
    };
    let read =
        tokio::task::spawn_blocking(move || segments::catch_up(r.config, &r.merger, SYNC_TIMEOUT))
            .await
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    read.map(Json)
        .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))
}
