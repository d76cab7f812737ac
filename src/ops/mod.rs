//! Operations: what ops staff do and see — re-runs and cancellations through the
//! lifecycle, every action in the audit log, the queue's figures and the REMD report.
//!
//! ## Layout
//!
//! - this module — the values ops work with (audit entries, queue figures, counts), and
//!   [`Operations`], the service behind both the ops API and the console: it reads the
//!   submission, asks [`crate::lifecycle`] what the action does, and has the store apply the
//!   change and its audit entry in one transaction;
//! - [`report`] — the REMD report and the dashboard's days, pure: aggregation of the
//!   store's counts, success rates, top error codes, the CSV a Russian-locale spreadsheet
//!   opens.

pub mod report;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::{Principal, Scope};
use crate::lifecycle::{Decision, Happening, Operator, RETRYABLE};
use crate::relay::Relay;
use crate::store::{Store, StoreError};
use crate::submission::{ListFilter, Status, Transition};

/// An operator's action, as the audit log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Retry,
    Cancel,
    BulkRetry,
    BulkRetryDryRun,
    ShowPersonalData,
    DownloadDocument,
    SignIn,
    SignOut,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::Retry,
        Action::Cancel,
        Action::BulkRetry,
        Action::BulkRetryDryRun,
        Action::ShowPersonalData,
        Action::DownloadDocument,
        Action::SignIn,
        Action::SignOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Retry => "retry",
            Action::Cancel => "cancel",
            Action::BulkRetry => "bulk_retry",
            Action::BulkRetryDryRun => "bulk_retry_dry_run",
            Action::ShowPersonalData => "show_personal_data",
            Action::DownloadDocument => "download_document",
            Action::SignIn => "sign_in",
            Action::SignOut => "sign_out",
        }
    }

    /// In Russian, for the console.
    pub fn title_ru(self) -> &'static str {
        match self {
            Action::Retry => "повторная отправка",
            Action::Cancel => "отмена",
            Action::BulkRetry => "массовый перезапуск",
            Action::BulkRetryDryRun => "массовый перезапуск (проверка)",
            Action::ShowPersonalData => "просмотр данных пациента",
            Action::DownloadDocument => "выгрузка документа",
            Action::SignIn => "вход в консоль",
            Action::SignOut => "выход из консоли",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The API client's id and name.
    pub actor_id: Uuid,
    pub actor_name: String,
    pub action: Action,
    pub submission_id: Option<Uuid>,
    /// The organisation acted for, when the action concerned one.
    pub organization: Option<String>,
    /// The filter of a bulk action.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    pub comment: Option<String>,
    /// Submissions affected (on a dry run: matched).
    pub count: u64,
}

/// An audit entry to write. `count: None` — the number of changes the same transaction
/// applied.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    pub at: DateTime<Utc>,
    pub actor_id: Uuid,
    pub actor_name: String,
    pub action: Action,
    pub submission_id: Option<Uuid>,
    /// The organisation acted for, when the action concerned one (what scoped keys see).
    pub organization: Option<String>,
    pub filter: Option<serde_json::Value>,
    pub comment: Option<String>,
    pub count: Option<u64>,
}

/// Which audit entries to read: newest first, older than `before` (an entry id).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// The actor's name or id.
    pub actor: Option<String>,
    /// A key limited to some organisations sees the entries of those organisations and its
    /// own: `(organisations, the key's client id)`. `None`: every entry.
    pub visible_to: Option<(Vec<egisz_contract::Oid>, Uuid)>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// A change an operator's action makes to one submission (guarded like every transition).
#[derive(Debug, Clone, Copy)]
pub struct OpsChange<'a> {
    pub id: Uuid,
    pub from: &'a [Status],
    pub transition: &'a Transition,
}

/// The oldest submission still on its way to REMD.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Waiting {
    pub id: Uuid,
    pub status: Status,
    pub created_at: DateTime<Utc>,
}

/// The queue as the store counts it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueFigures {
    pub counts: Vec<(Status, u64)>,
    pub oldest_waiting: Option<Waiting>,
    /// Still on their way to REMD although created before the registration deadline.
    pub past_deadline: u64,
}

/// Submissions created in a period, counted by what report rows need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortCount {
    pub organization: String,
    pub kind: u32,
    pub status: Status,
    /// The first code of the submission's current errors.
    pub error_code: Option<String>,
    pub count: u64,
}

/// Submissions created on one day (days since 1970-01-01 in the region's time), by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayCount {
    pub day: i64,
    pub status: Status,
    pub count: u64,
}

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
    relay: Arc<Relay>,
    /// Most submissions one bulk call re-runs.
    pub bulk_max: u32,
}

impl Operations {
    pub fn new(store: Arc<dyn Store>, relay: Arc<Relay>, bulk_max: u32) -> Self {
        Self { store, relay, bulk_max: bulk_max.max(1) }
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
        let step = match self.relay.decide(&record, happening, now) {
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
            self.relay.wake();
        }
        self.store.submission(id).await?.ok_or(OpsError::NotFound)
    }

    /// Re-runs up to `bulk_max` of the submissions `filter` matches (within `who`'s
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
        let capped = matched > u64::from(self.bulk_max);
        if dry_run {
            let entry = NewAudit { filter: Some(filter_shown), organization, count: Some(matched), ..base };
            self.store.operate(&[], &entry).await?;
            return Ok(BulkRun { outcome: BulkOutcome { matched, requeued: 0, capped }, requeued: Vec::new() });
        }
        let records =
            self.store.list_submissions(&ListFilter { limit: self.bulk_max, oldest_first: true, ..filter }).await?;
        let operator = Operator { name: &who.name, comment };
        let steps: Vec<_> = records
            .iter()
            .filter_map(|r| match self.relay.decide(r, Happening::Retry(&operator), now) {
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
            self.relay.wake();
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
