//! The FRMR wire format — every path, query parameter and JSON field name of FRMR and of
//! the token provider lives in this module, and nowhere else in the crate.
//!
//! Parsing is lenient where FRMR is loose (\[model\], FRMR.md gives no schema):
//! - ids (`oid`, `id`, `fedPositionId`, `postId`, `reasonId`, …) may be JSON numbers or
//!   strings and become strings; other JSON types are an unreadable answer;
//! - a missing or `null` array is empty; unknown fields are ignored;
//! - dates are `YYYY-MM-DD`, possibly followed by a time part (`2015-02-01T00:00:00`,
//!   `…+03:00`, `… 00:00:00`): the first ten characters are the date, without any time
//!   zone conversion; `null` and `""` mean no date; anything else is an unreadable answer
//!   (a card's dates decide verdicts, so they are never guessed);
//! - `gender`, `positionTypeId` and `rate` are informational: numbers or numeric strings,
//!   and a value that is neither becomes `None` rather than failing the lookup;
//! - missing `lastName`/`firstName` become empty strings, an empty `patronymic` is `None`.
//!
//! Errors of this module never quote the values they failed on (they may be personal).

use chrono::NaiveDate;
use egisz_contract::frmr::{Dereliction, FrmrPerson, PersonCard};
use egisz_contract::{Personal, Snils};
use serde::{Deserialize, Deserializer};

/// Path of the lookup, relative to the base URL \[confirmed\].
pub(crate) const PERSON_FULL_PATH: &str = "person/full";
/// Query parameter: OID of the medical organisation asking \[confirmed\].
pub(crate) const QUERY_MO: &str = "mo";
/// Query parameter: include the employment records (`mr=true`) \[confirmed\].
pub(crate) const QUERY_MR: &str = "mr";
/// Value of [`QUERY_MR`].
pub(crate) const QUERY_MR_VALUE: &str = "true";
/// Query parameter: the SNILS, 11 digits without separators \[confirmed\].
pub(crate) const QUERY_SNILS: &str = "snils";
/// Authorisation scheme of FRMR and of the token provider's `token_type` \[confirmed\].
pub(crate) const BEARER: &str = "Bearer";
/// Media type asked for.
pub(crate) const ACCEPT_JSON: &str = "application/json";
/// Token lifetime assumed when the provider does not say (`expires_in` missing) \[model\]:
/// FRMR tokens live 5 minutes.
pub(crate) const DEFAULT_TOKEN_LIFETIME_SECS: f64 = 300.0;

// ---------------------------------------------------------------------------------------
// FRMR envelopes
// ---------------------------------------------------------------------------------------

/// Success envelope: `{"requestId": "...", "content": {...} | null, "errorUserMessage"}`.
///
/// `content` must be present (as an object or `null`): a 2xx body without it is not an
/// FRMR answer.
///
/// No `Debug`: it holds personal data in the clear.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Envelope {
    #[serde(default, deserialize_with = "present")]
    pub content: Option<Option<WirePerson>>,
    #[serde(default)]
    pub error_user_message: Option<serde_json::Value>,
}

/// Error envelope of a non-2xx answer: `{"timestamp", "code", "reasonPhrase", "message"}`.
///
/// Only `code` (as a number) and `reasonPhrase` (when it is a standard HTTP reason phrase)
/// ever reach a reason or a log; `message` is free text that may hold names and dates, and
/// is read only to recognise the envelope.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorEnvelope {
    #[serde(default)]
    pub timestamp: Option<serde_json::Value>,
    #[serde(default)]
    pub code: Option<serde_json::Value>,
    #[serde(default)]
    pub reason_phrase: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl ErrorEnvelope {
    /// The envelope, if `body` is a JSON object with at least one of its fields.
    pub(crate) fn parse(body: &[u8]) -> Option<Self> {
        let env: Self = serde_json::from_slice(body).ok()?;
        let any = env.timestamp.is_some() || env.code.is_some() || env.reason_phrase.is_some() || env.message.is_some();
        any.then_some(env)
    }

    /// `code` when it is a small non-negative integer (a number or a string of at most six
    /// digits) — never long enough to be a SNILS or another personal number.
    pub(crate) fn numeric_code(&self) -> Option<u32> {
        const MAX: u32 = 999_999;
        match self.code.as_ref()? {
            serde_json::Value::Number(n) => n.as_u64().and_then(|v| u32::try_from(v).ok()).filter(|v| *v <= MAX),
            serde_json::Value::String(s) => {
                let s = s.trim();
                let digits = !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit());
                if digits { s.parse().ok() } else { None }
            }
            _ => None,
        }
    }
}

