//! Prometheus metrics of one gateway process. [`Metrics`] is also the adapters'
//! [`CallObserver`], so adapters count their calls without knowing about Prometheus.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use egisz_contract::{CallObserver, CallOutcome};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The matched route template (`/api/v1/staff/{snils}`), never the raw path: raw paths
    /// carry SNILS.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub service: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~8 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: HistogramFamily<RouteLabels>,
    pub outside_calls: Family<CallLabels, Counter>,
    pub outside_duration: HistogramFamily<ServiceLabels>,
    pub rate_limit_waits: Family<ServiceLabels, Counter>,
    pub rate_limit_wait_seconds: Family<ServiceLabels, Counter<f64, AtomicU64>>,
    pub token_fetches: Family<CallLabels, Counter>,
    /// Lookups by how they were answered: `cache`, `frmr`, `stale`, `unavailable`, `error`.
    pub staff_lookups: Family<ResultLabels, Counter>,
    /// Callers that joined a lookup already in flight instead of calling FRMR themselves.
    pub staff_coalesced: Counter,
    /// 1 while the FRMR circuit breaker is open.
    pub frmr_circuit_open: Gauge,
    /// What the relay did with a submission it took: accepted, rejected, retry, unknown, …
    pub relay_outcomes: Family<ResultLabels, Counter>,
    /// REMD message codes the mappings do not know (treated as needing a data fix).
    pub remd_unknown_codes: Counter,
    /// Connections to the REMD listener from outside `remd_listener.allow_from`.
    pub remd_listener_refused: Counter,
    /// Calls to the REMD listener that were answered with a fault and changed nothing,
    /// by why: `unreadable`, `unknown_message`, `not_current`, `mismatch`, `not_confirmed`.
    pub remd_listener_rejected: Family<ResultLabels, Counter>,
    /// Submissions per status, as the store counts them at each scrape.
    pub submissions: Family<StatusLabels, Gauge>,
    /// Age of the oldest submission still on its way to REMD (0 when none).
    pub oldest_waiting_seconds: Gauge,
    /// Submissions on their way to REMD for longer than `ops.registration_deadline`.
    pub past_deadline: Gauge,
    /// 1 while this instance has seen REMD calls fail in a row (see the ops summary).
    pub remd_circuit_open: Gauge,
    /// 1 when the last scrape could not read the queue's figures from the store.
    pub queue_figures_failed: Gauge,
    /// Reads of the queue's figures from the store for `/metrics` (at most one every 5 s,
    /// however many scrapes).
    pub queue_figures_reads: Counter,
    /// Dictionaries the last NSI refresh could not refresh (their previous copy stays).
    pub nsi_refresh_failed: Gauge,
    /// Intakes accepted with warnings (a check under `warn`, a service unreachable), by rule.
    pub intake_warnings: Family<RuleLabels, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("egisz");
        let m = Metrics {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            outside_calls: Family::default(),
            outside_duration: Family::new_with_constructor(latency_histogram),
            rate_limit_waits: Family::default(),
            rate_limit_wait_seconds: Family::default(),
            token_fetches: Family::default(),
            staff_lookups: Family::default(),
            staff_coalesced: Counter::default(),
            frmr_circuit_open: Gauge::default(),
            relay_outcomes: Family::default(),
            remd_unknown_codes: Counter::default(),
            remd_listener_refused: Counter::default(),
            remd_listener_rejected: Family::default(),
            submissions: Family::default(),
            oldest_waiting_seconds: Gauge::default(),
            past_deadline: Gauge::default(),
            remd_circuit_open: Gauge::default(),
            queue_figures_failed: Gauge::default(),
            queue_figures_reads: Counter::default(),
            nsi_refresh_failed: Gauge::default(),
            intake_warnings: Family::default(),
            registry: Registry::default(),
        };
        registry.register("http_requests", "API requests by method, route and status", m.http_requests.clone());
        registry.register("http_request_duration_seconds", "API request latency by route", m.http_duration.clone());
        registry.register(
            "outside_calls",
            "HTTP exchanges with federal services by outcome (one per attempt)",
            m.outside_calls.clone(),
        );
        registry.register(
            "outside_call_duration_seconds",
            "Latency of HTTP exchanges with federal services",
            m.outside_duration.clone(),
        );
        registry.register(
            "rate_limiter_waits",
            "Calls that waited for a federal service's rate limiter",
            m.rate_limit_waits.clone(),
        );
        registry.register(
            "rate_limiter_wait_seconds",
            "Time spent waiting for rate limiters",
            m.rate_limit_wait_seconds.clone(),
        );
        registry.register(
            "remd_listener_refused_connections",
            "Connections to the REMD listener refused by remd_listener.allow_from",
            m.remd_listener_refused.clone(),
        );
        registry.register(
            "remd_listener_rejected_calls",
            "Calls to the REMD listener answered with a fault, changing nothing, by reason",
            m.remd_listener_rejected.clone(),
        );
        registry.register("token_fetches", "Tokens fetched from token providers by outcome", m.token_fetches.clone());
        registry.register(
            "staff_lookups",
            "Staff verification lookups by how they were answered (cache hit, frmr, stale, unavailable)",
            m.staff_lookups.clone(),
        );
        registry.register(
            "staff_coalesced",
            "Lookups that joined an FRMR call already in flight",
            m.staff_coalesced.clone(),
        );
        registry.register("frmr_circuit_open", "1 while the FRMR circuit breaker is open", m.frmr_circuit_open.clone());
        registry.register("relay_outcomes", "Submissions handled by the relay, by outcome", m.relay_outcomes.clone());
        registry.register(
            "remd_unknown_codes",
            "REMD message codes missing from mappings/remd-message-codes.tsv",
            m.remd_unknown_codes.clone(),
        );
        registry.register(
            "submissions",
            "Submissions per status (queue depth), counted at scrape",
            m.submissions.clone(),
        );
        registry.register(
            "oldest_waiting_submission_seconds",
            "Age of the oldest submission still on its way to REMD (0: none waiting)",
            m.oldest_waiting_seconds.clone(),
        );
        registry.register(
            "submissions_past_deadline",
            "Submissions still on their way to REMD longer than ops.registration_deadline after intake",
            m.past_deadline.clone(),
        );
        registry.register(
            "remd_circuit_open",
            "1 while this instance's REMD calls have failed several times in a row",
            m.remd_circuit_open.clone(),
        );
        registry.register(
            "queue_figures_failed",
            "1 when the last scrape could not read the queue's figures from the database",
            m.queue_figures_failed.clone(),
        );
        registry.register(
            "queue_figures_reads",
            "Reads of the queue's figures from the database for /metrics (at most one every 5 s)",
            m.queue_figures_reads.clone(),
        );
        registry.register(
            "nsi_refresh_failed",
            "Dictionaries the last NSI refresh could not refresh (the previous copy stays in force)",
            m.nsi_refresh_failed.clone(),
        );
        registry.register(
            "intake_warnings",
            "Documents accepted with a warning (a check under the warn policy, FRMR or the verifier unreachable), by rule",
            m.intake_warnings.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    pub fn relay_outcome(&self, outcome: &str) {
        self.relay_outcomes.get_or_create(&ResultLabels { result: outcome.to_owned() }).inc();
    }

    pub fn staff_lookup(&self, result: &str) {
        self.staff_lookups.get_or_create(&ResultLabels { result: result.to_owned() }).inc();
    }
}

