//! The ops console at `/ops`: server-rendered HTML in Russian, every asset served by the
//! gateway itself (no script at all, no outside font or stylesheet), on the API listener.
//!
//! ## Layout
//!
//! - this module — the routes, the sign-in (an `ops` API key exchanged for a session cookie:
//!   HttpOnly, SameSite=Strict, `Secure` with `ops.secure_cookies`, expiring after
//!   `ops.session_ttl`; only the token's hash is stored), CSRF on every form (the session's
//!   token, compared in constant time; the sign-in form's own double-submit cookie, signed
//!   with a key every instance shares and expiring), the gate every form post passes before
//!   its body is read (a session, or for the sign-in a valid signed cookie; a same-origin
//!   `Origin`; at most [`BODY_LIMIT`] bytes), and the handlers, which read through the store
//!   and act through [`crate::ops::Operations`];
//! - [`pages`] — each page as a pure function of its data;
//! - [`html`] — escaping, the layout and form fields;
//! - [`chart`] — the dashboard's SVG chart.
//!
//! Every page answers with `Cache-Control: no-store` and a content security policy that
//! allows nothing from outside.

pub mod chart;
pub mod html;
pub mod pages;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::api::AppState;
use crate::api::params::Filters;
use crate::api::problem::FieldError;
use crate::audit::{Action, AuditFilter};
use crate::auth::{Principal, Role, Scope};
use crate::lifecycle::{CANCELLABLE, RETRYABLE};
use crate::ops::OpsError;
use crate::ops::report;
use crate::submission::ListFilter;
use html::{Nav, notice, page};
use pages::FilterForm;

/// The session cookie.
const COOKIE: &str = "egisz_ops";
/// The sign-in form's double-submit cookie.
const LOGIN_COOKIE: &str = "egisz_ops_login";
const PAGE_SIZE: u32 = 50;
/// The largest form the console reads, in bytes (its forms carry a token, a few filters and
/// a comment of at most 1,000 characters).
pub const BODY_LIMIT: usize = 64 * 1024;
/// The name of the shared secret that signs the sign-in cookie ([`AppState::console_key`]).
pub const SIGN_IN_SECRET: &str = "console_sign_in";
/// How long a sign-in form may be used.
const SIGN_IN_FORM_FOR: chrono::Duration = chrono::Duration::hours(1);

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/ops", get(|| async { Redirect::to("/ops/") }))
        .route("/ops/", get(dashboard))
        .route("/ops/login", get(login_form).post(login))
        .route("/ops/logout", post(logout))
        .route("/ops/failed", get(failed))
        .route("/ops/submissions/{id}", get(submission))
        .route("/ops/submissions/{id}/personal", post(show_personal))
        .route("/ops/submissions/{id}/retry", post(retry))
        .route("/ops/submissions/{id}/cancel", post(cancel))
        .route("/ops/submissions/{id}/document", post(download))
        .route("/ops/bulk", get(bulk_form).post(bulk))
        .route("/ops/report", get(report_page))
        .route("/ops/report.csv", get(report_csv))
        .route("/ops/audit", get(audit_page))
        .route("/ops/static/console.css", get(css))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .route_layer(axum::middleware::from_fn_with_state(state, gate))
}

/// Every form post, before its body is read: from a page of this console (an `Origin`, when
/// the browser sends one, naming this host), and by someone who may post it — a signed-in
/// operator, or for the sign-in a valid signed form cookie. Anything else is answered `403`
/// with nothing read beyond the headers.
async fn gate(
    State(state): State<AppState>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method() != axum::http::Method::POST {
        return next.run(request).await;
    }
    let headers = request.headers();
    if !same_origin(headers) {
        return forbidden("Форма отправлена не со страницы консоли.");
    }
    if request.uri().path() == "/ops/login" {
        if sign_in_nonce(&state.console_key, cookie_value(headers, LOGIN_COOKIE), crate::now()).is_none() {
            return login_page(&state, Some("Форма входа устарела. Введите ключ ещё раз."), StatusCode::FORBIDDEN);
        }
    } else {
        // The handler takes the session from here ([`Signed`]): one read of it per post.
        let s = match signed_in(&state, headers).await {
            Ok(s) => s,
            Err(r) => return r,
        };
        request.extensions_mut().insert(s);
    }
    next.run(request).await
}

