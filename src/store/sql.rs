//! The engine-neutral surface the store's statements are written against: values to bind
//! ([`Arg`]), rows to read ([`Read`]), a connection that runs one statement ([`Exec`]) and
//! a builder for statements whose conditions vary ([`Sql`]). Placeholders are `$1`, `$2`, …
//! on both engines (SQLite reads `$N` as the N-th value, as PostgreSQL does); each engine
//! turns an [`Arg`] into its own column type (`sqlite.rs`: epoch milliseconds and ids as
//! text; `postgres.rs`: `timestamptz` and `uuid`) and reads them back through [`Read`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::StoreError;
use crate::submission::Status;

/// One value bound to a placeholder.
#[derive(Debug)]
pub enum Arg<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Bool(Option<bool>),
    Time(Option<DateTime<Utc>>),
    Id(Option<Uuid>),
    /// Already serialised, bound as the engine's JSON column type.
    Json(Option<Box<RawValue>>),
    Bytes(&'a [u8]),
    /// A list, for the engine's membership test (`Engine::any`).
    Texts(Vec<&'a str>),
    /// A list of ids, for the engine's membership test (`Engine::any`).
    Ids(Vec<Uuid>),
}

impl Arg<'_> {
    /// `value` as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Arg<'static>, StoreError> {
        serde_json::value::to_raw_value(value)
            .map(|v| Arg::Json(Some(v)))
            .map_err(|e| StoreError::Corrupt(format!("not serialisable: {e}")))
    }

    /// `value` as JSON, or NULL.
    pub fn opt_json<T: Serialize>(value: Option<&T>) -> Result<Arg<'static>, StoreError> {
        match value {
            Some(v) => Arg::json(v),
            None => Ok(Arg::Json(None)),
        }
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}
impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::Text(v.as_deref())
    }
}
/// `T` as its variant holding `Some(T)`, and `Option<T>` as the same variant.
macro_rules! arg_from {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl From<$t> for Arg<'_> {
            fn from(v: $t) -> Self {
                Arg::$variant(Some(v))
            }
        }
        impl From<Option<$t>> for Arg<'_> {
            fn from(v: Option<$t>) -> Self {
                Arg::$variant(v)
            }
        }
    )*};
}
arg_from!(i64 => Int, bool => Bool, DateTime<Utc> => Time, Uuid => Id);
impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Bytes(v)
    }
}
impl<'a> From<&'a Vec<u8>> for Arg<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Arg::Bytes(v)
    }
}
impl From<Status> for Arg<'_> {
    fn from(v: Status) -> Self {
        Arg::Text(Some(v.as_str()))
    }
}

/// `vec![Arg::from(a), Arg::from(b), …]`.
macro_rules! args {
    ($($v:expr),* $(,)?) => { vec![$($crate::store::sql::Arg::from($v)),*] };
}
pub(crate) use args;

/// A row as an engine returns it, read column by column in the gateway's types.
pub trait Read {
    fn text(&self, col: &str) -> Result<String, StoreError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    /// An integer column of any width.
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    fn flag(&self, col: &str) -> Result<bool, StoreError>;
    fn time(&self, col: &str) -> Result<DateTime<Utc>, StoreError>;
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    fn id(&self, col: &str) -> Result<Uuid, StoreError>;
    fn opt_id(&self, col: &str) -> Result<Option<Uuid>, StoreError>;
    fn bytes(&self, col: &str) -> Result<Vec<u8>, StoreError>;
    fn json<T: DeserializeOwned>(&self, col: &str) -> Result<T, StoreError>;
    fn opt_json<T: DeserializeOwned>(&self, col: &str) -> Result<Option<T>, StoreError>;

    /// A status column.
    fn status(&self, col: &str) -> Result<Status, StoreError> {
        self.text(col)?.parse().map_err(StoreError::Corrupt)
    }

    /// A count or size column (never negative).
    fn count(&self, col: &str) -> Result<u64, StoreError> {
        u64::try_from(self.int(col)?).map_err(|_| StoreError::Corrupt(format!("{col} is negative")))
    }
}

/// The [`Read`] methods whose column types both engines decode alike (text, flags, bytes,
/// JSON), inside an `impl Read for <engine's row>`.
macro_rules! read_alike {
    () => {
        fn text(&self, col: &str) -> Result<String, StoreError> {
            Ok(self.try_get(col)?)
        }
        fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
            Ok(self.try_get(col)?)
        }
        fn flag(&self, col: &str) -> Result<bool, StoreError> {
            Ok(self.try_get(col)?)
        }
        fn bytes(&self, col: &str) -> Result<Vec<u8>, StoreError> {
            Ok(self.try_get(col)?)
        }
        fn json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<T, StoreError> {
            Ok(self.try_get::<sqlx::types::Json<T>, _>(col)?.0)
        }
        fn opt_json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<Option<T>, StoreError> {
            Ok(self.try_get::<Option<sqlx::types::Json<T>>, _>(col)?.map(|j| j.0))
        }
    };
}
pub(crate) use read_alike;

/// A connection (pooled or in a transaction) that runs one statement at a time.
#[async_trait::async_trait]
pub trait Exec: Send {
    type Row: Read + Send + Sync;

    /// Runs a statement; how many rows it changed.
    async fn execute(&mut self, sql: &str, args: Vec<Arg<'_>>) -> Result<u64, StoreError>;
    async fn fetch_all(&mut self, sql: &str, args: Vec<Arg<'_>>) -> Result<Vec<Self::Row>, StoreError>;
    async fn fetch_optional(&mut self, sql: &str, args: Vec<Arg<'_>>) -> Result<Option<Self::Row>, StoreError>;

    async fn fetch_one(&mut self, sql: &str, args: Vec<Arg<'_>>) -> Result<Self::Row, StoreError> {
        self.fetch_optional(sql, args).await?.ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }
}

/// A statement built piece by piece, numbering its placeholders as values are added.
pub struct Sql<'a> {
    pub text: String,
    pub args: Vec<Arg<'a>>,
}

impl<'a> Sql<'a> {
    pub fn new(text: impl Into<String>) -> Self {
        Sql { text: text.into(), args: Vec::new() }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Adds `value` and returns its placeholder, for the caller to place.
    pub fn arg(&mut self, value: impl Into<Arg<'a>>) -> String {
        self.args.push(value.into());
        format!("${}", self.args.len())
    }

    /// Adds `value` and appends its placeholder.
    pub fn bind(&mut self, value: impl Into<Arg<'a>>) -> &mut Self {
        let p = self.arg(value);
        self.text.push_str(&p);
        self
    }
}

/// `'a', 'b'` for `status IN (…)`: the lifecycle's own state names, never input.
pub fn states(from: &[Status]) -> String {
    if from.is_empty() {
        // `IN ()` is not SQL; no state is named so.
        return "''".to_owned();
    }
    from.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ")
}
