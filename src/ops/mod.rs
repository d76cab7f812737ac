//! Operations: what ops staff do and see — re-runs and cancellations through the
//! lifecycle, every action in the audit log, the queue's figures and the REMD report.
//!
//! ## Layout
//!
//! - this module — [`Operations`], the service behind both the ops API and the console (two
//!   thin views over it): it reads the submission, asks the shared
//!   [`crate::lifecycle::Lifecycle`] what the action does, and has the store apply the change
//!   and its audit entry in one transaction;
//! - `figures` — what ops see: the summary, the report of a period, the dashboard's days,
//!   the audit entries a key sees;
//! - [`report`] — the REMD report and the dashboard's days, pure: aggregation of the
//!   store's counts, success rates, top error codes, the CSV a Russian-locale spreadsheet
//!   opens;
//! - `settings` — `[ops]`, as ops use it.

mod figures;
pub mod report;
mod settings;

pub use figures::{DASHBOARD_DAYS, OldestWaiting, ServiceHealth, Summary, visible_to};
pub use settings::OpsConfig;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::audit::{Action, NewAudit};
use crate::auth::{Principal, Scope};
use crate::lifecycle::Lifecycle;
use crate::lifecycle::{Decision, Happening, Operator, RETRYABLE};
use crate::memo::Memo;
use crate::remd::RemdCalls;
use crate::store::{Store, StoreError};
use crate::submission::{ListFilter, OpsChange};
use report::DayFigures;

/// A bulk re-run: what it did, and the submissions it re-queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRun {
    pub outcome: BulkOutcome,
    pub requeued: Vec<Uuid>,
}

/// What a bulk re-run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BulkOutcome {
    /// Submissions the filter matches in a state that can be re-run.
    pub matched: u64,
    /// Put back in the queue now (0 on a dry run).
    pub requeued: u64,
    /// More matched than one call re-runs (`ops.bulk_retry_max`): call again.
    pub capped: bool,
}

/// Why an operator's action did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// No such submission for this operator (or one outside its organisations).
    #[error("no such submission")]
    NotFound,
    /// The lifecycle refuses the action in the submission's state (Russian reason).
    #[error("{0}")]
    Refused(String),
    /// It moved on while the action was being decided.
    #[error("the submission changed meanwhile")]
    Raced,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The longest operator's comment kept, in characters.
pub const MAX_COMMENT_CHARS: usize = 1000;

/// Why an operator's comment is refused (Russian, for the form or the problem).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommentError {
    #[error("комментарий не длиннее {MAX_COMMENT_CHARS} символов")]
    TooLong,
    #[error("комментарий не может содержать управляющие символы и символы смены направления текста")]
    ControlCharacter,
}

