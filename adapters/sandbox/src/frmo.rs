//! The federal register of medical organisations (FRMO) as the sandbox knows it: the rows
//! the NSI emulator publishes as dictionaries 1.2.643.5.1.13.13.11.1461 (organisations) and
//! 1.2.643.5.1.13.13.99.2.114 (departments), and what the REMD emulator checks a document's
//! organisations and departments against (`ORG_NOT_FOUND_IN_FRMO`, `NO_ORG_ON_DATE`,
//! `NO_DEPARTMENT`).
//!
//! Rows are kept in NSI's own column names (`data/frmo.json`, see `data/README.md`), so the
//! emulator serves them as they are. [`Frmo::country`] adds a country-sized register made
//! as it is read: nothing of the generated rows is held.

use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::{Value, json};

/// The built-in register.
const BUILTIN: &str = include_str!("../data/frmo.json");

/// FRMO's organisations, as NSI publishes them.
pub const ORGANIZATIONS: &str = "1.2.643.5.1.13.13.11.1461";
/// FRMO's departments, as NSI publishes them.
pub const DEPARTMENTS: &str = "1.2.643.5.1.13.13.99.2.114";

/// The first number of a generated organisation's OID (`…2.<region>.<FIRST + n>`): above
/// every built-in one.
const FIRST_GENERATED: usize = 10_000;
/// Regions generated organisations are spread over (1 to 89).
const REGIONS: usize = 89;
const OID_BASE: &str = "1.2.643.5.1.13.13.12.2";

/// The register: explicit rows, then generated ones.
#[derive(Clone, Debug)]
pub struct Frmo {
    organizations: Arc<Vec<Value>>,
    departments: Arc<Vec<Value>>,
    /// How many organisations and departments are generated after the explicit rows.
    generated: (usize, usize),
}

impl Default for Frmo {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Frmo {
    /// The built-in register (`data/frmo.json`).
    pub fn builtin() -> Self {
        let data: Value = serde_json::from_str(BUILTIN).expect("data/frmo.json is JSON (checked by a test)");
        let list = |key: &str| Arc::new(data.get(key).and_then(Value::as_array).cloned().unwrap_or_default());
        Self { organizations: list("organizations"), departments: list("departments"), generated: (0, 0) }
    }

    /// The built-in register, and beyond it `organizations` organisations of every region
    /// with `departments` departments among them, made as they are read.
    pub fn country(organizations: usize, departments: usize) -> Self {
        let departments = if organizations == 0 { 0 } else { departments };
        Self { generated: (organizations, departments), ..Self::builtin() }
    }

    /// Adds an organisation (a row in NSI's columns, as `data/frmo.json` holds them), or
    /// replaces the one with the same `oid`.
    pub fn upsert_organization(&mut self, row: Value) {
        let oid = row.get("oid").cloned();
        let list = Arc::make_mut(&mut self.organizations);
        list.retain(|r| r.get("oid") != oid.as_ref());
        list.push(row);
    }

    /// A current organisation of region 42 with this OID and name, as a row to add.
    pub fn organization_row(oid: &str, name: &str) -> Value {
        json!({"oid": oid, "name_full": name, "name_short": name, "region_id": "42",
               "region_name": "Кемеровская область - Кузбасс", "create_date": "2005-01-01", "delete_date": null})
    }

    pub fn organization_count(&self) -> usize {
        self.organizations.len() + self.generated.0
    }

    pub fn department_count(&self) -> usize {
        self.departments.len() + self.generated.1
    }

    /// The `i`-th organisation as NSI serves it.
    pub fn organization(&self, i: usize) -> Option<Value> {
        match self.organizations.get(i) {
            Some(row) => Some(row.clone()),
            None => {
                let n = i - self.organizations.len();
                (n < self.generated.0).then(|| generated_organization(n))
            }
        }
    }