/// The operator the gate found signed in for this form post.
struct Signed(Session);

impl axum::extract::FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Response> {
        match parts.extensions.remove::<Session>() {
            Some(s) => Ok(Signed(s)),
            None => signed_in(state, &parts.headers).await.map(Signed),
        }
    }
}

/// The session of a post, or the page that says there is none.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    match session(state, headers).await {
        Ok(s) => Ok(s),
        Err(NoSession::SignIn) => Err(forbidden("Сеанс истёк или не начат. Войдите снова.")),
        Err(NoSession::Failed(r)) => Err(r),
    }
}

/// A post from this console's own pages: the browser's `Sec-Fetch-Site` says
/// `same-origin` (or `none`: typed by the user), or, from a browser that does not send it,
/// no `Origin` or one whose host and port are the request's `Host`. (`Origin: null`, what a
/// sandboxed frame of another site sends, is refused; the console's pages are served with
/// `Referrer-Policy: same-origin`, so that its own posts carry their origin.)
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// The MAC of a sign-in form's nonce and expiry under `key`.
fn sign_in_mac(key: &[u8], nonce: &str, expires: i64) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("ops-sign-in|{nonce}|{expires}").as_bytes());
    B64URL.encode(mac.finalize().into_bytes())
}

/// The sign-in form cookie: its nonce (also the form's hidden field), when it expires, and
/// their MAC — a cookie nobody but a gateway with the key could have made.
fn sign_in_cookie(key: &[u8], nonce: &str, expires: chrono::DateTime<chrono::Utc>) -> String {
    let expires = expires.timestamp();
    format!("{nonce}.{expires}.{}", sign_in_mac(key, nonce, expires))
}

/// The nonce of a sign-in cookie this console made and that has not expired at `now`.
fn sign_in_nonce<'a>(key: &[u8], cookie: Option<&'a str>, now: chrono::DateTime<chrono::Utc>) -> Option<&'a str> {
    let mut parts = cookie?.splitn(3, '.');
    let (nonce, expires, mac) = (parts.next()?, parts.next()?, parts.next()?);
    let expires: i64 = expires.parse().ok()?;
    (expires > now.timestamp() && same(mac, &sign_in_mac(key, nonce, expires))).then_some(nonce)
}

/// A page, with the console's headers.
fn html(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    secure_headers(h);
    res
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Nothing to other sites; the console's own posts carry their origin (the gate checks it).
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}

async fn css() -> Response {
    let mut res = include_str!("console.css").into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

fn token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    B64URL.encode(bytes)
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A signed-in operator.
#[derive(Clone)]
struct Session {
    principal: Principal,
    csrf: String,
    token_hash: Vec<u8>,
}

impl Session {
    fn operator(&self) -> Option<(&str, &str)> {
        Some((self.principal.name.as_str(), self.csrf.as_str()))
    }
}

/// Why a request has no session: GET → to the sign-in page; POST → 403.
enum NoSession {
    SignIn,
    Failed(Response),
}

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        match self {
            NoSession::SignIn => Redirect::to("/ops/login").into_response(),
            NoSession::Failed(r) => r,
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "ops console: the store failed");
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        page(
            "Хранилище недоступно",
            Nav::None,
            None,
            &notice("error", "База данных шлюза сейчас недоступна. Повторите позже."),
        ),
    )
}

fn forbidden(text: &str) -> Response {
    html(StatusCode::FORBIDDEN, page("Действие не выполнено", Nav::None, None, &notice("error", text)))
}

