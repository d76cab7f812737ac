//! Service endpoints (no key): health, readiness, metrics, the OpenAPI description.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::problem::ApiError;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "Up")))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// The database answers and every migration is applied.
#[utoipa::path(get, path = "/readyz", tag = "service", responses(
    (status = 200, description = "Ready"),
    (status = 503, description = "`not_ready`", body = super::problem::Problem, content_type = "application/problem+json"),
))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.readiness().await {
        Ok(()) => {
            // NSI is detail: an unreachable NSI leaves the previous dictionaries in force and
            // never makes the gateway unready.
            let nsi = match &state.nsi {
                None => serde_json::json!({"mode": "off"}),
                Some(nsi) => {
                    let s = nsi.status();
                    let failed: Vec<&crate::nsi::Refreshed> = s.results.iter().filter(|r| r.failed()).collect();
                    serde_json::json!({
                        "state": if s.last_run.is_none() { "pending" } else if failed.is_empty() { "ok" } else { "degraded" },
                        "last_run": s.last_run,
                        "last_success": s.last_success,
                        "in_force": s.in_force,
                        "failed": failed,
                    })
                }
            };
            // The rule packages are detail too: a broken one keeps the one in force.
            let packages = match &state.packages {
                None => serde_json::json!({"dir": null}),
                Some(catalog) => {
                    let status = catalog.status();
                    let degraded = status.iter().any(|s| s.problem.is_some());
                    serde_json::json!({
                        "dir": catalog.dir(),
                        "state": if degraded { "degraded" } else { "ok" },
                        "kinds": status,
                    })
                }
            };
            Json(serde_json::json!({
                "status": "ready",
                "database": state.store.backend().label(),
                "nsi": nsi,
                // FRMO's copy is detail: without one, intake warns instead of checking.
                "frmo": state.frmo.status(),
                "packages": packages,
            }))
            .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "Шлюз не готов", e.to_string())
                .with_retry_after(5)
                .into_response()
        }
    }
}

/// How long the queue's figures on `/metrics` are reused before the database is read again.
pub const METRICS_FIGURES_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let open = state.staff.frmr_health().state == crate::circuit::CircuitState::Open;
    state.metrics.frmr_circuit_open.set(i64::from(open));
    let remd_open = state.remd.health().state == crate::circuit::CircuitState::Open;
    state.metrics.remd_circuit_open.set(i64::from(remd_open));
    if let Some(nsi) = &state.nsi {
        state.metrics.nsi_refresh_failed.set(nsi.status().results.iter().filter(|r| r.failed()).count() as i64);
    }
    // The queue's gauges are read from the database, so that every instance on a shared
    // database reports the same figures — at most once per METRICS_FIGURES_FOR, by one
    // scrape while the others wait for it: a storm of scrapes costs no more queries.
    {
        let mut last = state.metrics_figures_read.lock().await;
        if last.is_none_or(|at| at.elapsed() >= METRICS_FIGURES_FOR) {
            state.metrics.queue_figures_reads.inc();
            match state.ops.summary(&crate::auth::Scope::All, state.staff.frmr_health(), crate::now()).await {
                Ok(summary) => {
                    for (status, n) in &summary.counts {
                        let labels = crate::metrics::StatusLabels { status: status.clone() };
                        state.metrics.submissions.get_or_create(&labels).set(*n as i64);
                    }
                    state.metrics.oldest_waiting_seconds.set(summary.oldest_waiting.map_or(0, |w| w.age_seconds));
                    state.metrics.past_deadline.set(summary.past_deadline as i64);
                    state.metrics.queue_figures_failed.set(0);
                }
                Err(_) => {
                    state.metrics.queue_figures_failed.set(1);
                }
            }
            *last = Some(tokio::time::Instant::now());
        }
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
        .into_response()
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], super::openapi_json()).into_response()
}

pub async fn fallback() -> ApiError {
    ApiError::not_found("такого адреса нет; API описан в /api/openapi.json")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Метод не поддерживается",
        "метод не поддерживается этим адресом; см. /api/openapi.json",
    )
}
