//! The closed set of ways an outside call can fail. Only this set drives retries, circuit
//! breakers and the relay; transports map their errors into it in one place each.

use std::time::Duration;

/// Why a call to a federal service did not produce an answer.
///
/// `reason` texts are safe to log: adapters pass outside text through
/// [`crate::scrub_personal`] before putting it here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Worth trying again later (timeouts before the request left, 429, 5xx, refused
    /// connections). `after` is the server's hint, when it gave one.
    #[error("transient: {reason}")]
    Retry { reason: String, after: Option<Duration> },
    /// The request may have been processed; what happened must be found out before any
    /// resend (a timeout after the request left, for a non-idempotent call).
    #[error("outcome unknown: {reason}")]
    Unknown { reason: String },
    /// The service understood and refused; sending the same again will fail the same way.
    #[error("rejected: {reason}")]
    Permanent { reason: String },
    /// Our side is misconfigured (credentials, rights, endpoint): an administrator must act.
    #[error("configuration: {reason}")]
    Configuration { reason: String },
}

impl Failure {
    /// A short stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Failure::Retry { .. } => "retry",
            Failure::Unknown { .. } => "unknown",
            Failure::Permanent { .. } => "permanent",
            Failure::Configuration { .. } => "configuration",
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Failure::Retry { .. })
    }

    pub fn reason(&self) -> &str {
        match self {
            Failure::Retry { reason, .. }
            | Failure::Unknown { reason }
            | Failure::Permanent { reason }
            | Failure::Configuration { reason } => reason,
        }
    }
}