async fn session(state: &AppState, headers: &HeaderMap) -> Result<Session, NoSession> {
    let Some(token) = cookie_value(headers, COOKIE) else { return Err(NoSession::SignIn) };
    let token_hash = hash(token);
    let found = state.store.session(&token_hash, crate::now()).await.map_err(|e| NoSession::Failed(unavailable(e)))?;
    let Some(s) = found else { return Err(NoSession::SignIn) };
    // A revoked key, or one that lost the role, ends its sessions.
    if s.client.revoked_at.is_some() || !s.client.roles.contains(&Role::Ops) {
        return Err(NoSession::SignIn);
    }
    let c = s.client;
    Ok(Session {
        principal: Principal { client_id: c.id, name: c.name, roles: c.roles, scope: c.scope },
        csrf: s.csrf_token,
        token_hash,
    })
}

/// The session of a form post, when the form carries its CSRF token.
fn posted(Signed(s): Signed, form: &HashMap<String, String>) -> Option<Session> {
    form.get("csrf").is_some_and(|t| same(t, &s.csrf)).then_some(s)
}

/// The answer to a form without the session's CSRF token.
fn stale_form() -> Response {
    forbidden("Форма устарела или отправлена не из консоли (нет CSRF-токена). Обновите страницу.")
}

fn cookie(state: &AppState, name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
    let secure = if state.ops.settings().secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"))
        .expect("a cookie of safe characters")
}

async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if session(&state, &headers).await.is_ok() {
        return Redirect::to("/ops/").into_response();
    }
    login_page(&state, None, StatusCode::OK)
}

fn login_page(state: &AppState, problem: Option<&str>, status: StatusCode) -> Response {
    let csrf = token();
    let signed = sign_in_cookie(&state.console_key, &csrf, crate::now() + SIGN_IN_FORM_FOR);
    let mut res = html(status, page("Вход", Nav::None, None, &pages::login(&csrf, problem)));
    let max_age = SIGN_IN_FORM_FOR.num_seconds() as u64;
    res.headers_mut().insert(header::SET_COOKIE, cookie(state, LOGIN_COOKIE, &signed, "/ops/login", max_age));
    res
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let expected = sign_in_nonce(&state.console_key, cookie_value(&headers, LOGIN_COOKIE), crate::now());
    if !matches!((expected, form.get("csrf")), (Some(a), Some(b)) if same(a, b)) {
        return login_page(&state, Some("Форма входа устарела. Введите ключ ещё раз."), StatusCode::FORBIDDEN);
    }
    let key = form.get("key").map(|k| k.trim()).unwrap_or_default();
    let principal = match state.auth.authenticate_key(key).await {
        Ok(p) => p,
        Err(crate::auth::AuthError::Store(e)) => return unavailable(e),
        Err(_) => return login_page(&state, Some("Ключ не распознан или отозван."), StatusCode::UNAUTHORIZED),
    };
    if !principal.roles.contains(&Role::Ops) {
        return login_page(
            &state,
            Some("У этого ключа нет роли ops: вход в консоль невозможен."),
            StatusCode::FORBIDDEN,
        );
    }
    let session_token = token();
    let now = crate::now();
    let ttl = state.ops.settings().session_ttl;
    let expires = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(8));
    if let Err(e) = state.store.create_session(&hash(&session_token), principal.client_id, &token(), now, expires).await
    {
        return unavailable(e);
    }
    if let Err(e) = state.ops.note(&principal, Action::SignIn, None).await {
        return unavailable(e);
    }
    let mut res = Redirect::to("/ops/").into_response();
    let h = res.headers_mut();
    h.append(header::SET_COOKIE, cookie(&state, COOKIE, &session_token, "/ops", ttl.as_secs()));
    h.append(header::SET_COOKIE, cookie(&state, LOGIN_COOKIE, "", "/ops/login", 0));
    res
}

async fn logout(
    State(state): State<AppState>,
    signed: Signed,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let Some(s) = posted(signed, &form) else { return stale_form() };
    if let Err(e) = state.store.delete_session(&s.token_hash).await {
        return unavailable(e);
    }
    let _ = state.ops.note(&s.principal, Action::SignOut, None).await;
    let mut res = Redirect::to("/ops/login").into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie(&state, COOKIE, "", "/ops", 0));
    res
}

