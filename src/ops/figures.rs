//! What ops see, the same through the API and the console: the summary of the queue, the
//! REMD report of a period, the dashboard's days, and which audit entries a key sees. The
//! views (`api::ops`, `console`) read their parameters and render; the figures are made
//! here, from the store's counts, by the pure rules of [`super::report`].

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::Operations;
use super::report::{self, DayFigures, Report};
use crate::auth::{Principal, Scope};
use crate::circuit::Health;
use crate::lifecycle::OPEN;
use crate::store::StoreError;
use crate::submission::{Status, Waiting};

/// Days the dashboard's chart shows.
pub const DASHBOARD_DAYS: u32 = 30;

/// A federal service as the gateway sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceHealth {
    /// `closed` (working), `open` (failing: calls held back or failing in a row), `half_open`.
    pub circuit: String,
    pub consecutive_failures: u32,
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl From<Health> for ServiceHealth {
    fn from(h: Health) -> Self {
        Self {
            circuit: h.state.as_str().to_owned(),
            consecutive_failures: h.consecutive_failures,
            last_success: h.last_success,
            last_failure: h.last_failure,
            last_error: h.last_error,
        }
    }
}

/// The oldest submission still on its way.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OldestWaiting {
    #[serde(flatten)]
    pub submission: Waiting,
    /// Its organisation's name in FRMO (absent when the FRMO copy does not know the OID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    pub age_seconds: i64,
}

/// What is stuck now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// Submissions per status (every status, zeros included).
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Still on their way to REMD (queued, sending, awaiting_result, retry_wait, unknown).
    pub queue_depth: u64,
    pub oldest_waiting: Option<OldestWaiting>,
    /// On their way although submitted longer than `ops.registration_deadline` ago.
    pub past_deadline: u64,
    pub registration_deadline_seconds: u64,
    /// This instance's view of REMD's calls (the relay's schedule paces them).
    pub remd: ServiceHealth,
    pub frmr: ServiceHealth,
    pub at: DateTime<Utc>,
}

/// What of the audit log a key sees: everything with every organisation; else its
/// organisations' entries and its own.
pub fn visible_to(who: &Principal) -> Option<(Vec<egisz_contract::Oid>, Uuid)> {
    match &who.scope {
        Scope::All => None,
        Scope::Only(set) => Some((set.iter().cloned().collect(), who.client_id)),
    }
}

impl Operations {
    /// The summary at `now`, within `scope`; `frmr` is the staff service's view of FRMR.
    pub async fn summary(&self, scope: &Scope, frmr: Health, now: DateTime<Utc>) -> Result<Summary, StoreError> {
        let registration_deadline = self.settings.registration_deadline;
        let deadline = now - chrono::Duration::from_std(registration_deadline).unwrap_or_default();
        let orgs: Option<Vec<_>> = scope.organizations();
        let figures = self.store.queue_figures(OPEN, deadline, orgs.as_deref()).await?;
        let mut counts: std::collections::BTreeMap<String, u64> =
            Status::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
        for (s, n) in &figures.counts {
            counts.insert(s.as_str().to_owned(), *n);
        }
        let queue_depth = figures.counts.iter().filter(|(s, _)| OPEN.contains(s)).map(|(_, n)| n).sum();
        Ok(Summary {
            counts,
            queue_depth,
            oldest_waiting: figures.oldest_waiting.map(|w| OldestWaiting {
                age_seconds: (now - w.created_at).num_seconds().max(0),
                organization_name: self.frmo.names().of(w.organization.as_str()).map(str::to_owned),
                submission: w,
            }),
            past_deadline: figures.past_deadline,
            registration_deadline_seconds: registration_deadline.as_secs(),
            remd: self.remd.health().into(),
            frmr: frmr.into(),
            at: now,
        })
    }

    /// The REMD report of the submissions created in `from..to` (a period
    /// [`report::period`] accepted), within `scope`.
    pub async fn report(&self, scope: &Scope, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Report, StoreError> {
        let orgs: Option<Vec<_>> = scope.organizations();
        let counts = self.store.cohort(from, to, orgs.as_deref()).await?;
        let mut report = report::report(from, to, &counts);
        let names = self.frmo.names();
        if let Some(version) = names.version() {
            let oids: Vec<&str> = report.rows.iter().map(|r| r.organization.as_str()).collect();
            let found = self.store.frmo_names(version, &oids).await?;
            report::name_rows(&mut report, &found);
        }
        Ok(report)
    }

    /// Every organisation within `scope` that has submitted documents, with its FRMO name,
    /// by name (those FRMO does not know last, by OID): the console's suggestions and what
    /// its name filter matches.
    pub async fn organizations(&self, scope: &Scope) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let orgs = scope.organizations();
        let names = self.frmo.names();
        let mut out: Vec<(String, Option<String>)> = self
            .store
            .submitting_organizations(orgs.as_deref())
            .await?
            .into_iter()
            .map(|oid| {
                let name = names.of(&oid).map(str::to_owned);
                (oid, name)
            })
            .collect();
        out.sort_by(|a, b| match (&a.1, &b.1) {
            (Some(x), Some(y)) => x.cmp(y).then_with(|| a.0.cmp(&b.0)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.0.cmp(&b.0),
        });
        Ok(out)
    }

    /// The dashboard's last [`DASHBOARD_DAYS`] days up to `now` in the region's time
    /// (`offset`), within `scope`: kept for a minute per day and scope, so that a dashboard
    /// open on many screens counts once.
    pub async fn days(
        &self,
        scope: &Scope,
        now: DateTime<Utc>,
        offset: FixedOffset,
    ) -> Result<Vec<DayFigures>, StoreError> {
        let today = report::day_number(now, offset);
        let orgs = scope.organizations();
        let key = format!("{today}|{orgs:?}");
        if let Some(days) = self.days.get(&key) {
            return Ok(days);
        }
        let start = report::day_date(today - i64::from(DASHBOARD_DAYS) + 1).and_hms_opt(0, 0, 0).expect("midnight");
        let from = start.and_local_timezone(offset).single().map(|t| t.to_utc()).unwrap_or(now);
        let to = now + chrono::Duration::seconds(1);
        let counts = self.store.daily(from, to, offset.local_minus_utc(), orgs.as_deref()).await?;
        let days = report::days(today, DASHBOARD_DAYS, &counts);
        self.days.insert(key, days.clone());
        Ok(days)
    }
}
