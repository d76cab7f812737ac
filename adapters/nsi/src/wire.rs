//! The NSI service's public REST API as public client code of MIS vendors calls it
//! (`shared/federal/NSI.md`). **[model]** where marked: every name of the wire is in this
//! module, so it can be corrected against the official description without touching
//! anything else.

use serde::Deserialize;

/// `GET {base}versions?identifier=<oid>&size=<n>` **[seen]**.
pub const VERSIONS: &str = "versions";
/// `GET {base}data?identifier=<oid>&version=<v>&page=<p>&size=<n>` **[seen]**; pages from 1.
pub const DATA: &str = "data";
pub const IDENTIFIER: &str = "identifier";
pub const VERSION: &str = "version";
pub const PAGE: &str = "page";
pub const SIZE: &str = "size";
/// Rows per `data` page (clients use 50–1000) **[seen]**.
pub const PAGE_SIZE: usize = 500;
/// How many versions to ask for.
pub const VERSIONS_ASKED: usize = 50;
/// Most rows one page may hold (twice what is asked for): a page of a million tiny rows is
/// refused, not built.
pub const MAX_PAGE_ROWS: usize = 2 * PAGE_SIZE;

/// `versions` answer: `{"list": [{"version": "3.18", …}]}` **[seen]**.
#[derive(Debug, Deserialize)]
pub struct VersionsAnswer {
    pub list: Vec<VersionItem>,
}

#[derive(Debug, Deserialize)]
pub struct VersionItem {
    pub version: String,
}

/// A `data` answer: `{"list": [{"<COLUMN>": value, …}], "total": n}` **[seen]**, read as
/// the `(code, name)` of each row by `columns`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub rows: Vec<(String, String)>,
    pub total: Option<u64>,
}

/// Reads a `data` answer straight into its rows' codes and names: every other field and
/// column is skipped without being kept; a code or name longer than
/// [`crate::MAX_CODE_BYTES`] / [`crate::MAX_NAME_BYTES`], or a row without either, refuses
/// the whole answer (Russian reason). Text is trimmed; a number is its decimal text.
pub fn read_page(body: &[u8], columns: &Columns) -> Result<Page, String> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(body);
    let page = PageSeed(columns).deserialize(&mut de).map_err(|e| page_error(&e))?;
    de.end().map_err(|e| page_error(&e))?;
    Ok(page)
}

fn page_error(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Data => e.to_string().split(" at line").next().unwrap_or_default().to_owned(),
        _ => "ответ НСИ не JSON".to_owned(),
    }
}

struct PageSeed<'a>(&'a Columns);

impl<'de> serde::de::DeserializeSeed<'de> for PageSeed<'_> {
    type Value = Page;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Page, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PageSeed<'_> {
    type Value = Page;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("ответ НСИ: объект с list и total")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Page, A::Error> {
        let mut page = Page::default();
        let mut seen_list = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "list" => {
                    page.rows = map.next_value_seed(RowsSeed(self.0))?;
                    seen_list = true;
                }
                "total" => page.total = map.next_value()?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        if !seen_list {
            return Err(serde::de::Error::custom("в ответе НСИ нет list"));
        }
        Ok(page)
    }
}

struct RowsSeed<'a>(&'a Columns);

impl<'de> serde::de::DeserializeSeed<'de> for RowsSeed<'_> {
    type Value = Vec<(String, String)>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RowsSeed<'_> {
    type Value = Vec<(String, String)>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("список строк справочника")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut rows = Vec::new();
        while let Some(row) = seq.next_element_seed(RowSeed(self.0))? {
            if rows.len() == MAX_PAGE_ROWS {
                return Err(serde::de::Error::custom(format!("на странице больше {MAX_PAGE_ROWS} строк")));
            }
            rows.push(row);
        }
        Ok(rows)
    }
}

struct RowSeed<'a>(&'a Columns);

impl<'de> serde::de::DeserializeSeed<'de> for RowSeed<'_> {
    type Value = (String, String);
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

