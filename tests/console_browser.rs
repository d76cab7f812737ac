//! The ops console in a real browser: Debian's headless Chromium driven through
//! chromedriver (WebDriver, fantoccini), against the real gateway with the sandbox REMD.
//! An operator signs in, finds a document REMD refused (its signer unknown to FRMR), sees
//! the code with its hint, shows the patient's data, fixes the roster through the sandbox's
//! admin endpoint, re-runs the document and sees it registered; counts a bulk re-run;
//! finds a failed document by typing part of its organisation's name; downloads the weekly
//! report's CSV (organisations by name) and checks it against the JSON report; sees the
//! report fit a 1280-pixel screen; reads the console on a narrow screen; signs out. Screenshots of each step are written to
//! `target/tmp/console-screenshots/`.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's `chromium` and
//! `chromium-driver`; `.ci/run` installs them when missing), or `CHROMIUM` and
//! `CHROMEDRIVER` pointing at others.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{
    AUTHOR_SNILS, Db, MO_2917, TestEnv, csv_rows, sample_as, sample_of, signer_for, submission_body, submission_body_of,
};
use egisz_gateway::auth::Role;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Valid SNILS (control number 64) nobody in the sandbox roster has.
const UNKNOWN_SNILS: &str = "12345678964";
/// Another one, for the document left failed (control number 72).
const ANOTHER_UNKNOWN_SNILS: &str = "11122233372";
/// The regional cardiology dispensary: in the sandbox's FRMO with a long name.
const CARDIOLOGY: &str = "1.2.643.5.1.13.13.12.2.42.2936";
const CARDIOLOGY_NAME: &str = "ГБУЗ «Кузбасский клинический кардиологический диспансер имени академика Л.С. Барбараша»";
const MO_2917_NAME: &str = "ГАУЗ «Кемеровская клиническая районная больница»";

struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    taken: usize,
}

impl Browser {
    async fn start() -> Browser {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        for path in [&chromium, &chromedriver] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = tokio::process::Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "chromedriver did not listen");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,800",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        let http = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(http)
            .capabilities(caps.as_object().unwrap().clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Browser { client, _driver: driver, _profile: profile, shots, taken: 0 }
    }

    async fn shot(&mut self, name: &str) {
        self.taken += 1;
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{:02}-{name}.png", self.taken)), png).unwrap();
    }