/// The person (`content`) of `person/full`. No `Debug`: it holds personal data in the
/// clear.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WirePerson {
    #[serde(default, deserialize_with = "lenient_string")]
    pub oid: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub snils: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub patronymic: Option<String>,
    #[serde(default, deserialize_with = "lenient_date")]
    pub birth_date: Option<NaiveDate>,
    #[serde(default, deserialize_with = "loose_u8")]
    pub gender: Option<u8>,
    #[serde(default)]
    pub person_card: Option<Vec<WireCard>>,
}

/// One employment record (`personCard[]`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireCard {
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    /// \[model\] the OID of the medical organisation.
    #[serde(default, deserialize_with = "lenient_string")]
    pub oid: Option<String>,
    /// Name of the medical organisation.
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub nr_pmu_depart_id: Option<String>,
    #[serde(default)]
    pub nr_pmu_depart_name: Option<String>,
    /// \[model\] a code of NSI 1.2.643.5.1.13.13.11.1002.
    #[serde(default, deserialize_with = "lenient_string")]
    pub fed_position_id: Option<String>,
    #[serde(default)]
    pub fed_position: Option<String>,
    /// FRMR's own post dictionary; read for leniency, not carried into the domain (the
    /// contract's `PersonCard` has no field for it).
    #[serde(default, deserialize_with = "lenient_string")]
    #[expect(dead_code, reason = "parsed to validate the shape; the domain has no field")]
    pub post_id: Option<String>,
    #[serde(default)]
    #[expect(dead_code, reason = "parsed to validate the shape; the domain has no field")]
    pub post_name: Option<String>,
    #[serde(default, deserialize_with = "loose_u8")]
    pub position_type_id: Option<u8>,
    #[serde(default, deserialize_with = "loose_f64")]
    pub rate: Option<f64>,
    #[serde(default, deserialize_with = "lenient_date")]
    pub begin_date: Option<NaiveDate>,
    #[serde(default, deserialize_with = "lenient_date")]
    pub end_date: Option<NaiveDate>,
    #[serde(default)]
    pub temporary_derelictions: Option<Vec<WireDereliction>>,
}

/// A temporary absence (`temporaryDerelictions[]`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireDereliction {
    #[serde(default, deserialize_with = "lenient_string")]
    pub reason_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_date")]
    pub begin_date: Option<NaiveDate>,
    #[serde(default, deserialize_with = "lenient_date")]
    pub end_date: Option<NaiveDate>,
}

/// Why a readable FRMR person could not become a domain person. Texts are fixed: they
/// never carry values from the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MapError {
    /// `snils` is missing or is not a valid SNILS.
    InvalidSnils,
    /// `snils` is valid but is not the one asked for.
    OtherSnils,
}

impl MapError {
    pub(crate) fn text(self) -> &'static str {
        match self {
            MapError::InvalidSnils => "FRMR answered a person without a valid snils",
            MapError::OtherSnils => "FRMR answered a person with another snils than asked",
        }
    }
}

impl WirePerson {
    /// The domain person; `requested` must be the SNILS FRMR answered for.
    pub(crate) fn into_domain(self, requested: &Snils) -> Result<FrmrPerson, MapError> {
        let snils = self.snils.as_deref().and_then(|s| Snils::parse(s).ok()).ok_or(MapError::InvalidSnils)?;
        if &snils != requested {
            return Err(MapError::OtherSnils);
        }
        Ok(FrmrPerson {
            frmr_id: non_empty(self.oid),
            snils,
            last_name: Personal(self.last_name.map(trimmed).unwrap_or_default()),
            first_name: Personal(self.first_name.map(trimmed).unwrap_or_default()),
            patronymic: non_empty(self.patronymic).map(Personal),
            birth_date: self.birth_date.map(Personal),
            gender: self.gender,
            cards: self.person_card.unwrap_or_default().into_iter().map(WireCard::into_domain).collect(),
        })
    }
}

