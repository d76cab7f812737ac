//! The control listener: the token provider (`/token`) and the admin endpoints
//! (`/_admin/…`). Faults never apply here.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::Shared;
use super::faults::{Faults, FrmrStats};
use super::service::error_envelope;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/token", post(issue_token).get(issue_token))
        .route("/_admin/stats", get(stats))
        .route("/_admin/faults", get(faults).put(set_faults))
        .route("/_admin/revoke-tokens", post(revoke_tokens))
        .route("/_admin/reset", post(reset))
        .fallback(|| async { error_envelope(StatusCode::NOT_FOUND, "Ресурс не найден") })
        .with_state(shared)
}

/// The token provider's answer, as the production sidecar gives it.
async fn issue_token(State(shared): State<Arc<Shared>>) -> Response {
    let token = shared.issue_token();
    Json(json!({
        "token": token,
        "expires_in": shared.token_ttl.as_secs(),
        "token_type": "Bearer",
    }))
    .into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<FrmrStats> {
    Json(shared.counters.snapshot())
}

async fn faults(State(shared): State<Arc<Shared>>) -> Json<Faults> {
    Json(shared.faults())
}

/// Replaces the faults; answers with the faults now in force.
async fn set_faults(State(shared): State<Arc<Shared>>, body: Result<Json<Faults>, JsonRejection>) -> Response {
    let faults = match body {
        Ok(Json(faults)) => faults,
        Err(rejection) => return error_envelope(rejection.status(), &rejection.body_text()),
    };
    if !(0.0..=1.0).contains(&faults.error_rate) {
        return error_envelope(StatusCode::UNPROCESSABLE_ENTITY, "error_rate must be within 0.0..=1.0");
    }
    shared.set_faults(faults);
    Json(shared.faults()).into_response()
}

async fn revoke_tokens(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.revoke_tokens();
    StatusCode::NO_CONTENT
}

async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.reset();
    StatusCode::NO_CONTENT
}
