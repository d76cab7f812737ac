//! The FRMO copy in memory: only what lookups need — for each organisation its display name
//! and the days it is valid between, and for each department its number under its
//! organisation and its days. Built from the stored rows page by page ([`IndexBuilder`]);
//! pure.
//!
//! A department's OID is `<MO OID>.0.<n>`: it is held as `n` beside its organisation (twelve
//! bytes), not as a string of its own; one FRMO names otherwise, or under an organisation the
//! copy lacks, is held whole in [`FrmoIndex::other_departments`].

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use egisz_contract::Oid;
use egisz_nsi::{FrmoDepartment, FrmoOrganization};

/// The days something is valid between, both included; `None`: open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Validity {
    pub from: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
}

impl Validity {
    /// Whether `day` lies within (entered on it or before; deleted on it or after).
    pub fn covers(self, day: NaiveDate) -> bool {
        self.from.is_none_or(|f| f <= day) && self.until.is_none_or(|u| day <= u)
    }
}

/// An organisation as the index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// The short name, or the full one where FRMO gives no short name.
    pub name: Box<str>,
    pub validity: Validity,
    /// Its departments `<OID>.0.<n>`, by `n`.
    departments: Vec<(u32, Validity)>,
}

impl Organization {
    /// The department numbered `n` (`<OID>.0.<n>`).
    pub fn department(&self, n: u32) -> Option<Validity> {
        self.departments.binary_search_by_key(&n, |(k, _)| *k).ok().map(|i| self.departments[i].1)
    }
}

/// Which copies an index was built from, and when they were complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSource {
    pub organizations_version: String,
    pub departments_version: String,
    /// The older of the two copies' completion: the age of the index.
    pub complete_at: DateTime<Utc>,
}

/// The FRMO copy in force, as lookups need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrmoIndex {
    pub source: IndexSource,
    organizations: HashMap<Box<str>, Organization>,
    /// Departments not of the form `<MO OID>.0.<n>` under an organisation of the copy: OID →
    /// (organisation OID, days).
    other_departments: HashMap<Box<str>, (Box<str>, Validity)>,
    /// How many departments it holds (counted once, when built: `/readyz` asks often).
    departments: usize,
}

/// What the index says of a department.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepartmentFound {
    /// FRMO has it (under this organisation), valid between these days.
    Known(Validity),
    /// FRMO has no such department.
    Unknown,
}

impl FrmoIndex {
    pub fn organization(&self, oid: &str) -> Option<&Organization> {
        self.organizations.get(oid)
    }

    /// The display name of `oid`, if FRMO knows it.
    pub fn name_of(&self, oid: &str) -> Option<&str> {
        self.organizations.get(oid).map(|o| &*o.name)
    }

    /// A department by its OID.
    pub fn department(&self, oid: &Oid) -> DepartmentFound {
        if let Some(mo) = oid.organization_of_department()
            && let Some(n) = oid.as_str().rsplit('.').next().and_then(|n| n.parse::<u32>().ok())
            && let Some(org) = self.organizations.get(mo.as_str())
            && let Some(v) = org.department(n)
        {
            return DepartmentFound::Known(v);
        }
        match self.other_departments.get(oid.as_str()) {
            Some((_, v)) => DepartmentFound::Known(*v),
            None => DepartmentFound::Unknown,
        }
    }

    /// The heap it holds, in bytes, counted from its tables' capacities and its strings (the
    /// hash tables' control bytes included, the allocator's own overhead not).
    pub fn heap_bytes(&self) -> usize {
        fn table<K, V>(m: &HashMap<K, V>) -> usize {
            // hashbrown: a power-of-two number of buckets holding (K, V), one control byte each.
            let buckets = (m.capacity() * 8 / 7).next_power_of_two();
            buckets * (std::mem::size_of::<(K, V)>() + 1)
        }
        let orgs: usize = self
            .organizations
            .iter()
            .map(|(k, o)| k.len() + o.name.len() + o.departments.capacity() * std::mem::size_of::<(u32, Validity)>())
            .sum();
        let others: usize = self.other_departments.iter().map(|(k, (mo, _))| k.len() + mo.len()).sum();
        table(&self.organizations) + orgs + table(&self.other_departments) + others
    }

    /// How many organisations and departments it holds.
    pub fn counts(&self) -> (usize, usize) {
        (self.organizations.len(), self.departments)
    }
}

/// The name views show for an organisation: its short name, or its full name where FRMO
/// gives no short one.
pub fn display_name<'a>(full: &'a str, short: Option<&'a str>) -> &'a str {
    short.filter(|s| !s.trim().is_empty()).unwrap_or(full)
}