    async fn text(&self) -> String {
        self.client.find(Locator::Css("body")).await.unwrap().text().await.unwrap()
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// Waits (without reloading) until the page's text holds `what`: a click that submits a
    /// form returns before the next page is there.
    async fn wait_text(&self, what: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(body) = self.client.find(Locator::Css("body")).await
                && let Ok(t) = body.text().await
                && t.contains(what)
            {
                return t;
            }
            assert!(tokio::time::Instant::now() < deadline, "no «{what}» on the page");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reloads the page until its text holds `what`.
    async fn reload_until(&self, what: &str, seconds: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        loop {
            if self.text().await.contains(what) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "no «{what}» after {seconds} s: {}", self.text().await);
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.client.refresh().await.unwrap();
        }
    }
}

async fn submit(env: &TestEnv, key: &str, uid: &str, snils: &str) -> String {
    let document = sample_as(uid).replace(AUTHOR_SNILS, snils);
    env.submit_accepted(key, &submission_body(document.as_bytes(), &signer_for(snils))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_fixes_a_refused_document_in_the_console() {
    // With the FRMR check at intake warning instead of refusing, a signer FRMR does not know
    // reaches REMD, which refuses the document: the failure ops fix in the console.
    let env = TestEnv::start_warning(Db::Sqlite).await;
    let submitter = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let ops = env.key(&[Role::Ops], &[MO_2917, CARDIOLOGY]).await;
    let id = submit(&env, &submitter, "browser-1", UNKNOWN_SNILS).await;
    let left = submit(&env, &submitter, "browser-2", ANOTHER_UNKNOWN_SNILS).await;
    env.wait_status(&submitter, &id, "failed").await;
    env.wait_status(&submitter, &left, "failed").await;

    let mut b = Browser::start().await;
    // Sign in, by keyboard: the key and Enter.
    b.client.goto(&env.url("/ops/")).await.unwrap();
    assert_eq!(b.path().await, "/ops/login");
    b.shot("login").await;
    let key = b.client.find(Locator::Id("key")).await.unwrap();
    key.send_keys(&format!("{ops}\u{E007}")).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while b.path().await != "/ops/" {
        assert!(tokio::time::Instant::now() < deadline, "not signed in: {}", b.text().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dashboard = b.text().await;
    assert!(dashboard.contains("Очередь сейчас") && dashboard.contains("Федеральные сервисы"), "{dashboard}");
    b.client.find(Locator::Css("svg.chart")).await.expect("the chart is on the dashboard");
    b.shot("dashboard").await;

    // The failed list: the document, its organisation by name, its code and what to do.
    b.client.find(Locator::LinkText("Ошибки")).await.unwrap().click().await.unwrap();
    let list = b.wait_text("PERSON_NOT_FOUND").await;
    assert!(list.contains(MO_2917_NAME) && list.contains(MO_2917), "the organisation by name and OID: {list}");
    b.shot("failed-list").await;
    b.client.find(Locator::LinkText("browser-1")).await.unwrap().click().await.unwrap();
    let detail = b.wait_text("Документ browser-1").await;
    let hint = egisz_gateway::mappings::Mappings::embedded().unwrap().code("PERSON_NOT_FOUND").unwrap().hint_ru.clone();
    assert!(detail.contains(&hint), "the Russian hint is shown: {detail}");
    assert!(detail.contains("Данные пациента скрыты") && !detail.contains("Павлова"), "{detail}");
    assert!(detail.contains("РЭМД запросил файл документа"), "the timeline shows the pull: {detail}");
    assert!(
        detail.contains("Предупреждения при приёме") && detail.contains("F1"),
        "intake's warning (signer unknown to FRMR, policy warn) is shown: {detail}"
    );
    b.client.find(Locator::Css("form[action$='/personal'] button")).await.unwrap().click().await.unwrap();
    b.wait_text("Павлова").await;
    b.shot("submission-failed").await;

    // FRMR is fixed: the sandbox's roster gets the doctor (as the author's card, another SNILS).
    let sandbox = env.gw.remd_sandbox().unwrap();
    let mut person = sandbox.roster().person(AUTHOR_SNILS).unwrap().clone();
    person["snils"] = json!(UNKNOWN_SNILS);
    let res = env.http.put(format!("{}/roster/persons", sandbox.admin_url())).json(&person).send().await.unwrap();
    assert_eq!(res.status(), 204);

    // Re-run with a comment, then watch it register.
    b.client.find(Locator::Id("retry-comment")).await.unwrap().send_keys("врач добавлен в ФРМР").await.unwrap();
    b.client.find(Locator::Css("form[action$='/retry'] button")).await.unwrap().click().await.unwrap();
    b.wait_text("поставлен в очередь").await;
    b.reload_until("зарегистрирован в РЭМД, emdrId", 30).await;
    let registered = b.text().await;
    assert!(registered.contains("врач добавлен в ФРМР"), "the comment is in the timeline: {registered}");
    b.shot("submission-registered").await;

    // Bulk re-run: a dry run counts the one still failed.
    b.client.find(Locator::LinkText("Перезапуск")).await.unwrap().click().await.unwrap();
    b.wait_text("Проверить: сколько").await;
    b.client.find(Locator::Css("form.filters button")).await.unwrap().click().await.unwrap();
    let dry = b.wait_text("Под фильтр").await;
    assert!(dry.contains("Под фильтр попадает 1 документ"), "{dry}");
    assert!(dry.contains("Подтвердить: перезапустить 1"), "{dry}");
    b.shot("bulk-dry-run").await;

    // A failed document of another organisation, found by typing part of its name.
    let cardiology = env.key(&[Role::Submitter, Role::Reader], &[CARDIOLOGY]).await;
    let document = sample_of(CARDIOLOGY, "browser-3").replace(AUTHOR_SNILS, ANOTHER_UNKNOWN_SNILS);
    let body = submission_body_of(CARDIOLOGY, document.as_bytes(), &signer_for(ANOTHER_UNKNOWN_SNILS));
    let theirs = env.submit_accepted(&cardiology, &body).await;
    env.wait_status(&cardiology, &theirs, "failed").await;
    b.client.find(Locator::LinkText("Ошибки")).await.unwrap().click().await.unwrap();
    b.wait_text("browser-3").await;
    let suggested: Vec<String> = b
        .client
        .execute("return [...document.querySelectorAll('#organizations option')].map(o => o.value);", vec![])
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(suggested, [MO_2917_NAME, CARDIOLOGY_NAME], "the organisations that submitted, by name");
    let field = b.client.find(Locator::Id("organization")).await.unwrap();
    field.send_keys("кардиологический диспансер\u{E007}").await.unwrap();
    b.wait_text("browser-3").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while b.text().await.contains("browser-2") {
        assert!(tokio::time::Instant::now() < deadline, "the other organisation's document stays listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let found = b.text().await;
    assert!(found.contains(CARDIOLOGY_NAME) && found.contains("PERSON_NOT_FOUND"), "{found}");
    b.shot("failed-by-name").await;
    let field = b.client.find(Locator::Id("organization")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys("РАЙОННАЯ больница\u{E007}").await.unwrap();
    b.wait_text("browser-2").await;
    assert!(!b.text().await.contains("browser-3"), "case aside, only the district hospital's");

    // The weekly report, and its CSV equal to the JSON report.
    b.client.find(Locator::LinkText("Отчёт")).await.unwrap().click().await.unwrap();
    b.wait_text("Скачать CSV").await;
    b.shot("report").await;
    let href = b.client.find(Locator::LinkText("Скачать CSV")).await.unwrap().attr("href").await.unwrap().unwrap();
    let cookie = b.client.get_named_cookie("egisz_ops").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    let csv = env
        .http
        .get(env.url(&href))
        .header("cookie", format!("egisz_ops={}", cookie.value()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&csv[..3], b"\xEF\xBB\xBF");
    let lines = csv_rows(std::str::from_utf8(&csv[3..]).unwrap());
    let json: Value = env.get(&ops, "/api/v1/reports/remd").await.json().await.unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(lines.len(), rows.len() + 2, "the header, a line per row, the total: {lines:?}");
    for j in rows {
        let line = lines.iter().find(|l| l[0] == j["organization"].as_str().unwrap()).expect("the row's line");
        assert_eq!(line[1], j["organization_name"].as_str().unwrap(), "{j}");
        assert_eq!(line[2], j["organization_full_name"].as_str().unwrap(), "{j}");
        let expected =
            [&j["submitted"], &j["registered"], &j["failed"], &j["pending"], &j["cancelled"]].map(|v| v.to_string());
        assert_eq!(line[5..10], expected, "{line:?} vs {j}");
    }
    let mo = rows.iter().find(|j| j["organization"] == MO_2917).unwrap();
    assert_eq!(mo["organization_name"], MO_2917_NAME);
    assert_eq!(
        (mo["submitted"].as_u64(), mo["registered"].as_u64(), mo["failed"].as_u64()),
        (Some(2), Some(1), Some(1))
    );
    // The report fits a 1280-pixel screen, the long name wrapped.
    let fits = b
        .client
        .execute("return document.documentElement.scrollWidth <= window.innerWidth + 1;", vec![])
        .await
        .unwrap();
    assert_eq!(fits, json!(true), "the report fits 1280 pixels");
    assert!(b.text().await.contains(CARDIOLOGY_NAME), "the report names the organisations");

    // A narrow screen: nothing wider than the window.
    b.client.set_window_size(390, 844).await.unwrap();
    b.client.goto(&env.url("/ops/failed")).await.unwrap();
    let fits = b.client.execute("return document.body.scrollWidth <= window.innerWidth + 1;", vec![]).await.unwrap();
    assert_eq!(fits, json!(true), "the page fits a narrow screen");
    b.shot("narrow-failed-list").await;
    b.client.set_window_size(1280, 800).await.unwrap();

    // Sign out: the console asks to sign in again.
    b.client.goto(&env.url("/ops/")).await.unwrap();
    b.client.find(Locator::Css("form.signout button")).await.unwrap().click().await.unwrap();
    b.wait_text("API-ключ с ролью ops").await;
    assert_eq!(b.path().await, "/ops/login");
    b.client.goto(&env.url("/ops/failed")).await.unwrap();
    assert_eq!(b.path().await, "/ops/login", "the session ended");
    b.shot("signed-out").await;

    let audit: Value = env.get(&ops, "/api/v1/ops/audit").await.json().await.unwrap();
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["sign_out", "bulk_retry_dry_run", "retry", "show_personal_data", "sign_in"], "{audit}");
    b.client.close().await.unwrap();
    env.shutdown().await;
}