/// A cell's text, bounded: a string (trimmed) or a number; anything else is none.
struct Cell {
    limit: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for Cell {
    type Value = Option<String>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Cell {
    type Value = Option<String>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("строка или число")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.len() > self.limit {
            return Err(E::custom(format!("значение длиннее {} байт", self.limit)));
        }
        Ok(Some(v.trim().to_owned()).filter(|s| !s.is_empty()))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

impl<'de> serde::de::Visitor<'de> for RowSeed<'_> {
    type Value = (String, String);
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("строка справочника: объект столбцов")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut code, mut name) = (None, None);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == self.0.code {
                code = map.next_value_seed(Cell { limit: crate::MAX_CODE_BYTES })?;
            } else if key == self.0.name {
                name = map.next_value_seed(Cell { limit: crate::MAX_NAME_BYTES })?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        let missing = |column: &str| serde::de::Error::custom(format!("в строке нет столбца {column}"));
        Ok((code.ok_or_else(|| missing(self.0.code))?, name.ok_or_else(|| missing(self.0.name))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSITIONS: Columns =
        Columns { oid: "1.2.643.5.1.13.13.11.1002", what: "должности", code: "ID", name: "NAME" };

    #[test]
    fn a_page_is_read_into_codes_and_names_only() {
        let body = r#"{"list": [{"ID": 73, "NAME": " врач-офтальмолог ", "EXTRA": {"deep": [1, 2, {"x": "y"}]}},
                                 {"NAME": "врач-терапевт", "ID": "49", "SORT": 2}], "total": 2, "page": 1}"#;
        let page = read_page(body.as_bytes(), &POSITIONS).unwrap();
        assert_eq!(page.total, Some(2));
        assert_eq!(page.rows, [("73".into(), "врач-офтальмолог".into()), ("49".into(), "врач-терапевт".into())]);
    }

    #[test]
    fn every_field_is_bounded_and_every_row_whole() {
        let long_name =
            format!(r#"{{"list": [{{"ID": "1", "NAME": "{}"}}]}}"#, "я".repeat(crate::MAX_NAME_BYTES / 2 + 1));
        assert!(read_page(long_name.as_bytes(), &POSITIONS).unwrap_err().contains("длиннее 4096 байт"));
        let long_code = format!(r#"{{"list": [{{"ID": "{}", "NAME": "x"}}]}}"#, "1".repeat(crate::MAX_CODE_BYTES + 1));
        assert!(read_page(long_code.as_bytes(), &POSITIONS).unwrap_err().contains("длиннее 256 байт"));
        let at_limit = format!(r#"{{"list": [{{"ID": "1", "NAME": "{}"}}]}}"#, "я".repeat(crate::MAX_NAME_BYTES / 2));
        assert!(read_page(at_limit.as_bytes(), &POSITIONS).is_ok());
        assert!(read_page(br#"{"list": [{"NAME": "x"}]}"#, &POSITIONS).unwrap_err().contains("нет столбца ID"));
        assert!(read_page(br#"{"total": 3}"#, &POSITIONS).unwrap_err().contains("нет list"));
        assert!(read_page(b"<html>", &POSITIONS).unwrap_err().contains("не JSON"));
        assert!(read_page(br#"{"list": []} trailing"#, &POSITIONS).is_err());
        let crowded = format!(r#"{{"list": [{}]}}"#, vec![r#"{"ID": 1, "NAME": "x"}"#; MAX_PAGE_ROWS + 1].join(","));
        assert!(read_page(crowded.as_bytes(), &POSITIONS).unwrap_err().contains("больше 1000 строк"));
    }
}

/// The columns holding the code and the name of each dictionary the gateway refreshes.
/// **[model]**: column names differ per dictionary and are read from client code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    pub oid: &'static str,
    pub what: &'static str,
    pub code: &'static str,
    pub name: &'static str,
}

pub const DICTIONARIES: &[Columns] = &[
    Columns {
        oid: "1.2.643.5.1.13.13.99.2.305", what: "коды сообщений РЭМД", code: "CODE", name: "NAME"
    },
    Columns { oid: "1.2.643.5.1.13.13.11.1520", what: "виды документов", code: "ID", name: "NAME" },
    Columns {
        oid: "1.2.643.5.1.13.13.11.1522", what: "коды видов документов CDA", code: "ID", name: "NAME"
    },
    Columns {
        oid: "1.2.643.5.1.13.13.11.1002", what: "должности медицинских работников", code: "ID", name: "NAME"
    },
    Columns { oid: "1.2.643.5.1.13.13.11.1040", what: "пол пациента", code: "ID", name: "NAME" },
    Columns {
        oid: "1.2.643.5.1.13.13.99.2.285", what: "уровни конфиденциальности", code: "CODE", name: "NAME"
    },
    Columns { oid: "1.2.643.5.1.13.13.99.2.197", what: "секции СЭМД", code: "CODE", name: "NAME" },
];