async fn dashboard(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, NoSession> {
    let s = session(&state, &headers).await?;
    let (offset, now) = (state.region.utc_offset, crate::now());
    let summary = match state.ops.summary(&s.principal.scope, state.staff.frmr_health(), now).await {
        Ok(summary) => summary,
        Err(e) => return Ok(unavailable(e)),
    };
    let days = match state.ops.days(&s.principal.scope, now, offset).await {
        Ok(days) => days,
        Err(e) => return Ok(unavailable(e)),
    };
    Ok(html(StatusCode::OK, page("Сводка", Nav::Dashboard, s.operator(), &pages::dashboard(&summary, &days, offset))))
}

fn filter_form(q: &HashMap<String, String>) -> FilterForm {
    let get = |k: &str| q.get(k).map(|v| v.trim().chars().take(200).collect::<String>()).unwrap_or_default();
    FilterForm {
        organization: get("organization"),
        status: get("status"),
        kind: get("kind"),
        error_code: get("error_code"),
        disposition: get("disposition"),
        from: get("from"),
        to: get("to"),
    }
}

/// The store's filter of a form within `scope`; problems in Russian. The organisation is an
/// MO OID, or else a part of the name (or of the OID) of the organisations within `scope`
/// that have submitted documents, `organizations` (as [`crate::ops::Operations::organizations`]
/// gives them).
fn list_filter(
    f: &FilterForm,
    scope: &Scope,
    organizations: &[(String, Option<String>)],
    state: &AppState,
) -> Result<ListFilter, Vec<String>> {
    let mut problems = Vec::new();
    let text = f.organization.trim();
    let by_name = !text.is_empty() && egisz_contract::Oid::parse_organization(text).is_err();
    let kind = match f.kind.as_str() {
        "" => None,
        k => match k.parse::<u32>() {
            Ok(k) => Some(k),
            Err(_) => {
                problems.push(format!("вид документа — число, получено «{k}»"));
                None
            }
        },
    };
    let filters = Filters {
        organization: Some(f.organization.clone()).filter(|_| !by_name),
        status: Some(f.status.clone()).filter(|s| s != "any"),
        kind,
        from: Some(f.from.clone()),
        to: Some(f.to.clone()),
        error_code: Some(f.error_code.clone()),
        disposition: Some(f.disposition.clone()),
    };
    let mut errors: Vec<FieldError> = Vec::new();
    let mut parsed = filters.parse_for(scope, state.region.utc_offset, &mut errors);
    problems.extend(errors.into_iter().map(|e| e.message));
    if by_name && let Ok(filter) = &mut parsed {
        let candidates: Vec<String> = organizations.iter().map(|(oid, _)| oid.clone()).collect();
        let matched: Vec<egisz_contract::Oid> = state
            .ops
            .names()
            .matching(&candidates, text)
            .into_iter()
            .filter_map(|oid| egisz_contract::Oid::parse(oid).ok())
            .collect();
        if matched.is_empty() {
            problems.push(format!(
                "ни одна организация, подававшая документы, не подходит под «{text}»: введите часть названия или OID"
            ));
        }
        filter.organizations = Some(matched);
    }
    match parsed {
        Ok(filter) if problems.is_empty() => Ok(filter),
        Ok(_) => Err(problems),
        Err(oid) => Err(vec![format!("организация {oid} вне организаций вашего ключа")]),
    }
}

async fn failed(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(mut q): Query<HashMap<String, String>>,
) -> Result<Response, NoSession> {
    let s = session(&state, &headers).await?;
    q.entry("status".into()).or_insert_with(|| "failed".into());
    let form = filter_form(&q);
    let sort = if q.get("sort").map(String::as_str) == Some("oldest") { "oldest" } else { "newest" };
    let cursor = q.get("cursor").and_then(|c| {
        let (ms, id) = c.split_once('_')?;
        Some((chrono::DateTime::from_timestamp_millis(ms.parse().ok()?)?, Uuid::parse_str(id).ok()?))
    });
    let offset = state.region.utc_offset;
    let organizations = match state.ops.organizations(&s.principal.scope).await {
        Ok(o) => o,
        Err(e) => return Ok(unavailable(e)),
    };
    let (rows, next, problems) = match list_filter(&form, &s.principal.scope, &organizations, &state) {
        Ok(filter) => {
            let filter = ListFilter { before: cursor, limit: PAGE_SIZE + 1, oldest_first: sort == "oldest", ..filter };
            match state.store.list_submissions(&filter).await {
                Ok(mut rows) => {
                    let next = if rows.len() > PAGE_SIZE as usize {
                        rows.truncate(PAGE_SIZE as usize);
                        rows.last().map(|r| format!("{}_{}", r.created_at.timestamp_millis(), r.id.simple()))
                    } else {
                        None
                    };
                    (rows, next, Vec::new())
                }
                Err(e) => return Ok(unavailable(e)),
            }
        }
        Err(problems) => (Vec::new(), None, problems),
    };
    let names = state.ops.names();
    let body = pages::failed_list(&pages::ListPage {
        filter: &form,
        organizations: &organizations,
        names: &names,
        sort,
        rows: &rows,
        next_cursor: next,
        problems: &problems,
        offset,
    });
    Ok(html(StatusCode::OK, page("Документы с ошибками", Nav::Failed, s.operator(), &body)))
}

/// The session of a form post about one submission (CSRF checked), and that submission when
/// it is in the operator's organisations.
async fn posted_record(
    state: &AppState,
    signed: Signed,
    form: &HashMap<String, String>,
    raw: &str,
) -> Result<(Session, crate::submission::SubmissionRecord), Response> {
    let s = posted(signed, form).ok_or_else(stale_form)?;
    let Some(id) = parse_id(raw) else { return Err(forbidden("Документ не найден.")) };
    match state.store.submission(id).await {
        Ok(Some(r)) if s.principal.scope.allows(&r.organization) => Ok((s, r)),
        Ok(_) => Err(forbidden("Документ не найден.")),
        Err(e) => Err(unavailable(e)),
    }
}

fn parse_id(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw.trim()).ok()
}