/// Text as names are compared: lower case, `ё` as `е`, runs of spaces as one.
pub fn fold(text: &str) -> String {
    let lower = text.to_lowercase().replace('ё', "е");
    lower.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Builds an index from the stored rows, organisations first, each page as it comes.
#[derive(Debug)]
pub struct IndexBuilder {
    organizations: HashMap<Box<str>, Organization>,
    other_departments: HashMap<Box<str>, (Box<str>, Validity)>,
}

impl IndexBuilder {
    pub fn new() -> Self {
        Self { organizations: HashMap::new(), other_departments: HashMap::new() }
    }

    pub fn organizations(&mut self, page: Vec<FrmoOrganization>) {
        self.organizations.reserve(page.len());
        for o in page {
            let name = display_name(&o.name_full, o.name_short.as_deref()).to_owned();
            let validity = Validity { from: o.created, until: o.deleted };
            self.organizations.insert(
                o.oid.into_boxed_str(),
                Organization { name: name.into_boxed_str(), validity, departments: Vec::new() },
            );
        }
    }

    /// Departments; after every organisation.
    pub fn departments(&mut self, page: Vec<FrmoDepartment>) {
        for d in page {
            let validity = Validity { from: d.created, until: d.liquidated };
            let numbered = Oid::parse(&d.oid).ok().and_then(|oid| {
                let mo = oid.organization_of_department().filter(|mo| mo.as_str() == d.organization)?;
                let n = oid.as_str().rsplit('.').next()?.parse::<u32>().ok()?;
                Some((mo, n))
            });
            match numbered.and_then(|(mo, n)| self.organizations.get_mut(mo.as_str()).map(|o| (o, n))) {
                Some((org, n)) => org.departments.push((n, validity)),
                None => {
                    self.other_departments.insert(d.oid.into_boxed_str(), (d.organization.into_boxed_str(), validity));
                }
            }
        }
    }

    pub fn finish(mut self, source: IndexSource) -> FrmoIndex {
        for org in self.organizations.values_mut() {
            org.departments.sort_by_key(|(n, _)| *n);
            org.departments.dedup_by_key(|(n, _)| *n);
            org.departments.shrink_to_fit();
        }
        self.organizations.shrink_to_fit();
        self.other_departments.shrink_to_fit();
        let numbered: usize = self.organizations.values().map(|o| o.departments.len()).sum();
        let departments = numbered + self.other_departments.len();
        FrmoIndex { source, organizations: self.organizations, other_departments: self.other_departments, departments }
    }
}

impl Default for IndexBuilder {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn org(oid: &str, short: Option<&str>, deleted: Option<&str>) -> FrmoOrganization {
        FrmoOrganization {
            oid: oid.into(),
            name_full: format!("Полное имя {oid}"),
            name_short: short.map(Into::into),
            region_id: Some("42".into()),
            region_name: None,
            created: Some(day("2010-01-01")),
            deleted: deleted.map(day),
        }
    }

    fn dept(oid: &str, mo: &str, liquidated: Option<&str>) -> FrmoDepartment {
        FrmoDepartment {
            oid: oid.into(),
            organization: mo.into(),
            name: None,
            created: None,
            liquidated: liquidated.map(day),
        }
    }

    const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";

    #[test]
    fn organisations_and_departments_are_found_by_oid() {
        let mut b = IndexBuilder::new();
        b.organizations(vec![
            org(MO, Some("ГАУЗ ККРБ"), None),
            org("1.2.643.5.1.13.13.12.2.42.1", None, Some("2020-01-01")),
        ]);
        b.departments(vec![
            dept(&format!("{MO}.0.4411"), MO, None),
            dept(&format!("{MO}.0.4399"), MO, Some("2022-06-30")),
            dept("1.2.643.5.1.13.13.12.2.42.9.0.1", "1.2.643.5.1.13.13.12.2.42.9", None),
        ]);
        let source = IndexSource {
            organizations_version: "1".into(),
            departments_version: "1".into(),
            complete_at: DateTime::UNIX_EPOCH,
        };
        let index = b.finish(source);
        assert_eq!(index.counts(), (2, 3));
        assert_eq!(index.name_of(MO), Some("ГАУЗ ККРБ"));
        assert_eq!(index.name_of("1.2.643.5.1.13.13.12.2.42.1"), Some("Полное имя 1.2.643.5.1.13.13.12.2.42.1"));
        assert!(!index.organization("1.2.643.5.1.13.13.12.2.42.1").unwrap().validity.covers(day("2020-01-02")));
        assert!(index.organization("1.2.643.5.1.13.13.12.2.42.1").unwrap().validity.covers(day("2020-01-01")));
        let oid = |s: &str| Oid::parse(s).unwrap();
        assert_eq!(index.department(&oid(&format!("{MO}.0.4411"))), DepartmentFound::Known(Validity::default()));
        assert!(
            matches!(index.department(&oid(&format!("{MO}.0.4399"))), DepartmentFound::Known(v) if !v.covers(day("2023-01-01")))
        );
        assert_eq!(index.department(&oid(&format!("{MO}.0.1"))), DepartmentFound::Unknown);
        assert!(matches!(index.department(&oid("1.2.643.5.1.13.13.12.2.42.9.0.1")), DepartmentFound::Known(_)));
        let names = crate::nsi::frmo::Names::of_index(Some(std::sync::Arc::new(index)));
        let candidates =
            vec![MO.to_owned(), "1.2.643.5.1.13.13.12.2.42.1".to_owned(), "1.2.643.5.1.13.13.12.2.42.7".to_owned()];
        assert_eq!(names.matching(&candidates, "ккрб"), [MO]);
        assert_eq!(names.matching(&candidates, "  ПОЛНОЕ   имя "), ["1.2.643.5.1.13.13.12.2.42.1"]);
        assert_eq!(names.matching(&candidates, "42.7"), ["1.2.643.5.1.13.13.12.2.42.7"], "by OID, named or not");
        assert!(names.matching(&candidates, " ").is_empty());
    }

    #[test]
    fn folding_ignores_case_yo_and_spacing() {
        assert_eq!(fold("  Кузбасский   ЦЕНТР  Ёлки "), "кузбасский центр елки");
    }
}
