//! The internal HTTP API (axum): routes, middleware, OpenAPI and service endpoints.
//!
//! Request handling order: request id → tracing span (method, route template, request id —
//! never the raw path, which carries SNILS) → metrics → panic catching → timeout → body
//! limit → handler. Every error is a problem (`application/problem+json`).

pub mod documents;
mod extract;
pub mod intake;
mod openapi;
pub mod ops;
pub mod params;
pub mod problem;
mod service;
pub mod settings;
pub mod staff;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::Authenticator;
use crate::metrics::{HttpLabels, Metrics, RouteLabels};
use crate::staff::StaffService;
use crate::store::Store;
use problem::ApiError;
use settings::{ApiConfig, DocumentsConfig, RegionConfig};

pub use openapi::openapi_json;

/// Shared state of the API handlers. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub auth: Authenticator,
    pub staff: StaffService,
    pub metrics: Arc<Metrics>,
    /// `[api]`.
    pub settings: Arc<ApiConfig>,
    /// `[documents]`.
    pub documents: DocumentsConfig,
    /// `[region]`: the region's time, in which dates are read and shown.
    pub region: RegionConfig,
    pub mappings: Arc<crate::mappings::Mappings>,
    /// The dictionary copies rule H13 checks against (shipped, then refreshed from NSI).
    pub dictionaries: Arc<crate::mappings::LiveDictionaries>,
    /// The service checks' policies.
    pub validation: Arc<crate::validation::settings::ValidationConfig>,
    /// The signature verifier (`validation.verifier`).
    pub verification: crate::validation::services::Verification,
    /// The ministry's rule packages (`validation.packages_dir`), if any.
    pub packages: Option<Arc<egisz_packages::Catalog>>,
    /// `POST /api/v1/documents/validate` per client (`api.validate_per_minute`).
    pub validate_limiter: Arc<governor::DefaultKeyedRateLimiter<uuid::Uuid>>,
    /// The dictionaries' refresher from NSI (`nsi.mode`), for `/readyz`.
    pub nsi: Option<Arc<crate::nsi::NsiService>>,
    /// FRMO's copy in force (organisations and departments checked at intake, names shown).
    pub frmo: Arc<crate::nsi::frmo::Frmo>,
    /// The lifecycle (shared with the relay): intake rings its bell when a submission is
    /// stored.
    pub lifecycle: Arc<crate::lifecycle::Lifecycle>,
    /// REMD's calls (their health, for `/metrics`).
    pub remd: Arc<crate::remd::RemdCalls>,
    /// Where intakes are stored: shared, durable commits.
    pub intake: crate::store::GroupCommit,
    /// Documents checked at once (`api.intake_workers`).
    pub intake_permits: Arc<tokio::sync::Semaphore>,
    /// What operators do and see (actions with their audit, the summary, the report, the
    /// dashboard's days), for the ops API and the console alike.
    pub ops: crate::ops::Operations,
    /// The key that signs the console's sign-in form cookie, shared by every instance on
    /// the database.
    pub console_key: Arc<[u8]>,
    /// When `/metrics` last read the queue's figures (one read per
    /// [`service::METRICS_FIGURES_FOR`]).
    pub metrics_figures_read: Arc<tokio::sync::Mutex<Option<tokio::time::Instant>>>,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The API router with its middleware, serving `pages` (the ops console) beside the API
/// under the same middleware.
pub fn router(state: AppState, pages: Router<AppState>) -> Router {
    let settings = state.settings.clone();
    Router::new()
        .route("/healthz", get(service::healthz))
        .route("/readyz", get(service::readyz))
        .route("/metrics", get(service::metrics))
        .route("/api/openapi.json", get(service::openapi))
        .route("/api/v1/documents", get(documents::list_documents).post(intake::submit))
        .route("/api/v1/documents/validate", post(intake::validate))
        .route("/api/v1/documents/{id}", get(documents::get_document))
        .route("/api/v1/documents/{id}/retry", post(ops::retry))
        .route("/api/v1/documents/{id}/cancel", post(ops::cancel))
        .route("/api/v1/ops/retry", post(ops::bulk_retry))
        .route("/api/v1/ops/audit", get(ops::audit))
        .route("/api/v1/ops/summary", get(ops::summary))
        .route("/api/v1/reports/remd", get(ops::remd_report))
        .merge(pages)
        .route("/api/v1/staff/verify", post(staff::verify_batch))
        .route("/api/v1/staff/{snils}", get(staff::get_staff))
        .fallback(service::fallback)
        .method_not_allowed_fallback(service::method_not_allowed)
        .layer(DefaultBodyLimit::max(settings.limits.body_limit_bytes))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(settings.limits.body_read_timeout))
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(sanitize_request_id))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(TraceLayer::new_for_http().make_span_with(make_span).on_response(on_response).on_failure(()))
                .layer(middleware::from_fn_with_state(state.clone(), track))
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(HandleErrorLayer::new(timeout_response))
                .timeout(settings.limits.request_timeout),
        )
        .with_state(state)
}

fn route_of(req: &Request) -> String {
    req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned())
}

fn make_span(req: &Request) -> tracing::Span {
    let request_id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!("request", method = method_label(req.method()), route = %route_of(req), request_id = %request_id)
}

fn on_response(res: &Response, latency: Duration, _span: &tracing::Span) {
    tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_secs_f64() * 1000.0, "answered");
}

/// Methods as metric labels: a fixed set, so that a client cannot create series at will.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Drops a caller's `x-request-id` that is not a short token of safe characters, so that
/// a new one is made (logs and headers carry only well-formed ids).
async fn sanitize_request_id(mut req: Request, next: Next) -> Response {
    let ok = req.headers().get(&REQUEST_ID).is_some_and(|v| {
        let b = v.as_bytes();
        !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
    });
    if !ok {
        req.headers_mut().remove(&REQUEST_ID);
    }
    next.run(req).await
}

async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = route_of(&req);
    let method = method_label(req.method()).to_owned();
    let started = Instant::now();
    let res = next.run(req).await;
    state
        .metrics
        .http_requests
        .get_or_create(&HttpLabels { method, route: route.clone(), status: res.status().as_u16() })
        .inc();
    state.metrics.http_duration.get_or_create(&RouteLabels { route }).observe(started.elapsed().as_secs_f64());
    res
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::internal("внутренняя ошибка шлюза; идентификатор запроса (x-request-id) указывает на неё в журнале")
        .into_response()
}

async fn timeout_response(err: tower::BoxError) -> Response {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "request_timeout",
            "Истекло время обработки запроса",
            "запрос обрабатывался дольше api.request_timeout_ms",
        )
        .into_response()
    } else {
        ApiError::internal(err.to_string()).into_response()
    }
}