async fn detail(state: &AppState, s: &Session, id: Uuid, show_personal: bool, done: Option<&str>) -> Response {
    let not_found = || {
        html(
            StatusCode::NOT_FOUND,
            page("Не найдено", Nav::Failed, s.operator(), &notice("error", "Документ не найден.")),
        )
    };
    let record = match state.store.submission(id).await {
        Ok(Some(r)) if s.principal.scope.allows(&r.organization) => r,
        Ok(_) => return not_found(),
        Err(e) => return unavailable(e),
    };
    let (events, messages) = match (state.store.events(id).await, state.store.messages(id).await) {
        (Ok(e), Ok(m)) => (e, m),
        (Err(e), _) | (_, Err(e)) => return unavailable(e),
    };
    let names = state.ops.names();
    let body = pages::submission(&pages::DetailPage {
        record: &record,
        organization_name: names.of(record.organization.as_str()),
        events: &events,
        messages: &messages,
        show_personal,
        csrf: &s.csrf,
        done,
        mappings: &state.mappings,
        offset: state.region.utc_offset,
        retryable: RETRYABLE.contains(&record.status),
        cancellable: CANCELLABLE.contains(&record.status),
    });
    html(StatusCode::OK, page(&format!("Документ {}", record.local_uid), Nav::Failed, s.operator(), &body))
}

