//! Every organisation and department a submission names — the submitting organisation, the
//! department given with it, the custodian, each author's and the legal authenticator's
//! `representedOrganization` — against the FRMO copy in force on the document's date, as REMD
//! checks them: rule O1, `ORG_NOT_FOUND_IN_FRMO`, `NO_ORG_ON_DATE`, `NO_DEPARTMENT`. Each OID
//! is judged once, at the first place it is named. No copy, or one older than
//! `validation.frmo_max_age`, never refuses: its findings and the reason are warnings.
//! Pure: the index, the dates and the time come in.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use egisz_contract::Oid;
use egisz_semd::{CdaHeader, Violation, rules};

use super::policy::Answer;
use crate::nsi::frmo::FrmoIndex;
use crate::nsi::frmo::index::DepartmentFound;

/// An organisation or department as a submission names it, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The OID as written (a document's may be anything).
    pub oid: String,
    pub path: String,
}

const REPRESENTED: &str = "representedOrganization/id/@root";

/// Every place, in the order judged: the submission's organisation and department, the
/// custodian, each author, the legal authenticator.
pub fn places_of(organization: &Oid, department: Option<&Oid>, header: &CdaHeader) -> Vec<Place> {
    let root = |o: Option<&egisz_semd::header::Organization>| {
        o.and_then(|o| o.id.as_ref()).and_then(|id| id.root.as_deref()).map(|r| r.trim().to_owned())
    };
    let mut out = vec![Place { oid: organization.as_str().to_owned(), path: "/organization".to_owned() }];
    if let Some(d) = department {
        out.push(Place { oid: d.as_str().to_owned(), path: "/department".to_owned() });
    }
    let custodian = header.custodians.first().and_then(|c| c.organization.as_ref());
    if let Some(oid) = root(custodian) {
        out.push(Place {
            oid,
            path: "/ClinicalDocument/custodian/assignedCustodian/representedCustodianOrganization/id/@root".to_owned(),
        });
    }
    for (i, author) in header.authors.iter().enumerate() {
        if let Some(oid) = root(author.assigned.as_ref().and_then(|p| p.organization.as_ref())) {
            out.push(Place { oid, path: format!("/ClinicalDocument/author[{}]/assignedAuthor/{REPRESENTED}", i + 1) });
        }
    }
    let legal = header.legal_authenticator().and_then(|l| l.assigned.as_ref()).and_then(|p| p.organization.as_ref());
    if let Some(oid) = root(legal) {
        out.push(Place { oid, path: format!("/ClinicalDocument/legalAuthenticator/assignedEntity/{REPRESENTED}") });
    }
    out
}

/// What the copy says of every place on `date`: a finding per organisation FRMO lacks or
/// that is not valid on the date, and per department it lacks or that did not exist on the
/// date. An OID that is not an OID is left to the header's rules.
pub fn judge(index: &FrmoIndex, places: &[Place], date: NaiveDate) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut judged = std::collections::HashSet::new();
    for place in places {
        let Ok(oid) = Oid::parse(&place.oid) else { continue };
        let organization = match oid.organization_of_department() {
            Some(mo) => {
                if judged.insert(oid.as_str().to_owned())
                    && let Some(v) = department(index, &oid, date, &place.path)
                {
                    out.push(v);
                }
                mo
            }
            None => oid,
        };
        if judged.insert(organization.as_str().to_owned())
            && let Some(v) = self::organization(index, &organization, date, &place.path)
        {
            out.push(v);
        }
    }
    out
}

fn organization(index: &FrmoIndex, oid: &Oid, date: NaiveDate, path: &str) -> Option<Violation> {
    let Some(org) = index.organization(oid.as_str()) else {
        return Some(
            Violation::new(rules::O1, path, format!("организации {oid} нет в ФРМО")).prevents("ORG_NOT_FOUND_IN_FRMO"),
        );
    };
    if org.validity.covers(date) {
        return None;
    }
    let when = match (org.validity.from, org.validity.until) {
        (Some(from), _) if date < from => format!("внесена в ФРМО с {}", from.format("%d.%m.%Y")),
        (_, Some(until)) => format!("исключена из ФРМО {}", until.format("%d.%m.%Y")),
        _ => "не действует".to_owned(),
    };
    Some(
        Violation::new(
            rules::O1,
            path,
            format!("организация {oid} («{}») {when}, документ от {}", org.name, date.format("%d.%m.%Y")),
        )
        .prevents("NO_ORG_ON_DATE"),
    )
}