/// The one rule for an operator's comment, from the API and the console alike: line breaks
/// (`\n`, or a form's `\r\n`) are kept as `\n`; any other control character (ESC, NUL, …),
/// line or paragraph separator (U+2028, U+2029), bidirectional override or isolate
/// (U+202A–U+202E, U+2066–U+2069) or direction mark (U+200E, U+200F, U+061C), which would
/// make the audit log and the MIS-visible timeline read other than written, refuses the
/// comment; at most [`MAX_COMMENT_CHARS`] once trimmed; blank is no comment.
pub fn comment(raw: Option<&str>) -> Result<Option<String>, CommentError> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.replace("\r\n", "\n");
    let text = text.trim();
    if text.chars().count() > MAX_COMMENT_CHARS {
        return Err(CommentError::TooLong);
    }
    // Bidirectional overrides and isolates, direction marks, and the line and paragraph
    // separators (line breaks other than `\n`).
    let hidden = |c: char| {
        matches!(
            c,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{2028}' | '\u{2029}'
        )
    };
    if text.chars().any(|c| (c.is_control() && c != '\n') || hidden(c)) {
        return Err(CommentError::ControlCharacter);
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// The service behind the ops API and the console.
#[derive(Clone)]
pub struct Operations {
    store: Arc<dyn Store>,
    lifecycle: Arc<Lifecycle>,
    /// REMD's calls, for their health in the summary.
    remd: Arc<RemdCalls>,
    settings: Arc<OpsConfig>,
    /// The dashboard's days, per day and scope, for a minute.
    days: Arc<Memo<String, Vec<DayFigures>>>,
    /// FRMO's copy in force: the organisations' names.
    frmo: Arc<crate::nsi::frmo::Frmo>,
}

impl Operations {
    /// Operations of `settings` (`[ops]`), deciding through `lifecycle` (shared with the
    /// relay and the REMD listener).
    pub fn new(
        store: Arc<dyn Store>,
        lifecycle: Arc<Lifecycle>,
        remd: Arc<RemdCalls>,
        frmo: Arc<crate::nsi::frmo::Frmo>,
        settings: OpsConfig,
    ) -> Self {
        Self {
            store,
            lifecycle,
            remd,
            settings: Arc::new(settings),
            days: Arc::new(Memo::new(std::time::Duration::from_secs(60), 256)),
            frmo,
        }
    }

    /// Organisations' names, from FRMO's copy in force.
    pub fn names(&self) -> crate::nsi::frmo::Names {
        self.frmo.names()
    }

    /// `[ops]`.
    pub fn settings(&self) -> &OpsConfig {
        &self.settings
    }

    /// Most submissions one bulk call re-runs (`ops.bulk_retry_max`, at least one).
    pub fn bulk_max(&self) -> u32 {
        self.settings.bulk_retry_max.max(1)
    }

    fn audit(who: &Principal, action: Action, at: DateTime<Utc>, comment: Option<&str>) -> NewAudit {
        NewAudit {
            at,
            actor_id: who.client_id,
            actor_name: who.name.clone(),
            action,
            submission_id: None,
            organization: None,
            filter: None,
            comment: comment.map(str::to_owned),
            count: None,
        }
    }

    /// Re-runs (`retry`) or cancels one submission, with the audit entry.
    pub async fn act(
        &self,
        who: &Principal,
        id: Uuid,
        action: Action,
        comment: Option<&str>,
    ) -> Result<crate::submission::SubmissionRecord, OpsError> {
        let record = self.store.submission(id).await?.filter(|r| who.scope.allows(&r.organization));
        let record = record.ok_or(OpsError::NotFound)?;
        let operator = Operator { name: &who.name, comment };
        let happening = match action {
            Action::Retry => Happening::Retry(&operator),
            Action::Cancel => Happening::Cancel(&operator),
            _ => return Err(OpsError::Refused("это действие не относится к одному документу".into())),
        };
        let now = crate::now();
        let step = match self.lifecycle.decide(&record, happening, now) {
            Decision::Apply(step) => step,
            Decision::Refuse(why) => return Err(OpsError::Refused(why)),
            Decision::Ignore => return Err(OpsError::Raced),
        };
        let audit = NewAudit {
            submission_id: Some(id),
            organization: Some(record.organization.to_string()),
            ..Self::audit(who, action, now, comment)
        };
        let change = OpsChange { id, from: step.from, transition: &step.transition };
        if self.store.operate(&[change], &audit).await? == 0 {
            return Err(OpsError::Raced);
        }
        if step.transition.next_attempt_at.is_some() {
            self.lifecycle.wake();
        }
        self.store.submission(id).await?.ok_or(OpsError::NotFound)
    }

    /// Re-runs up to [`Operations::bulk_max`] of the submissions `filter` matches (within `who`'s
    /// organisations and the states a re-run applies to), oldest first — or, on a dry run,
    /// only counts them. Each is re-queued once: a re-queued submission is no longer matched
    /// (it is queued, or due for its look-up now). The relay sends them within the REMD rate
    /// limit.
    pub async fn bulk_retry(
        &self,
        who: &Principal,
        filter: &ListFilter,
        dry_run: bool,
        comment: Option<&str>,
        filter_shown: serde_json::Value,
    ) -> Result<BulkRun, OpsError> {
        let now = crate::now();
        let mut filter = ListFilter { not_due_at: Some(now), ..within(filter, &who.scope) };
        filter.statuses = if filter.statuses.is_empty() {
            RETRYABLE.to_vec()
        } else {
            filter.statuses.iter().copied().filter(|s| RETRYABLE.contains(s)).collect()
        };
        if filter.statuses.is_empty() {
            return Ok(BulkRun {
                outcome: BulkOutcome { matched: 0, requeued: 0, capped: false },
                requeued: Vec::new(),
            });
        }
        let matched = self.store.count_submissions(&filter).await?;
        let base = Self::audit(who, if dry_run { Action::BulkRetryDryRun } else { Action::BulkRetry }, now, comment);
        let organization = match &filter.organizations {
            Some(orgs) if orgs.len() == 1 => Some(orgs[0].to_string()),
            _ => None,
        };
        let capped = matched > u64::from(self.bulk_max());
        if dry_run {
            let entry = NewAudit { filter: Some(filter_shown), organization, count: Some(matched), ..base };
            self.store.operate(&[], &entry).await?;
            return Ok(BulkRun { outcome: BulkOutcome { matched, requeued: 0, capped }, requeued: Vec::new() });
        }
        let records =
            self.store.list_submissions(&ListFilter { limit: self.bulk_max(), oldest_first: true, ..filter }).await?;
        let operator = Operator { name: &who.name, comment };
        let steps: Vec<_> = records
            .iter()
            .filter_map(|r| match self.lifecycle.decide(r, Happening::Retry(&operator), now) {
                Decision::Apply(step) => Some((r.organization.to_string(), r.id, step)),
                _ => None,
            })
            .collect();
        // One audit entry per organisation touched (its own transaction with its changes),
        // so that an operator limited to that organisation finds it.
        let mut by_organization: std::collections::BTreeMap<&str, Vec<OpsChange<'_>>> = Default::default();
        for (organization, id, s) in &steps {
            by_organization.entry(organization).or_default().push(OpsChange {
                id: *id,
                from: s.from,
                transition: &s.transition,
            });
        }
        let mut requeued = 0;
        for (organization, changes) in &by_organization {
            let entry = NewAudit {
                filter: Some(filter_shown.clone()),
                organization: Some((*organization).to_owned()),
                ..base.clone()
            };
            requeued += self.store.operate(changes, &entry).await?;
        }
        if by_organization.is_empty() {
            self.store.operate(&[], &NewAudit { filter: Some(filter_shown), organization, ..base }).await?;
        }
        if requeued > 0 {
            self.lifecycle.wake();
        }
        let ids = steps.iter().map(|(_, id, _)| *id).collect();
        Ok(BulkRun { outcome: BulkOutcome { matched, requeued, capped }, requeued: ids })
    }

    /// Records an action that changes nothing (showing patient data, a download, sign-in),
    /// with the submission and its organisation when there is one.
    pub async fn note(
        &self,
        who: &Principal,
        action: Action,
        submission: Option<&crate::submission::SubmissionRecord>,
    ) -> Result<(), StoreError> {
        let audit = NewAudit {
            submission_id: submission.map(|s| s.id),
            organization: submission.map(|s| s.organization.to_string()),
            count: Some(1),
            ..Self::audit(who, action, crate::now(), None)
        };
        self.store.operate(&[], &audit).await.map(|_| ())
    }
}

/// `filter` narrowed to `scope`'s organisations.
pub fn within(filter: &ListFilter, scope: &Scope) -> ListFilter {
    let mut f = filter.clone();
    if let Scope::Only(set) = scope {
        f.organizations = Some(match &filter.organizations {
            Some(orgs) => orgs.iter().filter(|o| set.contains(*o)).cloned().collect(),
            None => set.iter().cloned().collect(),
        });
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_comments() {
        assert_eq!(comment(None), Ok(None));
        assert_eq!(comment(Some("   \n ")), Ok(None), "blank is no comment");
        assert_eq!(comment(Some(" роль уточнена ")), Ok(Some("роль уточнена".into())));
        assert_eq!(comment(Some("строка 1\r\nстрока 2")), Ok(Some("строка 1\nстрока 2".into())), "a form's line break");
        for hostile in [
            "\u{1b}[31mx",
            "a\u{0}b",
            "a\u{7}b",
            "a\rb",
            "a\tb",
            "\u{202e}x",
            "x\u{202a}y",
            "x\u{2066}y",
            "x\u{2069}",
            "x\u{200f}y",
            "x\u{61c}y",
            "a\u{2028}b",
            "a\u{2029}b",
        ] {
            assert_eq!(comment(Some(hostile)), Err(CommentError::ControlCharacter), "{hostile:?}");
        }
        assert_eq!(comment(Some(&"я".repeat(MAX_COMMENT_CHARS))).map(|c| c.map(|c| c.chars().count())), Ok(Some(1000)));
        assert_eq!(comment(Some(&"я".repeat(MAX_COMMENT_CHARS + 1))), Err(CommentError::TooLong));
        let padded = format!("  {}  ", "я".repeat(MAX_COMMENT_CHARS));
        assert!(comment(Some(&padded)).is_ok(), "counted once trimmed");
    }
}