impl CallObserver for Metrics {
    fn call_finished(&self, service: &'static str, outcome: CallOutcome, elapsed: Duration) {
        self.outside_calls
            .get_or_create(&CallLabels { service: service.to_owned(), outcome: outcome.label().to_owned() })
            .inc();
        self.outside_duration
            .get_or_create(&ServiceLabels { service: service.to_owned() })
            .observe(elapsed.as_secs_f64());
    }

    fn rate_limit_waited(&self, service: &'static str, waited: Duration) {
        let labels = ServiceLabels { service: service.to_owned() };
        self.rate_limit_waits.get_or_create(&labels).inc();
        self.rate_limit_wait_seconds.get_or_create(&labels).inc_by(waited.as_secs_f64());
    }

    fn token_fetched(&self, service: &'static str, ok: bool) {
        self.token_fetches
            .get_or_create(&CallLabels {
                service: service.to_owned(),
                outcome: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_it_counts() {
        let m = Metrics::new();
        m.call_finished("frmr", CallOutcome::RateLimited, Duration::from_millis(3));
        m.staff_lookup("cache");
        let text = m.render();
        assert!(text.contains("egisz_outside_calls_total{service=\"frmr\",outcome=\"rate_limited\"} 1"), "{text}");
        assert!(text.contains("egisz_staff_lookups_total{result=\"cache\"} 1"), "{text}");
    }
}
