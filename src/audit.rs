//! The audit log's records: every operator's action (who, when, what, for which
//! organisation, with what comment, how many submissions) as [`crate::ops`] writes it and
//! the store keeps it; read by the ops API and the console.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

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