async fn submission(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, NoSession> {
    let s = session(&state, &headers).await?;
    let Some(id) = parse_id(&raw) else {
        return Ok(html(
            StatusCode::NOT_FOUND,
            page("Не найдено", Nav::Failed, s.operator(), &notice("error", "Документ не найден.")),
        ));
    };
    let done = match q.get("done").map(String::as_str) {
        Some("retry") => Some("Документ поставлен в очередь на повторную отправку."),
        Some("cancel") => Some("Документ отменён и больше не отправляется."),
        _ => None,
    };
    Ok(detail(&state, &s, id, false, done).await)
}

async fn show_personal(
    State(state): State<AppState>,
    signed: Signed,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let (s, record) = match posted_record(&state, signed, &form, &raw).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let id = record.id;
    if let Err(e) = state.ops.note(&s.principal, Action::ShowPersonalData, Some(&record)).await {
        return unavailable(e);
    }
    detail(&state, &s, id, true, None).await
}

async fn act(state: AppState, signed: Signed, raw: String, form: HashMap<String, String>, action: Action) -> Response {
    let Some(s) = posted(signed, &form) else { return stale_form() };
    let Some(id) = parse_id(&raw) else { return forbidden("Документ не найден.") };
    let comment = match crate::ops::comment(form.get("comment").map(String::as_str)) {
        Ok(c) => c,
        Err(e) => {
            return html(
                StatusCode::UNPROCESSABLE_ENTITY,
                page(
                    "Комментарий не принят",
                    Nav::Failed,
                    s.operator(),
                    &format!(
                        "{}<p><a href=\"/ops/submissions/{id}\">К документу</a></p>",
                        notice("error", &e.to_string())
                    ),
                ),
            );
        }
    };
    match state.ops.act(&s.principal, id, action, comment.as_deref()).await {
        Ok(_) => {
            let done = if action == Action::Retry { "retry" } else { "cancel" };
            Redirect::to(&format!("/ops/submissions/{id}?done={done}")).into_response()
        }
        Err(OpsError::NotFound) => forbidden("Документ не найден."),
        Err(OpsError::Refused(why)) => html(
            StatusCode::CONFLICT,
            page(
                "Действие недоступно",
                Nav::Failed,
                s.operator(),
                &format!("{}<p><a href=\"/ops/submissions/{id}\">К документу</a></p>", notice("error", &why)),
            ),
        ),
        Err(OpsError::Raced) => html(
            StatusCode::CONFLICT,
            page(
                "Документ изменился",
                Nav::Failed,
                s.operator(),
                &format!(
                    "{}<p><a href=\"/ops/submissions/{id}\">К документу</a></p>",
                    notice("error", "Состояние документа изменилось; посмотрите его ещё раз.")
                ),
            ),
        ),
        Err(OpsError::Store(e)) => unavailable(e),
    }
}

async fn retry(
    State(state): State<AppState>,
    signed: Signed,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    act(state, signed, raw, form, Action::Retry).await
}

async fn cancel(
    State(state): State<AppState>,
    signed: Signed,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    act(state, signed, raw, form, Action::Cancel).await
}

async fn download(
    State(state): State<AppState>,
    signed: Signed,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let (s, record) = match posted_record(&state, signed, &form, &raw).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let id = record.id;
    let bytes = match state.store.document_content(id).await {
        Ok(Some(b)) => b,
        Ok(None) => return forbidden("Документ не найден."),
        Err(e) => return unavailable(e),
    };
    if let Err(e) = state.ops.note(&s.principal, Action::DownloadDocument, Some(&record)).await {
        return unavailable(e);
    }
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    let name = format!("attachment; filename=\"{}.xml\"", record.id);
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&name).expect("a uuid is a safe header"));
    secure_headers(h);
    res
}

fn bulk_page(s: &Session, p: &pages::BulkPage<'_>) -> Response {
    html(StatusCode::OK, page("Массовый перезапуск", Nav::Bulk, s.operator(), &pages::bulk(p)))
}

/// The re-queued submissions of a run (posted back by the page).
fn posted_ids(q: &HashMap<String, String>, max: usize) -> Vec<Uuid> {
    q.get("ids")
        .map(|ids| ids.split(',').filter_map(|i| Uuid::parse_str(i.trim()).ok()).take(max).collect())
        .unwrap_or_default()
}

async fn bulk_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, NoSession> {
    let s = session(&state, &headers).await?;
    let form = filter_form(&q);
    let page = pages::BulkPage {
        filter: &form,
        csrf: &s.csrf,
        problems: &[],
        dry_run: None,
        done: None,
        progress: None,
        bulk_max: state.ops.bulk_max(),
    };
    Ok(bulk_page(&s, &page))
}

