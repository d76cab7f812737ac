//! The ministry's packages for kinds 40, 119 and 160 from `shared/federal/semd-rules/`, run
//! over the shared samples and their variants; reloading; hostile packages.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egisz_packages::{Catalog, Layers, Lookup, PackageLimits, Settings};
use egisz_schematron::CompileLimits;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(shared().join("samples").join(name)).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A directory with copies of the shared packages of `kinds`.
fn packages(kinds: &[u32]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for k in kinds {
        copy_dir(&shared().join(format!("federal/semd-rules/{k}")), &dir.path().join(k.to_string()));
    }
    dir
}

fn settings(dir: &Path) -> Settings {
    Settings {
        dir: dir.to_owned(),
        xsd_threads: 2,
        limits: PackageLimits::default(),
        compile: CompileLimits::default(),
        units: 50_000_000,
        time: Duration::from_secs(2),
    }
}

const ALL: Layers = Layers { xsd: true, schematron: true, schematron_after_xsd_errors: false };

#[test]
fn the_three_samples_pass_their_packages() {
    let dir = packages(&[40, 119, 160]);
    let catalog = Catalog::open(settings(dir.path())).unwrap();
    for (kind, name) in
        [(40, "tmk-protocol-40.xml"), (119, "consultation-protocol-119.xml"), (160, "tmk-cross-border-160.xml")]
    {
        let v = catalog.validate(kind, sample(name).as_bytes(), ALL).unwrap();
        assert!(
            v.xsd.is_empty() && v.schematron.is_empty() && v.reports.is_empty() && v.not_checked.is_empty(),
            "kind {kind}: {v:#?}"
        );
        let id = v.package.unwrap();
        assert_eq!((id.kind, id.sha256.len(), id.schematron), (kind, 64, kind != 40));
        if kind == 119 {
            assert_eq!(id.version.as_deref(), Some("Схематрон для СЭМД \"Протокол консультации (CDA) Редакция 4\""));
        }
    }
    // No package, no validation.
    assert!(catalog.validate(227, b"<x/>", ALL).is_none());
    let status = catalog.status();
    assert_eq!(status.iter().map(|s| s.kind).collect::<Vec<_>>(), [40, 119, 160]);
    assert!(status.iter().all(|s| s.in_force.is_some() && s.problem.is_none()));
    assert_eq!(status[1].stats.unwrap().rules, 397);
}

#[test]
fn a_document_that_breaks_the_cda_schema_is_reported_where() {
    let dir = packages(&[40]);
    let catalog = Catalog::open(settings(dir.path())).unwrap();
    // A second title, and an element the schema does not know.
    let doc = sample("tmk-protocol-40.xml").replacen("<title>", "<titlee>x</titlee><title>", 1);
    let v = catalog.validate(40, doc.as_bytes(), ALL).unwrap();
    assert_eq!(v.xsd.len(), 1, "{v:#?}");
    let e = &v.xsd[0];
    assert_eq!((e.rule, e.remd_code), ("XSD", "VALIDATION_ERROR"));
    assert_eq!(e.path, "/ClinicalDocument[1]/titlee[1]");
    assert!(e.message.starts_with("ошибка валидации XSD (строка "), "{}", e.message);
    assert!(e.message.contains("'titlee'") && !e.message.contains("urn:hl7-org:v3"), "{}", e.message);
}

#[test]
fn schematron_findings_carry_message_code_and_location() {
    let dir = packages(&[119]);
    let catalog = Catalog::open(settings(dir.path())).unwrap();
    let doc = sample("consultation-protocol-119.xml").replacen("<setId ", "<setIdx ", 1);
    // XSD first: the schema refuses an unknown element and the schematron does not run.
    let v = catalog.validate(119, doc.as_bytes(), ALL).unwrap();
    assert!(!v.xsd.is_empty() && v.schematron.is_empty() && v.schematron_skipped);
    // The schematron alone (XSD off) names the rule as REMD would.
    let v = catalog
        .validate(119, doc.as_bytes(), Layers { xsd: false, schematron: true, schematron_after_xsd_errors: false })
        .unwrap();
    let u19 = v.schematron.iter().find(|f| f.code.as_deref() == Some("У1-19")).expect("У1-19");
    assert_eq!(u19.path, "/ClinicalDocument[1]");
    assert_eq!(u19.message, "У1-19. Элемент ClinicalDocument должен иметь 1 элемент setId.");
    assert_eq!((u19.rule, u19.remd_code), ("SCH", "VALIDATION_ERROR"));
}