    /// The `i`-th department as NSI serves it.
    pub fn department(&self, i: usize) -> Option<Value> {
        match self.departments.get(i) {
            Some(row) => Some(row.clone()),
            None => {
                let n = i - self.departments.len();
                (n < self.generated.1).then(|| {
                    let (org, k) = (n % self.generated.0, n / self.generated.0 + 1);
                    let mo = generated_oid(org);
                    json!({"depart_oid": format!("{mo}.0.{k}"), "mo_oid": mo, "depart_name": format!("Отделение № {k}"),
                           "depart_create_date": "2012-01-01", "depart_liquidation_date": null})
                })
            }
        }
    }

    /// What REMD answers about organisation `oid` on `date`: nothing (valid),
    /// `ORG_NOT_FOUND_IN_FRMO`, or `NO_ORG_ON_DATE` (entered after the date, or deleted
    /// before it). **[model: REMD's exact rule for the dates is not public]**
    pub fn organization_verdict(&self, oid: &str, date: NaiveDate) -> Option<&'static str> {
        let Some(row) = self.find_organization(oid) else { return Some(super::remd::codes::ORG_NOT_FOUND_IN_FRMO) };
        (!valid(&row, "create_date", "delete_date", date)).then_some(super::remd::codes::NO_ORG_ON_DATE)
    }

    /// What REMD answers about department `oid` on `date`: nothing, or `NO_DEPARTMENT` (FRMO
    /// has no such department, or it did not exist on the date). **[model]**
    pub fn department_verdict(&self, oid: &str, date: NaiveDate) -> Option<&'static str> {
        match self.find_department(oid) {
            Some(row) if valid(&row, "depart_create_date", "depart_liquidation_date", date) => None,
            _ => Some(super::remd::codes::NO_DEPARTMENT),
        }
    }

    fn find_organization(&self, oid: &str) -> Option<Value> {
        if let Some(row) = self.organizations.iter().find(|r| r.get("oid").and_then(Value::as_str) == Some(oid)) {
            return Some(row.clone());
        }
        let n = generated_index(oid)?;
        (n < self.generated.0).then(|| generated_organization(n))
    }

    fn find_department(&self, oid: &str) -> Option<Value> {
        if let Some(row) = self.departments.iter().find(|r| r.get("depart_oid").and_then(Value::as_str) == Some(oid)) {
            return Some(row.clone());
        }
        let (mo, k) = oid.rsplit_once(".0.")?;
        let (org, k): (usize, usize) = (generated_index(mo)?, k.parse().ok()?);
        let n = (k.checked_sub(1)?).checked_mul(self.generated.0)?.checked_add(org)?;
        (org < self.generated.0 && n < self.generated.1).then(|| self.department(self.departments.len() + n))?
    }
}

/// Valid on `date`: entered on it or before, and not deleted before it.
fn valid(row: &Value, from: &str, until: &str, date: NaiveDate) -> bool {
    let day = |key: &str| row.get(key).and_then(Value::as_str).and_then(|s| s.get(..10)?.parse::<NaiveDate>().ok());
    day(from).is_none_or(|d| d <= date) && day(until).is_none_or(|d| date <= d)
}

fn generated_oid(n: usize) -> String {
    format!("{OID_BASE}.{}.{}", 1 + n % REGIONS, FIRST_GENERATED + n)
}

/// The index of a generated organisation's OID.
fn generated_index(oid: &str) -> Option<usize> {
    let (region, number) = oid.strip_prefix(OID_BASE)?.strip_prefix('.')?.split_once('.')?;
    let n = number.parse::<usize>().ok()?.checked_sub(FIRST_GENERATED)?;
    (region.parse::<usize>().ok()? == 1 + n % REGIONS && number == (FIRST_GENERATED + n).to_string()).then_some(n)
}