fn department(index: &FrmoIndex, oid: &Oid, date: NaiveDate, path: &str) -> Option<Violation> {
    let message = match index.department(oid) {
        DepartmentFound::Known(v) if v.covers(date) => return None,
        DepartmentFound::Known(v) => match (v.from, v.until) {
            (Some(from), _) if date < from => {
                format!("подразделение {oid} внесено в ФРМО с {}", from.format("%d.%m.%Y"))
            }
            (_, Some(until)) => format!("подразделение {oid} ликвидировано {}", until.format("%d.%m.%Y")),
            _ => format!("подразделение {oid} не действует"),
        },
        DepartmentFound::Unknown => format!("подразделения {oid} нет в ФРМО"),
    };
    Some(
        Violation::new(rules::O1, path, format!("{message}, документ от {}", date.format("%d.%m.%Y")))
            .prevents("NO_DEPARTMENT"),
    )
}

/// The check as intake applies it: the copy's findings, or — no copy, or one older than
/// `max_age` at `now` — warnings only, with the reason first.
pub fn check(
    index: Option<&FrmoIndex>,
    places: &[Place],
    date: NaiveDate,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Answer {
    let Some(index) = index else {
        return Answer::unreachable(
            Violation::new(
                rules::O1,
                "/organization",
                "организации не сверены с ФРМО: копии ФРМО ещё нет (nsi.mode, egisz-gateway nsi refresh); \
                 РЭМД проверит их при регистрации",
            )
            .prevents("ORG_NOT_FOUND_IN_FRMO"),
        );
    };
    let findings = judge(index, places, date);
    let age = now.signed_duration_since(index.source.complete_at).to_std().unwrap_or_default();
    if age <= max_age {
        return Answer::findings(findings);
    }
    let mut unreachable = vec![
        Violation::new(
            rules::O1,
            "/organization",
            format!(
                "копия ФРМО от {} старше validation.frmo_max_age ({} ч): её находки только предупреждают; \
                 РЭМД проверит организации при регистрации",
                index.source.complete_at.format("%d.%m.%Y %H:%M UTC"),
                max_age.as_secs() / 3600
            ),
        )
        .prevents("ORG_NOT_FOUND_IN_FRMO"),
    ];
    unreachable.extend(findings);
    Answer { findings: Vec::new(), unreachable }
}

#[cfg(test)]
mod tests {
    use egisz_nsi::{FrmoDepartment, FrmoOrganization};

    use super::*;
    use crate::nsi::frmo::{IndexBuilder, IndexSource};

    const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";
    const SAMPLE: &str = include_str!("../../semd/tests/data/tmk-protocol-40.xml");

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn index(complete_at: DateTime<Utc>) -> FrmoIndex {
        let org = |oid: &str, from: &str, until: Option<&str>| FrmoOrganization {
            oid: oid.into(),
            name_full: "Полное".into(),
            name_short: Some(format!("МО {oid}")),
            region_id: None,
            region_name: None,
            created: Some(day(from)),
            deleted: until.map(day),
        };
        let mut b = IndexBuilder::new();
        b.organizations(vec![
            org(MO, "2008-02-14", None),
            org("1.2.643.5.1.13.13.12.2.42.2874", "2007-11-01", Some("2021-12-31")),
            org("1.2.643.5.1.13.13.12.2.42.3655", "2027-03-01", None),
        ]);
        let dept = |n: &str, until: Option<&str>| FrmoDepartment {
            oid: format!("{MO}.0.{n}"),
            organization: MO.into(),
            name: None,
            created: None,
            liquidated: until.map(day),
        };
        b.departments(vec![dept("4411", None), dept("4399", Some("2022-06-30"))]);
        let source = IndexSource { organizations_version: "1".into(), departments_version: "1".into(), complete_at };
        b.finish(source)
    }

    fn codes(vs: &[Violation]) -> Vec<(&str, &str)> {
        vs.iter().map(|v| (v.path.as_str(), v.remd_code)).collect()
    }

    #[test]
    fn the_samples_places_are_the_submission_custodian_author_and_authenticator() {
        let header = CdaHeader::parse(SAMPLE.as_bytes()).unwrap();
        let mo = Oid::parse(MO).unwrap();
        let dept = Oid::parse(&format!("{MO}.0.4411")).unwrap();
        let places = places_of(&mo, Some(&dept), &header);
        let paths: Vec<&str> = places.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths[..3],
            [
                "/organization",
                "/department",
                "/ClinicalDocument/custodian/assignedCustodian/representedCustodianOrganization/id/@root"
            ]
        );
        assert!(paths.iter().any(|p| p.starts_with("/ClinicalDocument/author[1]/")), "{paths:?}");
        let now = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap().to_utc();
        assert_eq!(judge(&index(now), &places, day("2023-08-18")), vec![]);
    }

    #[test]
    fn what_frmo_says_of_each_place_once_per_oid() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap().to_utc();
        let ix = index(now);
        let place = |oid: &str, path: &str| Place { oid: oid.into(), path: path.into() };
        let on = day("2023-08-18");
        let found = judge(
            &ix,
            &[
                place("1.2.643.5.1.13.13.12.2.42.1", "/organization"),
                place("1.2.643.5.1.13.13.12.2.42.1", "/custodian"),
                place("1.2.643.5.1.13.13.12.2.42.2874", "/a"),
                place("1.2.643.5.1.13.13.12.2.42.3655", "/b"),
                place(&format!("{MO}.0.4399"), "/c"),
                place(&format!("{MO}.0.9"), "/d"),
                place(&format!("{MO}.0.4411"), "/e"),
                place("not an oid", "/f"),
            ],
            on,
        );
        assert_eq!(
            codes(&found),
            [
                ("/organization", "ORG_NOT_FOUND_IN_FRMO"),
                ("/a", "NO_ORG_ON_DATE"),
                ("/b", "NO_ORG_ON_DATE"),
                ("/c", "NO_DEPARTMENT"),
                ("/d", "NO_DEPARTMENT"),
            ]
        );
        assert!(found.iter().all(|v| v.rule == "O1"));
        assert!(found[1].message.contains("исключена из ФРМО 31.12.2021"), "{}", found[1].message);
        assert!(found[2].message.contains("внесена в ФРМО с 01.03.2027"), "{}", found[2].message);
        assert_eq!(codes(&judge(&ix, &[place(&format!("{MO}.0.4399"), "/c")], day("2022-06-30"))), []);
        let unknown_org_dept = judge(&ix, &[place("1.2.643.5.1.13.13.12.2.42.5.0.1", "/x")], on);
        assert_eq!(codes(&unknown_org_dept), [("/x", "NO_DEPARTMENT"), ("/x", "ORG_NOT_FOUND_IN_FRMO")]);
    }

    #[test]
    fn no_copy_or_a_stale_one_only_warns() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap().to_utc();
        let places = [Place { oid: "1.2.643.5.1.13.13.12.2.42.1".into(), path: "/organization".into() }];
        let on = day("2023-08-18");
        let day_ = Duration::from_secs(24 * 3600);
        let none = check(None, &places, on, now, day_);
        assert_eq!((none.findings.len(), none.unreachable.len()), (0, 1));
        assert!(none.unreachable[0].message.contains("копии ФРМО ещё нет"));
        let fresh = check(Some(&index(now - chrono::Duration::hours(23))), &places, on, now, day_);
        assert_eq!((fresh.findings.len(), fresh.unreachable.len()), (1, 0));
        let stale = check(Some(&index(now - chrono::Duration::hours(25))), &places, on, now, day_);
        assert_eq!(stale.findings, vec![]);
        assert_eq!(codes(&stale.unreachable), [("/organization", "ORG_NOT_FOUND_IN_FRMO"); 2]);
        assert!(stale.unreachable[0].message.contains("старше validation.frmo_max_age (24 ч)"));
    }
}
