//! How adapters report what they did, so the gateway can count it without the adapters
//! knowing about metrics.

use std::time::Duration;

/// The outcome of one HTTP exchange with an outside service (one attempt, not one
/// logical call with its retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// The service answered with what we asked for.
    Ok,
    /// The service answered that the thing does not exist.
    NotFound,
    /// 400: the request was malformed.
    BadRequest,
    /// 401/403.
    Unauthorized,
    /// 429.
    RateLimited,
    /// 5xx.
    ServerError,
    /// No answer in time.
    Timeout,
    /// Connection refused, reset, DNS, TLS.
    Transport,
    /// An answer we could not read.
    InvalidResponse,
}

impl CallOutcome {
    pub fn label(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::NotFound => "not_found",
            CallOutcome::BadRequest => "bad_request",
            CallOutcome::Unauthorized => "unauthorized",
            CallOutcome::RateLimited => "rate_limited",
            CallOutcome::ServerError => "server_error",
            CallOutcome::Timeout => "timeout",
            CallOutcome::Transport => "transport",
            CallOutcome::InvalidResponse => "invalid_response",
        }
    }
}

/// Receives reports from adapters. Implementations must be cheap and must not block.
pub trait CallObserver: Send + Sync {
    /// One HTTP exchange with `service` (e.g. `"frmr"`) ended.
    fn call_finished(&self, service: &'static str, outcome: CallOutcome, elapsed: Duration);
    /// A call waited `waited` for the rate limiter before it could be sent.
    fn rate_limit_waited(&self, service: &'static str, waited: Duration);
    /// A new credential was fetched (token provider).
    fn token_fetched(&self, service: &'static str, ok: bool);
}

/// An observer that ignores everything (for tools and tests that do not count).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl CallObserver for NoopObserver {
    fn call_finished(&self, _: &'static str, _: CallOutcome, _: Duration) {}
    fn rate_limit_waited(&self, _: &'static str, _: Duration) {}
    fn token_fetched(&self, _: &'static str, _: bool) {}
}
