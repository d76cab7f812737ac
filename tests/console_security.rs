//! The ops console's doors, over plain HTTP on SQLite and PostgreSQL: an operator's action
//! needs the `ops` role, a live session and the session's CSRF token, and stays within the
//! key's organisations; whatever is refused changes nothing.

mod common;

use common::{AUTHOR_SNILS, DISMISSED_SNILS, Db, MO_2917, TestEnv, sample_as, signer_for, submission_body};
use egisz_gateway::auth::Role;
use serde_json::Value;

on_both_backends!(
    an_action_needs_the_role_a_session_and_the_csrf_token,
    sessions_end,
    no_body_is_read_before_the_cookie
);

const OTHER_MO: &str = "1.2.643.5.1.13.13.12.2.42.3011";

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

/// The value of `name="csrf"` in a page.
fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// Signs in with `key`: the answer to the form post, and the session cookie when one was set.
async fn sign_in(env: &TestEnv, key: &str) -> (reqwest::StatusCode, Option<String>) {
    let http = client();
    let form = http.get(env.url("/ops/login")).send().await.unwrap();
    let login_cookie = cookie_pair(&set_cookies(&form)[0]);
    let csrf = csrf_in(&form.text().await.unwrap());
    let res = http
        .post(env.url("/ops/login"))
        .header("cookie", login_cookie)
        .form(&[("csrf", csrf.as_str()), ("key", key)])
        .send()
        .await
        .unwrap();
    let session = set_cookies(&res).into_iter().find(|c| c.starts_with("egisz_ops=") && !c.starts_with("egisz_ops=;"));
    (res.status(), session)
}