#[test]
fn a_new_package_replaces_the_old_only_when_it_compiles() {
    let dir = packages(&[119]);
    let catalog = Catalog::open(settings(dir.path())).unwrap();
    let doc = sample("consultation-protocol-119.xml");
    let first = catalog.validate(119, doc.as_bytes(), ALL).unwrap().package.unwrap();
    let sch = dir.path().join("119/119.sch");
    let original = std::fs::read_to_string(&sch).unwrap();

    // A broken schematron: refused, the old stays in force and the status says why.
    std::fs::write(&sch, original.replacen("count(realmCode)=1", "count(realmCode=1", 1)).unwrap();
    let report = catalog.scan().unwrap();
    assert_eq!(report.refused.len(), 1, "{report:?}");
    let v = catalog.validate(119, doc.as_bytes(), ALL).unwrap();
    assert_eq!(v.package.as_ref(), Some(&first));
    let status = &catalog.status()[0];
    assert_eq!(status.in_force.as_ref(), Some(&first));
    assert!(status.on_disk.is_some() && status.problem.as_deref().unwrap().contains("count(realmCode=1"), "{status:?}");

    // A good new rule: in force after the scan, and it applies.
    let stricter = original.replacen("count(realmCode)=1", "count(realmCode)=2", 1);
    std::fs::write(&sch, stricter).unwrap();
    assert_eq!(catalog.scan().unwrap().replaced, [119]);
    let v = catalog.validate(119, doc.as_bytes(), ALL).unwrap();
    assert_ne!(v.package.as_ref(), Some(&first));
    assert_eq!(v.schematron.iter().filter_map(|f| f.code.as_deref()).collect::<Vec<_>>(), ["У1-9"]);
    assert!(catalog.status()[0].problem.is_none());

    // A package removed from the directory is no longer applied.
    std::fs::remove_dir_all(dir.path().join("119")).unwrap();
    assert_eq!(catalog.scan().unwrap().removed, [119]);
    assert!(catalog.validate(119, doc.as_bytes(), ALL).is_none());
}

#[test]
fn what_libxml2_cannot_read_is_a_finding_not_a_pass() {
    let dir = packages(&[40]);
    let catalog = Catalog::open(settings(dir.path())).unwrap();
    // A control character XML 1.0 forbids, inside a text.
    let doc = sample("tmk-protocol-40.xml").replacen("<title>", "<title>\u{1}", 1);
    let v = catalog.validate(40, doc.as_bytes(), ALL).unwrap();
    assert_eq!(v.xsd.len(), 1, "{v:#?}");
    assert!(v.xsd[0].message.contains("не читается как XML 1.0"), "{}", v.xsd[0].message);
    assert!(v.not_checked.is_empty());
}

#[test]
fn a_broken_package_with_nothing_in_force_warns_instead_of_checking() {
    let dir = packages(&[40]);
    std::fs::remove_file(dir.path().join("40/CDA.xsd")).unwrap();
    let catalog = Catalog::open(settings(dir.path())).unwrap();
    let v = catalog.validate(40, sample("tmk-protocol-40.xml").as_bytes(), ALL).unwrap();
    assert_eq!(v.not_checked.len(), 1);
    assert_eq!(v.not_checked[0].rule, "PKG");
    assert!(v.not_checked[0].message.contains("CDA.xsd"), "{}", v.not_checked[0].message);
    assert!(Catalog::open(settings(&dir.path().join("nowhere"))).is_err());
}