impl WireCard {
    fn into_domain(self) -> PersonCard {
        PersonCard {
            id: non_empty(self.id),
            organization: non_empty(self.oid),
            organization_name: non_empty(self.organization),
            department: non_empty(self.nr_pmu_depart_id),
            department_name: non_empty(self.nr_pmu_depart_name),
            position_code: non_empty(self.fed_position_id),
            position: non_empty(self.fed_position),
            position_type: self.position_type_id,
            rate: self.rate,
            begin_date: self.begin_date,
            end_date: self.end_date,
            derelictions: self
                .temporary_derelictions
                .unwrap_or_default()
                .into_iter()
                .map(|d| Dereliction {
                    reason_id: non_empty(d.reason_id),
                    begin_date: d.begin_date,
                    end_date: d.end_date,
                })
                .collect(),
        }
    }
}

fn trimmed(s: String) -> String {
    let t = s.trim();
    if t.len() == s.len() { s } else { t.to_owned() }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(trimmed).filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------------------------------
// Token provider [model]
// ---------------------------------------------------------------------------------------

/// Answer of the token provider: `{"token": "...", "expires_in": 300, "token_type": "Bearer"}`.
///
/// No `Debug`: it holds the token.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub token: String,
    /// Lifetime in seconds; a number or a numeric string.
    #[serde(default, deserialize_with = "loose_f64")]
    pub expires_in: Option<f64>,
    #[serde(default)]
    pub token_type: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Lenient field readers
// ---------------------------------------------------------------------------------------

/// Distinguishes a present `null` (`Some(None)`) from a missing field (`None`, via
/// `#[serde(default)]`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A string or a number, as a string.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(serde::de::Error::custom("an id must be a string or a number")),
    }
}

/// `YYYY-MM-DD`, optionally followed by `T` or a space and a time part.
fn lenient_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    parse_date(&s).map_err(|()| serde::de::Error::custom("a date must be YYYY-MM-DD"))
}

pub(crate) fn parse_date(s: &str) -> Result<Option<NaiveDate>, ()> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let date = match s.get(..10) {
        Some(head) if s.len() == 10 || matches!(s.as_bytes()[10], b'T' | b't' | b' ') => head,
        _ => return Err(()),
    };
    NaiveDate::parse_from_str(date, "%Y-%m-%d").map(Some).map_err(|_| ())
}

/// A number or a numeric string; anything else (including out-of-range) is `None`.
fn loose_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().replace(',', ".").parse().ok(),
        _ => None,
    }
    .filter(|v: &f64| v.is_finite()))
}

