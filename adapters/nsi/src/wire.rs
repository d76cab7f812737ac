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

/// `versions` answer: `{"list": [{"version": "3.18", …}]}` **[seen]**.
#[derive(Debug, Deserialize)]
pub struct VersionsAnswer {
    pub list: Vec<VersionItem>,
}

#[derive(Debug, Deserialize)]
pub struct VersionItem {
    pub version: String,
}

/// `data` answer: `{"list": [{"<COLUMN>": value, …}], "total": n}` **[seen]**.
#[derive(Debug, Deserialize)]
pub struct DataAnswer {
    pub list: Vec<serde_json::Map<String, serde_json::Value>>,
    pub total: Option<u64>,
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