async fn failed_document(env: &TestEnv, submitter: &str, uid: &str) -> String {
    let document = sample_as(uid).replace(AUTHOR_SNILS, DISMISSED_SNILS);
    let body = submission_body(document.as_bytes(), &signer_for(DISMISSED_SNILS));
    let res = env.http.post(env.url("/api/v1/documents")).bearer_auth(submitter).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let doc: Value = env.get(submitter, &format!("/api/v1/documents/{id}")).await.json().await.unwrap();
        if doc["status"] == "failed" {
            return id;
        }
        assert!(tokio::time::Instant::now() < deadline, "{doc}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn status_of(env: &TestEnv, key: &str, id: &str) -> String {
    let doc: Value = env.get(key, &format!("/api/v1/documents/{id}")).await.json().await.unwrap();
    doc["status"].as_str().unwrap().to_owned()
}

async fn an_action_needs_the_role_a_session_and_the_csrf_token(db: Db) {
    let env = TestEnv::start_warning(db).await;
    let submitter = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let id = failed_document(&env, &submitter, "console-csrf-1").await;
    let http = client();
    let retry = env.url(&format!("/ops/submissions/{id}/retry"));

    // A key without the ops role does not sign in.
    let (status, session) = sign_in(&env, &submitter).await;
    assert_eq!((status.as_u16(), session), (403, None));
    let (status, session) = sign_in(&env, "egk_not-a-key").await;
    assert_eq!((status.as_u16(), session), (401, None));
    // The sign-in form itself is CSRF-protected.
    let ops = env.key(&[Role::Ops], &[MO_2917]).await;
    let res = http.post(env.url("/ops/login")).form(&[("csrf", "guess"), ("key", ops.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(set_cookies(&res).iter().all(|c| !c.starts_with("egisz_ops=")), "no session without the form's cookie");

    // Without a session, nothing.
    let res = http.post(&retry).form(&[("csrf", "x")]).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = http.get(env.url("/ops/failed")).send().await.unwrap();
    assert_eq!((res.status().as_u16(), res.headers()["location"].to_str().unwrap()), (303, "/ops/login"));

    let (status, session) = sign_in(&env, &ops).await;
    assert_eq!(status, 303);
    let session = session.expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ops", "Max-Age=28800"] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP on loopback: ops.secure_cookies is off");
    let cookie = cookie_pair(&session);
    let page = http.get(env.url(&format!("/ops/submissions/{id}"))).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("form-action 'self'"), "{csp}");
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(!html.contains("Павлова"), "patient data hidden until shown");
    let csrf = csrf_in(&html);

    // A session without the token, or with another, changes nothing.
    for form in [vec![("comment", "x")], vec![("csrf", "forged"), ("comment", "x")]] {
        let res = http.post(&retry).header("cookie", &cookie).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 403, "{form:?}");
        assert_eq!(status_of(&env, &submitter, &id).await, "failed");
    }
    // A foreign organisation's operator: the document does not exist for it.
    let foreign = env.key(&[Role::Ops], &[OTHER_MO]).await;
    let (_, foreign_session) = sign_in(&env, &foreign).await;
    let foreign_cookie = cookie_pair(&foreign_session.unwrap());
    let res =
        http.get(env.url(&format!("/ops/submissions/{id}"))).header("cookie", &foreign_cookie).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let foreign_csrf = csrf_in(
        &http.get(env.url("/ops/bulk")).header("cookie", &foreign_cookie).send().await.unwrap().text().await.unwrap(),
    );
    let res = http
        .post(&retry)
        .header("cookie", &foreign_cookie)
        .form(&[("csrf", foreign_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(status_of(&env, &submitter, &id).await, "failed");
    // Another session's token is no good either.
    let res =
        http.post(&retry).header("cookie", &cookie).form(&[("csrf", foreign_csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 403);

    // The API's comment rule: a comment with ESC, NUL or a right-to-left override is
    // refused with the reason, and changes nothing.
    for hostile in ["\u{1b}[31mкрасный", "a\u{0}b", "оплачено \u{202e}00.001"] {
        let res = http
            .post(&retry)
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str()), ("comment", hostile)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{hostile:?}");
        assert!(res.text().await.unwrap().contains("управляющие символы"), "the reason is shown");
        assert_eq!(status_of(&env, &submitter, &id).await, "failed");
    }
    // With all three, the action happens, in the timeline and the audit log.
    let res = http
        .post(&retry)
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("comment", "проверено")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"].to_str().unwrap(), format!("/ops/submissions/{id}?done=retry"));
    assert_ne!(status_of(&env, &submitter, &id).await, "failed", "re-queued");
    let audit: Value = env.get(&ops, "/api/v1/ops/audit").await.json().await.unwrap();
    let retried = audit["items"].as_array().unwrap().iter().find(|e| e["action"] == "retry").unwrap();
    assert_eq!(
        (retried["comment"].as_str(), retried["submission_id"].as_str()),
        (Some("проверено"), Some(id.as_str()))
    );
    env.shutdown().await;
}

async fn sessions_end(db: Db) {
    let env = TestEnv::start(db).await;
    let http = client();
    let ops = env.key(&[Role::Ops], &[MO_2917]).await;
    let (_, session) = sign_in(&env, &ops).await;
    let cookie = cookie_pair(&session.unwrap());
    let dashboard = http.get(env.url("/ops/")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(dashboard.status(), 200);
    let html = dashboard.text().await.unwrap();
    assert!(html.contains("<svg class=\"chart\""), "the dashboard's chart is inline");
    let csrf = csrf_in(&html);
    // Absurd weeks fall back to this one rather than failing.
    for week in ["%2B262142-12-31", "-262143-01-01", "garbage"] {
        let res =
            http.get(env.url(&format!("/ops/report?week={week}"))).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(res.status(), 200, "{week}");
        let res =
            http.get(env.url(&format!("/ops/report.csv?week={week}"))).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(res.status(), 200, "{week}");
    }
    // Sign-out needs the token too; then the cookie is dead.
    let res = http.post(env.url("/ops/logout")).header("cookie", &cookie).form(&[("csrf", "x")]).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = http
        .post(env.url("/ops/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(set_cookies(&res).iter().any(|c| c.starts_with("egisz_ops=;") && c.contains("Max-Age=0")));
    let res = http.get(env.url("/ops/")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), 303, "signed out");

    // A revoked key ends its sessions at once.
    let (_, session) = sign_in(&env, &ops).await;
    let cookie = cookie_pair(&session.unwrap());
    assert_eq!(http.get(env.url("/ops/")).header("cookie", &cookie).send().await.unwrap().status(), 200);
    let clients = env.store().list_clients().await.unwrap();
    let client = clients.iter().find(|c| ops.contains(&c.key_id)).unwrap();
    assert!(env.store().revoke_client(&client.id.to_string(), egisz_gateway::now()).await.unwrap());
    assert_eq!(http.get(env.url("/ops/")).header("cookie", &cookie).send().await.unwrap().status(), 303);

    // An expired session is no session.
    let other = env.key(&[Role::Ops], &[MO_2917]).await;
    let (_, session) = sign_in(&env, &other).await;
    let cookie = cookie_pair(&session.unwrap());
    let token = cookie.trim_start_matches("egisz_ops=");
    use sha2::Digest;
    let hash = sha2::Sha256::digest(token.as_bytes()).to_vec();
    let later = egisz_gateway::now() + chrono::Duration::hours(9);
    assert!(env.store().session(&hash, egisz_gateway::now()).await.unwrap().is_some());
    assert!(env.store().session(&hash, later).await.unwrap().is_none(), "ops.session_ttl is 8 h");
    assert_eq!(env.store().purge_sessions(later).await.unwrap(), 2, "this one and the revoked key's");
    assert_eq!(http.get(env.url("/ops/")).header("cookie", &cookie).send().await.unwrap().status(), 303);
    env.shutdown().await;
}

/// A form post of 16 MiB announced, whose body stops after its first bytes, over a raw
/// connection: the status line of the answer, or `None` when none came in 10 s. A server
/// that reads the body first waits for the rest (and would answer `408` only after
/// `api.body_read_timeout_ms`); one that looks at the cookie first answers at once.
async fn post_stalled(env: &TestEnv, path: &str, cookie: Option<&str>) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = env.gw.api_addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let cookie = cookie.map(|c| format!("Cookie: {c}\r\n")).unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 16777216\r\n{cookie}\r\ncsrf=x&comment="
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 256];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer)).await.ok()?;
    let n = read.unwrap();
    Some(String::from_utf8_lossy(&answer[..n]).lines().next().unwrap_or_default().to_owned())
}

/// The console reads no form before its cookie: a post without a session (or, for the
/// sign-in, without a valid signed form cookie) is refused on its headers, its body never
/// read; a cross-site post is refused; a signed-in operator's form is bounded at 64 KiB.
async fn no_body_is_read_before_the_cookie(db: Db) {
    let env = TestEnv::start_with(db, |c, _| {
        c.api.limits.body_read_timeout = std::time::Duration::from_secs(20);
    })
    .await;
    let http = client();
    let id = uuid::Uuid::now_v7();
    for (path, cookie) in [
        (format!("/ops/submissions/{id}/retry"), None),
        (format!("/ops/submissions/{id}/retry"), Some("egisz_ops=forged-session")),
        ("/ops/bulk".to_owned(), None),
        ("/ops/logout".to_owned(), None),
        ("/ops/login".to_owned(), None),
        ("/ops/login".to_owned(), Some("egisz_ops_login=nonce")),
        (
            "/ops/login".to_owned(),
            Some("egisz_ops_login=nonce.99999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ),
    ] {
        let status = post_stalled(&env, &path, cookie).await;
        let status =
            status.unwrap_or_else(|| panic!("{path} {cookie:?}: no answer while the body stalls: it was read"));
        assert!(status.starts_with("HTTP/1.1 403"), "{path} {cookie:?}: {status}");
    }

    // A signed-in operator: a cross-site post is refused, and the form is bounded.
    let ops = env.key(&[Role::Ops], &[MO_2917]).await;
    let (_, session) = sign_in(&env, &ops).await;
    let cookie = cookie_pair(&session.unwrap());
    let html = http.get(env.url("/ops/bulk")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_in(&html);
    let res = http
        .post(env.url("/ops/bulk"))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .form(&[("csrf", csrf.as_str()), ("step", "dry_run")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "a cross-site post");
    let big = "я".repeat(40 * 1024);
    let res = http
        .post(env.url("/ops/bulk"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("comment", big.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413, "a console form over 64 KiB");
    // A new connection: the server closes the one whose body it did not read.
    let res = client()
        .post(env.url("/ops/bulk"))
        .header("cookie", &cookie)
        .header("origin", env.gw.api_url())
        .form(&[("csrf", csrf.as_str()), ("step", "dry_run")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the console's own post");
    env.shutdown().await;
}