/// A small non-negative integer, as a number or a numeric string; otherwise `None`.
fn loose_u8<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|v| u8::try_from(v).ok()),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snils() -> Snils {
        Snils::parse("20311784514").unwrap()
    }

    fn envelope(json: &str) -> Envelope {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn dates_take_the_date_part() {
        let d = |s| parse_date(s).unwrap();
        let feb1 = NaiveDate::from_ymd_opt(2015, 2, 1);
        assert_eq!(d("2015-02-01"), feb1);
        assert_eq!(d("2015-02-01T00:00:00"), feb1);
        assert_eq!(d("2015-02-01T00:00:00.000+03:00"), feb1);
        assert_eq!(d("2015-02-01 00:00:00"), feb1);
        assert_eq!(d(""), None);
        for bad in ["01.02.2015", "2015-02-31", "2015-02-011", "2015-2-1", "2015-02-01X"] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_missing_null_or_present() {
        assert!(envelope(r#"{"requestId":"r"}"#).content.is_none());
        assert!(matches!(envelope(r#"{"requestId":"r","content":null}"#).content, Some(None)));
        assert!(matches!(envelope(r#"{"content":{"snils":"20311784514"}}"#).content, Some(Some(_))));
    }

    #[test]
    fn lenient_person() {
        let env = envelope(
            r#"{"content":{"oid":"2023.3475290","snils":"203-117-845 14","lastName":" Иванова ",
                "patronymic":"","gender":"2","birthDate":null,"extra":{"x":1},
                "personCard":[{"id":17,"oid":"1.2.643.5.1.13.13.12.2.42.2917","rate":"0,5",
                   "positionTypeId":"x","fedPositionId":109,"beginDate":"2015-02-01T00:00:00",
                   "temporaryDerelictions":null},
                  {"id":"18","postId":5}]}}"#,
        );
        let person = env.content.unwrap().unwrap().into_domain(&snils()).unwrap();
        assert_eq!(person.frmr_id.as_deref(), Some("2023.3475290"));
        assert_eq!(person.last_name.expose(), "Иванова");
        assert_eq!(person.first_name.expose(), "");
        assert_eq!(person.patronymic, None);
        assert_eq!(person.gender, Some(2));
        assert_eq!(person.cards.len(), 2);
        let c = &person.cards[0];
        assert_eq!(c.id.as_deref(), Some("17"));
        assert_eq!(c.position_code.as_deref(), Some("109"));
        assert_eq!(c.rate, Some(0.5));
        assert_eq!(c.position_type, None);
        assert_eq!(c.begin_date, NaiveDate::from_ymd_opt(2015, 2, 1));
        assert!(c.derelictions.is_empty());
        assert_eq!(person.cards[1].id.as_deref(), Some("18"));
    }

    #[test]
    fn snils_must_be_valid_and_the_one_asked() {
        let person = |json: &str| envelope(json).content.unwrap().unwrap().into_domain(&snils());
        assert_eq!(person(r#"{"content":{"lastName":"X"}}"#).unwrap_err(), MapError::InvalidSnils);
        assert_eq!(person(r#"{"content":{"snils":"20311784515"}}"#).unwrap_err(), MapError::InvalidSnils);
        assert_eq!(person(r#"{"content":{"snils":"11223344595"}}"#).unwrap_err(), MapError::OtherSnils);
        assert!(person(r#"{"content":{"snils":20311784514}}"#).is_ok());
    }

    #[test]
    fn bad_ids_and_dates_fail_without_quoting_values() {
        for json in [
            r#"{"content":{"snils":"20311784514","personCard":[{"id":{"a":1}}]}}"#,
            r#"{"content":{"snils":"20311784514","birthDate":"31.12.1980"}}"#,
        ] {
            let Err(err) = serde_json::from_str::<Envelope>(json) else {
                panic!("must not parse: {json}");
            };
            let text = err.to_string();
            assert!(!text.contains("1980"), "{text}");
        }
    }

    #[test]
    fn error_envelope() {
        assert!(ErrorEnvelope::parse(b"<html>Not Found</html>").is_none());
        assert!(ErrorEnvelope::parse(b"{}").is_none());
        let env = ErrorEnvelope::parse(
            br#"{"timestamp":"2024-01-01T00:00:00","code":400,"reasonPhrase":"Bad Request","message":"snils"}"#,
        )
        .unwrap();
        assert_eq!(env.numeric_code(), Some(400));
        let code = |json: &str| ErrorEnvelope::parse(json.as_bytes()).unwrap().numeric_code();
        assert_eq!(code(r#"{"code":"404"}"#), Some(404));
        assert_eq!(code(r#"{"code":" 1234 "}"#), Some(1234));
        assert_eq!(code(r#"{"code":20311784514}"#), None);
        assert_eq!(code(r#"{"code":"20311784514"}"#), None);
        assert_eq!(code(r#"{"code":"E400"}"#), None);
        assert_eq!(code(r#"{"code":-1}"#), None);
        assert_eq!(code(r#"{"code":4.5}"#), None);
        assert_eq!(code(r#"{"message":"x"}"#), None);
    }
}