fn generated_organization(n: usize) -> Value {
    let region = 1 + n % REGIONS;
    let kind =
        ["городская больница", "районная больница", "городская поликлиника", "стоматологическая поликлиника"][n % 4];
    json!({
        "oid": generated_oid(n),
        "name_full": format!("Государственное бюджетное учреждение здравоохранения «{} {kind} № {}»", region_name(region), n + 1),
        "name_short": format!("ГБУЗ «{kind} № {}»", n + 1),
        "region_id": region.to_string(),
        "region_name": format!("Субъект {region}"),
        "create_date": "2010-01-01",
        "delete_date": if n % 50 == 49 { Value::from("2020-12-31") } else { Value::Null },
    })
}

fn region_name(region: usize) -> String {
    format!("Региональная ({region})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remd::codes;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_builtin_register_holds_the_rosters_organisations_and_the_test_cases() {
        let frmo = Frmo::builtin();
        assert_eq!(frmo.organization_count(), 10);
        for row in crate::Roster::builtin().organizations() {
            assert_eq!(frmo.organization_verdict(&row.0, day("2023-08-18")), None, "{}", row.0);
        }
        let on = day("2023-08-18");
        assert_eq!(frmo.organization_verdict("1.2.643.5.1.13.13.12.2.42.1", on), Some(codes::ORG_NOT_FOUND_IN_FRMO));
        assert_eq!(frmo.organization_verdict("1.2.643.5.1.13.13.12.2.42.2874", on), Some(codes::NO_ORG_ON_DATE));
        assert_eq!(frmo.organization_verdict("1.2.643.5.1.13.13.12.2.42.2874", day("2021-12-31")), None);
        assert_eq!(frmo.organization_verdict("1.2.643.5.1.13.13.12.2.42.3655", on), Some(codes::NO_ORG_ON_DATE));
        assert_eq!(frmo.department_verdict("1.2.643.5.1.13.13.12.2.42.2917.0.4411", on), None);
        assert_eq!(frmo.department_verdict("1.2.643.5.1.13.13.12.2.42.2917.0.4399", on), Some(codes::NO_DEPARTMENT));
        assert_eq!(frmo.department_verdict("1.2.643.5.1.13.13.12.2.42.2917.0.4399", day("2022-06-30")), None);
        assert_eq!(frmo.department_verdict("1.2.643.5.1.13.13.12.2.42.2917.0.9", on), Some(codes::NO_DEPARTMENT));
    }

    #[test]
    fn a_country_is_made_as_it_is_read_and_found_again() {
        let frmo = Frmo::country(1000, 5000);
        assert_eq!((frmo.organization_count(), frmo.department_count()), (1010, 5028));
        let on = day("2023-08-18");
        for i in [10, 11, 500, 1009] {
            let row = frmo.organization(i).unwrap();
            let oid = row["oid"].as_str().unwrap();
            let expected = if row["delete_date"].is_null() { None } else { Some(codes::NO_ORG_ON_DATE) };
            assert_eq!(frmo.organization_verdict(oid, on), expected, "{oid}");
        }
        assert!(frmo.organization(1010).is_none());
        for i in [28, 29, 2000, 5027] {
            let row = frmo.department(i).unwrap();
            assert_eq!(frmo.department_verdict(row["depart_oid"].as_str().unwrap(), on), None, "{row}");
            assert!(frmo.find_organization(row["mo_oid"].as_str().unwrap()).is_some());
        }
        assert!(frmo.department(5028).is_none());
        assert_eq!(frmo.organization_verdict("1.2.643.5.1.13.13.12.2.1.11000", on), Some(codes::ORG_NOT_FOUND_IN_FRMO));
        assert_eq!(frmo.organization_verdict("1.2.643.5.1.13.13.12.2.2.10000", on), Some(codes::ORG_NOT_FOUND_IN_FRMO));
        let mo = frmo.organization(10).unwrap()["oid"].as_str().unwrap().to_owned();
        assert_eq!(frmo.department_verdict(&format!("{mo}.0.6"), on), Some(codes::NO_DEPARTMENT), "5 per organisation");
    }
}