#[test]
fn hostile_packages_are_refused_or_bounded() {
    let dir = packages(&[40, 119]);
    let sch = dir.path().join("119/119.sch");
    let original = std::fs::read_to_string(&sch).unwrap();
    let catalog = Catalog::open(settings(dir.path())).unwrap();
    let broken = |catalog: &Catalog| match catalog.lookup(119) {
        Lookup::Broken(why) => why,
        other => panic!("expected a refusal, got {other:?}"),
    };

    // An XSD that would fetch from the network, or read outside its package.
    let cda = dir.path().join("40/CDA.xsd");
    let xsd = std::fs::read_to_string(&cda).unwrap();
    for location in ["http://example.org/evil.xsd", "../../etc/passwd.xsd", "/etc/x.xsd"] {
        std::fs::write(&cda, xsd.replacen("POCD_MT000040.xsd", location, 1)).unwrap();
        let fresh = Catalog::open(settings(dir.path())).unwrap();
        let Lookup::Broken(why) = fresh.lookup(40) else { panic!("{location} accepted") };
        assert!(why.contains("schemaLocation"), "{why}");
    }
    // xml:base would move where libxml2 resolves a relative location.
    std::fs::write(&cda, xsd.replacen("<xs:include", "<xs:include xml:base=\"http://example.org/\"", 1)).unwrap();
    let Lookup::Broken(why) = Catalog::open(settings(dir.path())).unwrap().lookup(40) else {
        panic!("xml:base accepted")
    };
    assert!(why.contains("xml:base"), "{why}");
    // A referenced file is checked whatever its name: one that is not .xsd may not carry a DTD.
    std::fs::write(
        dir.path().join("40/extra.txt"),
        "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>",
    )
    .unwrap();
    std::fs::write(&cda, xsd.replacen("POCD_MT000040.xsd", "extra.txt", 1)).unwrap();
    let Lookup::Broken(why) = Catalog::open(settings(dir.path())).unwrap().lookup(40) else { panic!("DTD accepted") };
    assert!(why.contains("DTD"), "{why}");
    std::fs::remove_file(dir.path().join("40/extra.txt")).unwrap();
    std::fs::write(&cda, xsd).unwrap();

    // A catastrophic regular expression runs in linear time.
    let evil = original.replacen(
        "<pattern>",
        "<pattern><rule context=\"ClinicalDocument\"><assert test=\"matches(concat(title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, title, '!'), '^(.*a){20}$|^(\\w+\\s?)+$')\">evil</assert></rule></pattern><pattern>",
        1,
    );
    std::fs::write(&sch, evil).unwrap();
    catalog.scan().unwrap();
    let started = Instant::now();
    let v = catalog.validate(119, sample("consultation-protocol-119.xml").as_bytes(), ALL).unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(v.schematron.len(), 1);

    // A deeply nested expression is refused at compile time.
    let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
    std::fs::write(&sch, original.replacen("count(realmCode)=1", &deep, 1)).unwrap();
    catalog.scan().unwrap();
    let fresh = Catalog::open(settings(dir.path())).unwrap();
    assert!(broken(&fresh).contains("вложенность"));

    // A rule whose evaluation would take minutes stops at the budget with a warning.
    let slow = original.replacen("count(realmCode)=1", "count(//*[count(//*[count(//*) > 0]) > 0]) > 0", 1);
    std::fs::write(&sch, slow).unwrap();
    let fresh = Catalog::open(Settings { time: Duration::from_millis(300), ..settings(dir.path()) }).unwrap();
    let started = Instant::now();
    let v = fresh.validate(119, sample("consultation-protocol-119.xml").as_bytes(), ALL).unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(v.not_checked.len(), 1, "{v:#?}");
    assert!(v.not_checked[0].message.contains("не уложилась"), "{}", v.not_checked[0].message);

    // 10 MB of distinct rules: compiled within the limits in bounded time, and a document run
    // over them ends, checked or with the budget's warning.
    let many: String = (0..10 * 1024 * 1024 / 120)
        .map(|i| format!("<pattern><rule context=\"//code[@code='{i}']\"><assert test=\"count(@codeSystem)=1\">Z1-1. x</assert></rule></pattern>\n"))
        .collect();
    let many = original.replacen("<pattern>", &format!("{many}<pattern>"), 1);
    std::fs::write(&sch, &many).unwrap();
    let started = Instant::now();
    let fresh = Catalog::open(settings(dir.path())).unwrap();
    let lookup = fresh.lookup(119);
    let compile = started.elapsed();
    assert!(compile < Duration::from_secs(30), "{compile:?}");
    assert!(matches!(lookup, Lookup::Ready(_)), "{lookup:?}");
    let started = Instant::now();
    let v = fresh.validate(119, sample("consultation-protocol-119.xml").as_bytes(), ALL).unwrap();
    let run = started.elapsed();
    assert!(run < Duration::from_secs(4), "{run:?}");
    assert!(v.schematron.is_empty(), "{v:#?}");
    eprintln!(
        "10 MB of rules: compiled in {compile:?}, a document run in {run:?}, {} not checked",
        v.not_checked.len()
    );
    let small = Catalog::open(Settings {
        compile: CompileLimits { max_rules: 1000, ..CompileLimits::default() },
        ..settings(dir.path())
    })
    .unwrap();
    assert!(broken(&small).contains("правил"));
}
