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

/// One column to read from every row of a `data` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// Longest value, in bytes: a longer one refuses the whole answer.
    pub limit: usize,
    /// A row without it (absent, null or blank) refuses the whole answer.
    pub required: bool,
}

impl Column {
    pub const fn required(name: &'static str, limit: usize) -> Self {
        Self { name, limit, required: true }
    }

    pub const fn optional(name: &'static str, limit: usize) -> Self {
        Self { name, limit, required: false }
    }
}

/// One row: the value of each asked column, in the order asked (`None`: absent, null or
/// blank).
pub type Record = Vec<Option<String>>;

/// A `data` answer read as [`Record`]s.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecordPage {
    pub rows: Vec<Record>,
    pub total: Option<u64>,
}

/// Reads a `data` answer straight into its rows' codes and names: every other field and
/// column is skipped without being kept; a code or name longer than
/// [`crate::MAX_CODE_BYTES`] / [`crate::MAX_NAME_BYTES`], or a row without either, refuses
/// the whole answer (Russian reason). Text is trimmed; a number is its decimal text.
pub fn read_page(body: &[u8], columns: &Columns) -> Result<Page, String> {
    let page = read_records(body, &columns.wanted())?;
    let rows = page
        .rows
        .into_iter()
        .map(|mut r| {
            let name = r.pop().flatten().unwrap_or_default();
            (r.pop().flatten().unwrap_or_default(), name)
        })
        .collect();
    Ok(Page { rows, total: page.total })
}

/// Reads a `data` answer into the values of `columns` of each row, as [`read_page`] does:
/// every other field skipped, every value bounded by its column's limit, a row without a
/// required column refusing the whole answer.
pub fn read_records(body: &[u8], columns: &[Column]) -> Result<RecordPage, String> {
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

struct PageSeed<'a>(&'a [Column]);

impl<'de> serde::de::DeserializeSeed<'de> for PageSeed<'_> {
    type Value = RecordPage;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<RecordPage, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PageSeed<'_> {
    type Value = RecordPage;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("ответ НСИ: объект с list и total")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RecordPage, A::Error> {
        let mut page = RecordPage::default();
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

struct RowsSeed<'a>(&'a [Column]);

impl<'de> serde::de::DeserializeSeed<'de> for RowsSeed<'_> {
    type Value = Vec<Record>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RowsSeed<'_> {
    type Value = Vec<Record>;
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

struct RowSeed<'a>(&'a [Column]);

impl<'de> serde::de::DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Record;
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
    type Value = Record;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("строка справочника: объект столбцов")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut row: Record = vec![None; self.0.len()];
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.0.iter().position(|c| c.name == key) {
                Some(i) => row[i] = map.next_value_seed(Cell { limit: self.0[i].limit })?,
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        if let Some(c) = self.0.iter().zip(&row).find(|(c, v)| c.required && v.is_none()).map(|(c, _)| c) {
            return Err(serde::de::Error::custom(format!("в строке нет столбца {}", c.name)));
        }
        Ok(row)
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

impl Columns {
    /// The code and the name, both required, as [`read_records`] reads them.
    pub fn wanted(&self) -> [Column; 2] {
        [Column::required(self.code, crate::MAX_CODE_BYTES), Column::required(self.name, crate::MAX_NAME_BYTES)]
    }
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

/// The federal register of medical organisations (FRMO) as NSI publishes it: two
/// dictionaries, read with more columns than a code and a name.
pub mod frmo {
    use super::Column;

    /// FRMO: medical organisations (`shared/federal/NSI.md`).
    pub const ORGANIZATIONS: &str = "1.2.643.5.1.13.13.11.1461";
    /// FRMO: their structural units (departments).
    pub const DEPARTMENTS: &str = "1.2.643.5.1.13.13.99.2.114";

    /// Longest OID, in bytes.
    pub const MAX_OID_BYTES: usize = 128;
    /// Longest date as written, in bytes.
    pub const MAX_DATE_BYTES: usize = 32;
    /// Longest region id or name, in bytes.
    pub const MAX_REGION_BYTES: usize = 256;

    /// The organisations' columns, in the order [`crate::FrmoOrganization::of`] reads
    /// them. **[model: seen once in public client code]**: `oid`, `name_full`,
    /// `name_short`, `region_id`, `region_name`, `create_date`, `delete_date` (there are
    /// more: `inn`, `ogrn`, `modify_date`, `delete_reason`; the gateway does not keep them).
    pub const ORGANIZATION_COLUMNS: [Column; 7] = [
        Column::required("oid", MAX_OID_BYTES),
        Column::required("name_full", crate::MAX_NAME_BYTES),
        Column::optional("name_short", crate::MAX_NAME_BYTES),
        Column::optional("region_id", MAX_REGION_BYTES),
        Column::optional("region_name", MAX_REGION_BYTES),
        Column::optional("create_date", MAX_DATE_BYTES),
        Column::optional("delete_date", MAX_DATE_BYTES),
    ];

    /// The departments' columns, in the order [`crate::FrmoDepartment::of`] reads them.
    /// **[seen]** in public client code: `depart_oid`, `mo_oid`, `depart_name`,
    /// `depart_create_date`, `depart_liquidation_date` (and building, type and kind columns
    /// the gateway does not keep).
    pub const DEPARTMENT_COLUMNS: [Column; 5] = [
        Column::required("depart_oid", MAX_OID_BYTES),
        Column::required("mo_oid", MAX_OID_BYTES),
        Column::optional("depart_name", crate::MAX_NAME_BYTES),
        Column::optional("depart_create_date", MAX_DATE_BYTES),
        Column::optional("depart_liquidation_date", MAX_DATE_BYTES),
    ];
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

    #[test]
    fn records_keep_the_asked_columns_in_order() {
        let columns = [Column::required("oid", 64), Column::optional("name_short", 16), Column::optional("x", 8)];
        let body =
            r#"{"list": [{"name_short": "ГБУЗ", "oid": "1.2.3", "other": [1]}, {"oid": 7, "name_short": null}]}"#;
        let page = read_records(body.as_bytes(), &columns).unwrap();
        assert_eq!(
            page.rows,
            [vec![Some("1.2.3".into()), Some("ГБУЗ".into()), None], vec![Some("7".into()), None, None]]
        );
        assert!(read_records(br#"{"list": [{"oid": " "}]}"#, &columns).unwrap_err().contains("нет столбца oid"));
        let long = br#"{"list": [{"oid": "1", "x": "123456789"}]}"#;
        assert!(read_records(long, &columns).unwrap_err().contains("длиннее 8 байт"));
    }
}