async fn bulk(
    State(state): State<AppState>,
    signed: Signed,
    axum::Form(q): axum::Form<HashMap<String, String>>,
) -> Response {
    let Some(s) = posted(signed, &q) else { return stale_form() };
    let form = filter_form(&q);
    let step = q.get("step").map(String::as_str).unwrap_or("dry_run");
    if step == "progress" {
        // How the documents of a run are getting on: only ones this operator may see.
        let ids = posted_ids(&q, state.ops.bulk_max() as usize);
        let mut visible = Vec::with_capacity(ids.len());
        for id in ids {
            match state.store.submission(id).await {
                Ok(Some(r)) if s.principal.scope.allows(&r.organization) => visible.push(id),
                Ok(_) => {}
                Err(e) => return unavailable(e),
            }
        }
        let progress = match state.store.statuses_of(&visible).await {
            Ok(p) => p,
            Err(e) => return unavailable(e),
        };
        let p = pages::BulkPage {
            filter: &form,
            csrf: &s.csrf,
            problems: &[],
            dry_run: None,
            done: None,
            progress: Some((progress, visible)),
            bulk_max: state.ops.bulk_max(),
        };
        return bulk_page(&s, &p);
    }
    let run = step == "run";
    // The form again, with what is wrong with it.
    let refused = |problems: Vec<String>| {
        let p = pages::BulkPage {
            filter: &form,
            csrf: &s.csrf,
            problems: &problems,
            dry_run: None,
            done: None,
            progress: None,
            bulk_max: state.ops.bulk_max(),
        };
        bulk_page(&s, &p)
    };
    let organizations = match state.ops.organizations(&s.principal.scope).await {
        Ok(o) => o,
        Err(e) => return unavailable(e),
    };
    let filter = match list_filter(&form, &s.principal.scope, &organizations, &state) {
        Ok(f) => f,
        Err(problems) => return refused(problems),
    };
    if let Some(st) = filter.statuses.first()
        && !RETRYABLE.contains(st)
    {
        return refused(vec![format!("перезапускаются только статусы failed, retry_wait, unknown; выбран {st}")]);
    }
    let shown: serde_json::Value = form
        .fields()
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let comment = match crate::ops::comment(q.get("comment").map(String::as_str)) {
        Ok(c) => c,
        Err(e) => return refused(vec![e.to_string()]),
    };
    let bulk_run = match state.ops.bulk_retry(&s.principal, &filter, !run, comment.as_deref(), shown).await {
        Ok(o) => o,
        Err(OpsError::Store(e)) => return unavailable(e),
        Err(e) => return forbidden(&e.to_string()),
    };
    let outcome = bulk_run.outcome;
    let progress_now = if run {
        match state.store.statuses_of(&bulk_run.requeued).await {
            Ok(p) => Some((p, bulk_run.requeued)),
            Err(e) => return unavailable(e),
        }
    } else {
        None
    };
    let p = pages::BulkPage {
        filter: &form,
        csrf: &s.csrf,
        problems: &[],
        dry_run: (!run).then_some(outcome),
        done: run.then_some(outcome),
        progress: progress_now,
        bulk_max: state.ops.bulk_max(),
    };
    bulk_page(&s, &p)
}

/// The week of `?week=` (any of its days), or this week.
fn week(
    state: &AppState,
    q: &HashMap<String, String>,
) -> (String, chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    let offset = state.region.utc_offset;
    let day = q
        .get("week")
        .and_then(|w| chrono::NaiveDate::parse_from_str(w.trim(), "%Y-%m-%d").ok())
        .filter(|d| (2000..=2100).contains(&chrono::Datelike::year(d)))
        .unwrap_or_else(|| crate::now().with_timezone(&offset).date_naive());
    let (from, to) = report::week_of(day, offset);
    (day.format("%Y-%m-%d").to_string(), from, to)
}

async fn report_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, NoSession> {
    let s = session(&state, &headers).await?;
    let (day, from, to) = week(&state, &q);
    let r = match state.ops.report(&s.principal.scope, from, to).await {
        Ok(r) => r,
        Err(e) => return Ok(unavailable(e)),
    };
    let body = pages::report(&r, &day, &state.mappings, state.region.utc_offset);
    Ok(html(StatusCode::OK, page("Отчёт по регистрации в РЭМД", Nav::Report, s.operator(), &body)))
}

async fn report_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, NoSession> {
    let s = session(&state, &headers).await?;
    let (_, from, to) = week(&state, &q);
    match state.ops.report(&s.principal.scope, from, to).await {
        Ok(r) => {
            let mut res = crate::api::ops::report_csv(&state, &r);
            secure_headers(res.headers_mut());
            Ok(res)
        }
        Err(e) => Ok(unavailable(e)),
    }
}

async fn audit_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, NoSession> {
    let s = session(&state, &headers).await?;
    let before = q.get("cursor").and_then(|c| c.parse::<i64>().ok());
    let filter = AuditFilter {
        before,
        limit: PAGE_SIZE + 1,
        visible_to: crate::ops::visible_to(&s.principal),
        ..AuditFilter::default()
    };
    let mut items = match state.store.audit_log(&filter).await {
        Ok(items) => items,
        Err(e) => return Ok(unavailable(e)),
    };
    let next = if items.len() > PAGE_SIZE as usize {
        items.truncate(PAGE_SIZE as usize);
        items.last().map(|e| e.id.to_string())
    } else {
        None
    };
    let body = pages::audit(&items, &state.ops.names(), next.as_deref(), state.region.utc_offset);
    Ok(html(StatusCode::OK, page("Журнал действий", Nav::Audit, s.operator(), &body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_signed_unexpired_sign_in_cookie_names_its_nonce() {
        let key = b"a key every instance shares....";
        let now: chrono::DateTime<chrono::Utc> = "2026-12-06T10:00:00Z".parse().unwrap();
        let cookie = sign_in_cookie(key, "nonce-1", now + SIGN_IN_FORM_FOR);
        assert_eq!(sign_in_nonce(key, Some(&cookie), now), Some("nonce-1"));
        assert!(cookie.len() <= 128, "within what the cookie reader takes: {cookie}");
        assert_eq!(sign_in_nonce(key, Some(&cookie), now + SIGN_IN_FORM_FOR), None, "expired");
        assert_eq!(sign_in_nonce(b"another gateway's key..........", Some(&cookie), now), None, "another key");
        let (head, _) = cookie.rsplit_once('.').unwrap();
        for forged in [
            "nonce-1".to_owned(),
            format!("{head}.AAAA"),
            cookie.replacen("nonce-1", "nonce-2", 1),
            cookie.replacen(&(now + SIGN_IN_FORM_FOR).timestamp().to_string(), "99999999999", 1),
        ] {
            assert_eq!(sign_in_nonce(key, Some(&forged), now), None, "{forged}");
        }
        assert_eq!(sign_in_nonce(key, None, now), None);
    }

    #[test]
    fn an_origin_must_be_this_host() {
        let headers = |origin: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
            if let Some(o) = origin {
                h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            h
        };
        assert!(same_origin(&headers(None)), "no Origin: not a browser's cross-site post");
        let fetched = |site: &'static str| {
            let mut h = headers(Some("null"));
            h.insert("sec-fetch-site", HeaderValue::from_static(site));
            same_origin(&h)
        };
        assert!(fetched("same-origin") && fetched("none"), "the browser says it is this console's page");
        assert!(!fetched("cross-site") && !fetched("same-site"), "a neighbouring site is another site");
        assert!(same_origin(&headers(Some("http://127.0.0.1:8080"))));
        for other in ["http://evil.example", "http://127.0.0.1:8081", "null", "http://127.0.0.1:8080.evil"] {
            assert!(!same_origin(&headers(Some(other))), "{other}");
        }
    }
}
