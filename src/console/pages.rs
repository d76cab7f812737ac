//! The console's pages as pure functions of what they show: no I/O here, so each page can
//! be tested from its data.

use std::fmt::Write;

use chrono::{DateTime, FixedOffset, Utc};

use super::chart;
use super::html::{csrf_field, esc, input, notice, organization, select, url_value};
use crate::audit::AuditEntry;
use crate::mappings::Mappings;
use crate::nsi::frmo::Names;
use crate::ops::BulkOutcome;
use crate::ops::Summary;
use crate::ops::report::{DayFigures, Report};
use crate::submission::{Disposition, Event, Status, SubmissionError, SubmissionRecord};

/// A status in Russian.
pub fn status_ru(s: Status) -> &'static str {
    match s {
        Status::Queued => "в очереди",
        Status::Sending => "отправляется",
        Status::AwaitingResult => "ожидает результата РЭМД",
        Status::RetryWait => "ожидает повтора",
        Status::Unknown => "сверка с реестром",
        Status::Registered => "зарегистрирован",
        Status::Failed => "ошибка",
        Status::Cancelled => "отменён",
    }
}

/// A disposition in Russian.
pub fn disposition_ru(d: Disposition) -> &'static str {
    match d {
        Disposition::Retry => "повтор",
        Disposition::Reconcile => "сверка",
        Disposition::NeedsDataFix => "нужно исправить данные",
        Disposition::NeedsAdmin => "нужен администратор",
    }
}

fn status_html(s: Status) -> String {
    format!("<span class=\"status status-{}\">{}</span>", s.as_str(), status_ru(s))
}

/// A time in the region's zone.
pub fn time(t: DateTime<Utc>, offset: FixedOffset) -> String {
    t.with_timezone(&offset).format("%d.%m.%Y %H:%M:%S").to_string()
}

fn age(seconds: i64) -> String {
    let (d, h, m) = (seconds / 86_400, seconds % 86_400 / 3600, seconds % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m} мин"),
        (0, _) => format!("{h} ч {m} мин"),
        (_, 0) => format!("{d} дн"),
        _ => format!("{d} дн {h} ч"),
    }
}

fn percent(rate: Option<f64>) -> String {
    rate.map(|r| format!("{:.1} %", r * 100.0).replace('.', ",")).unwrap_or_else(|| "—".into())
}

pub fn login(csrf: &str, problem: Option<&str>) -> String {
    let mut body = String::new();
    if let Some(p) = problem {
        body.push_str(&notice("error", p));
    }
    let _ = write!(
        body,
        "<form class=\"login\" method=\"post\" action=\"/ops/login\">{}\
         <p class=\"field\"><label for=\"key\">API-ключ с ролью ops</label>\
         <input id=\"key\" name=\"key\" type=\"password\" autocomplete=\"off\" required autofocus \
         aria-describedby=\"key-hint\"><small id=\"key-hint\">Ключ выдаёт администратор командой \
         <code>egisz-gateway clients add --role ops</code>. Ключ не сохраняется в браузере: после входа \
         действует сеанс.</small></p><p><button type=\"submit\">Войти</button></p></form>",
        csrf_field(csrf)
    );
    body
}

pub fn dashboard(summary: &Summary, days: &[DayFigures], offset: FixedOffset) -> String {
    let mut b = String::from("<h2>Очередь сейчас</h2><div class=\"cards\">");
    let card = |b: &mut String, class: &str, n: String, label: &str, href: Option<String>| {
        let label = match href {
            Some(h) => format!("<a href=\"{}\">{}</a>", esc(&h), esc(label)),
            None => esc(label),
        };
        let _ = write!(b, "<div class=\"card {class}\"><span class=\"n\">{}</span>{label}</div>", esc(&n));
    };
    card(&mut b, "", summary.queue_depth.to_string(), "в пути к РЭМД", None);
    card(
        &mut b,
        if summary.past_deadline > 0 { "bad" } else { "ok" },
        summary.past_deadline.to_string(),
        &format!("просрочено (дольше {})", age(summary.registration_deadline_seconds as i64)),
        None,
    );
    for s in Status::ALL {
        let n = summary.counts.get(s.as_str()).copied().unwrap_or(0);
        let class = match s {
            Status::Failed if n > 0 => "bad",
            Status::Registered => "ok",
            _ => "",
        };
        let href = match s {
            Status::Failed => Some("/ops/failed".to_owned()),
            other => Some(format!("/ops/failed?status={}", other.as_str())),
        };
        card(&mut b, class, n.to_string(), status_ru(s), href);
    }
    b.push_str("</div>");
    match &summary.oldest_waiting {
        Some(w) => {
            let _ = write!(
                b,
                "<p>Самый старый документ в пути: <a href=\"/ops/submissions/{}\">{}</a> — {}, {}, подан {} (ждёт {}).</p>",
                w.submission.id,
                w.submission.id,
                organization_inline(&w.submission.organization, w.organization_name.as_deref()),
                status_ru(w.submission.status),
                time(w.submission.created_at, offset),
                age(w.age_seconds)
            );
        }
        None => b.push_str("<p>Документов в пути нет.</p>"),
    }
    b.push_str(
        "<h2>Федеральные сервисы</h2><div class=\"scroll\"><table><thead><tr><th>Сервис</th><th>Состояние</th>\
                <th>Последний успех</th><th>Последняя ошибка</th><th>Текст ошибки</th></tr></thead><tbody>",
    );
    for (name, h) in [("РЭМД", &summary.remd), ("ФРМР", &summary.frmr)] {
        let state = match h.circuit.as_str() {
            "closed" => "работает".to_owned(),
            "open" => format!("сбой ({} ошибок подряд)", h.consecutive_failures),
            _ => "проверка после сбоя".to_owned(),
        };
        let t = |x: Option<DateTime<Utc>>| x.map(|x| time(x, offset)).unwrap_or_else(|| "—".into());
        let _ = write!(
            b,
            "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&state),
            t(h.last_success),
            t(h.last_failure),
            esc(h.last_error.as_deref().unwrap_or("—"))
        );
    }
    b.push_str("</tbody></table></div>");
    let submitted: u64 = days.iter().map(|d| d.submitted).sum();
    let registered: u64 = days.iter().map(|d| d.registered).sum();
    let failed: u64 = days.iter().map(|d| d.failed).sum();
    let _ = write!(
        b,
        "<h2>{} дней по дате подачи</h2><p class=\"hint\">Данные за дни обновляются раз в минуту.</p><p>Подано {submitted}, зарегистрировано {registered}, с ошибкой {failed}; \
         доля зарегистрированных {}.</p><p class=\"legend\" aria-hidden=\"true\"><span class=\"registered\"></span>зарегистрировано\
         <span class=\"failed\"></span>с ошибкой</p>{}",
        days.len(),
        percent((submitted > 0).then(|| registered as f64 / submitted as f64)),
        chart::days_svg(days)
    );
    b.push_str("<details><summary>Таблица по дням</summary><div class=\"scroll\"><table><thead><tr><th>День</th>\
                <th class=\"num\">Подано</th><th class=\"num\">Зарегистрировано</th><th class=\"num\">С ошибкой</th></tr></thead><tbody>");
    for d in days.iter().rev() {
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            d.date.format("%d.%m.%Y"),
            d.submitted,
            d.registered,
            d.failed
        );
    }
    b.push_str("</tbody></table></div></details>");
    b
}

/// The filter values as the forms and links carry them.
#[derive(Debug, Clone, Default)]
pub struct FilterForm {
    pub organization: String,
    pub status: String,
    pub kind: String,
    pub error_code: String,
    pub disposition: String,
    pub from: String,
    pub to: String,
}

impl FilterForm {
    pub fn fields(&self) -> [(&'static str, &str); 7] {
        [
            ("organization", &self.organization),
            ("status", &self.status),
            ("kind", &self.kind),
            ("error_code", &self.error_code),
            ("disposition", &self.disposition),
            ("from", &self.from),
            ("to", &self.to),
        ]
    }

    /// `a=b&…` of the filled fields.
    pub fn query(&self) -> String {
        self.fields()
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", url_value(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    pub fn hidden(&self) -> String {
        self.fields()
            .iter()
            .map(|(k, v)| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(v)))
            .collect()
    }

    /// The filter inputs; `statuses` are the states offered, `organizations` the
    /// organisations suggested for the organisation field (`(OID, name)`; a list the browser
    /// offers as one types, no script needed).
    pub fn inputs(&self, statuses: &[(String, String)], organizations: &[(String, Option<String>)]) -> String {
        let dispositions: Vec<(String, String)> = std::iter::once((String::new(), "любое".to_owned()))
            .chain(Disposition::ALL.iter().map(|d| (d.as_str().to_owned(), disposition_ru(*d).to_owned())))
            .collect();
        [
            organization_input(&self.organization, organizations),
            select("status", "Статус", &self.status, statuses),
            input("kind", "Вид документа", &self.kind, "number", ""),
            input("error_code", "Код ошибки", &self.error_code, "text", ""),
            select("disposition", "Что делать", &self.disposition, &dispositions),
            input("from", "Подан с", &self.from, "date", ""),
            input("to", "Подан до", &self.to, "date", ""),
        ]
        .concat()
    }
}

/// The organisation field: an OID, or part of a name (or of an OID) of an organisation that
/// has submitted documents, with those organisations suggested.
fn organization_input(value: &str, organizations: &[(String, Option<String>)]) -> String {
    let mut out = format!(
        "<p class=\"field\"><label for=\"organization\">Организация</label>\
         <input id=\"organization\" name=\"organization\" type=\"text\" value=\"{}\" list=\"organizations\" \
         aria-describedby=\"organization-hint\"><small id=\"organization-hint\">название, его часть или OID</small>\
         <datalist id=\"organizations\">",
        esc(value)
    );
    for (oid, name) in organizations {
        match name {
            Some(name) => {
                let _ = write!(out, "<option value=\"{}\">{}</option>", esc(name), esc(oid));
            }
            None => {
                let _ = write!(out, "<option value=\"{}\">нет в ФРМО</option>", esc(oid));
            }
        }
    }
    out.push_str("</datalist></p>");
    out
}

/// An organisation in running text: its name and OID, or the OID marked as unknown to FRMO.
fn organization_inline(oid: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{} <small class=\"oid\">({})</small>", esc(name), esc(oid)),
        None => format!("{} <small class=\"unknown\">нет в ФРМО</small>", esc(oid)),
    }
}

fn first_error(errors: &[SubmissionError]) -> String {
    match errors.first() {
        Some(e) => format!(
            "<strong>{}</strong> <span class=\"hint\">({})</span><br><span class=\"hint\">{}</span>{}",
            esc(&e.code),
            disposition_ru(e.disposition),
            esc(&e.hint_ru),
            if errors.len() > 1 { format!(" <small>и ещё {}</small>", errors.len() - 1) } else { String::new() }
        ),
        None => "—".into(),
    }
}

pub struct ListPage<'a> {
    pub filter: &'a FilterForm,
    /// The organisations suggested for the organisation field.
    pub organizations: &'a [(String, Option<String>)],
    pub names: &'a Names,
    pub sort: &'a str,
    pub rows: &'a [SubmissionRecord],
    pub next_cursor: Option<String>,
    pub problems: &'a [String],
    pub offset: FixedOffset,
}

pub fn failed_list(p: &ListPage<'_>) -> String {
    let mut b = String::new();
    for problem in p.problems {
        b.push_str(&notice("error", problem));
    }
    let statuses: Vec<(String, String)> = std::iter::once(("any".to_owned(), "любой".to_owned()))
        .chain(Status::ALL.iter().map(|s| (s.as_str().to_owned(), status_ru(*s).to_owned())))
        .collect();
    let sorts = [("newest".to_owned(), "сначала новые".to_owned()), ("oldest".to_owned(), "сначала старые".to_owned())];
    let _ = write!(
        b,
        "<form class=\"filters\" method=\"get\" action=\"/ops/failed\" aria-label=\"Фильтры\">{}{}\
         <p class=\"field\"><button type=\"submit\">Показать</button></p></form>",
        p.filter.inputs(&statuses, p.organizations),
        select("sort", "Порядок", p.sort, &sorts)
    );
    if p.rows.is_empty() {
        b.push_str("<p>Ничего не найдено.</p>");
        return b;
    }
    b.push_str(
        "<div class=\"scroll\"><table><thead><tr><th>Подан</th><th>Организация</th><th class=\"num\">Вид</th>\
         <th>localUid</th><th>Статус</th><th>Ошибка и что делать</th><th class=\"num\">Попыток</th></tr></thead><tbody>",
    );
    for r in p.rows {
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=\"org-cell\">{}</td><td class=\"num\">{}</td><td><a href=\"/ops/submissions/{}\">{}</a></td>\
             <td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            time(r.created_at, p.offset),
            organization(r.organization.as_str(), p.names.of(r.organization.as_str())),
            r.kind,
            r.id,
            esc(&r.local_uid),
            status_html(r.status),
            first_error(&r.errors),
            r.attempts
        );
    }
    b.push_str("</tbody></table></div>");
    if let Some(c) = &p.next_cursor {
        let q = p.filter.query();
        let sep = if q.is_empty() { "" } else { "&" };
        let _ = write!(
            b,
            "<p class=\"pager\"><a href=\"/ops/failed?{q}{sep}sort={}&amp;cursor={}\">Следующая страница →</a></p>",
            url_value(p.sort),
            url_value(c)
        );
    }
    b
}

pub struct DetailPage<'a> {
    pub record: &'a SubmissionRecord,
    /// The organisation's FRMO name, if the copy knows it.
    pub organization_name: Option<&'a str>,
    pub events: &'a [Event],
    pub messages: &'a [String],
    pub show_personal: bool,
    pub csrf: &'a str,
    pub done: Option<&'a str>,
    pub mappings: &'a Mappings,
    pub offset: FixedOffset,
    pub retryable: bool,
    pub cancellable: bool,
}

pub fn submission(p: &DetailPage<'_>) -> String {
    let r = p.record;
    let mut b = String::new();
    if let Some(done) = p.done {
        b.push_str(&notice("ok", done));
    }
    let t = |x: Option<DateTime<Utc>>| x.map(|x| time(x, p.offset)).unwrap_or_else(|| "—".into());
    let kind_name = p.mappings.kind(r.kind).map(|k| k.name.clone()).unwrap_or_default();
    let _ = write!(
        b,
        "<dl class=\"meta\"><dt>Статус</dt><dd>{}</dd><dt>Идентификатор</dt><dd>{}</dd>\
         <dt>Организация</dt><dd>{}</dd><dt>Вид</dt><dd>{} {}</dd><dt>localUid</dt><dd>{}</dd>\
         <dt>emdrId</dt><dd>{}</dd><dt>Зарегистрирован</dt><dd>{}</dd><dt>Подан</dt><dd>{}</dd>\
         <dt>Изменён</dt><dd>{}</dd><dt>Отправок (с начала расписания)</dt><dd>{}</dd><dt>Следующая попытка</dt><dd>{}</dd>\
         <dt>Размер, контрольная сумма</dt><dd>{} байт, CRC-32 {}</dd></dl>",
        status_html(r.status),
        r.id,
        organization_inline(r.organization.as_str(), p.organization_name),
        r.kind,
        esc(&kind_name),
        esc(&r.local_uid),
        esc(r.emdr_id.as_deref().unwrap_or("—")),
        if r.registered_at_by_gateway {
            format!("{} (время шлюза: РЭМД не сообщил время регистрации)", t(r.registered_at))
        } else {
            t(r.registered_at)
        },
        t(Some(r.created_at)),
        t(Some(r.updated_at)),
        r.attempts,
        t(r.next_attempt_at),
        r.byte_size,
        r.checksum,
    );
    b.push_str("<h2>Пациент</h2>");
    if p.show_personal {
        let pt = &r.request.patient;
        let _ = write!(
            b,
            "<dl class=\"meta\"><dt>ФИО</dt><dd>{} {} {}</dd><dt>Дата рождения</dt><dd>{}</dd><dt>СНИЛС</dt><dd>{}</dd>\
             <dt>Идентификатор в МИС</dt><dd>{}</dd></dl><p class=\"hint\">Просмотр записан в журнал действий.</p>",
            esc(pt.surname.expose()),
            esc(pt.name.expose()),
            esc(pt.patr_name.as_ref().map(|p| p.expose().as_str()).unwrap_or("")),
            pt.birth_date.expose().format("%d.%m.%Y"),
            esc(&pt.snils.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_else(|| "—".into())),
            esc(&pt.local_id)
        );
    } else {
        let _ = write!(
            b,
            "<p>Данные пациента скрыты.</p><form method=\"post\" action=\"/ops/submissions/{}/personal\">{}\
             <button type=\"submit\" class=\"secondary\">Показать данные пациента</button> \
             <small class=\"hint\">просмотр записывается в журнал</small></form>",
            r.id,
            csrf_field(p.csrf)
        );
    }
    b.push_str("<h2>Ошибки</h2>");
    if r.errors.is_empty() {
        b.push_str("<p>Нет.</p>");
    } else {
        b.push_str(
            "<div class=\"scroll\"><table><thead><tr><th>Код</th><th>Что делать</th><th>Подсказка</th>\
                    <th>Сообщение РЭМД</th></tr></thead><tbody>",
        );
        for e in &r.errors {
            let _ = write!(
                b,
                "<tr><td><strong>{}</strong></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.code),
                disposition_ru(e.disposition),
                esc(&e.hint_ru),
                esc(&e.message)
            );
        }
        b.push_str("</tbody></table></div>");
    }
    if !r.warnings.is_empty() {
        // What intake accepted the document with: the REMD code it may draw is the lead.
        b.push_str(
            "<h2>Предупреждения при приёме</h2><div class=\"scroll\"><table><thead><tr><th>Правило</th>\
             <th>Код РЭМД</th><th>Где</th><th>Что</th></tr></thead><tbody>",
        );
        for w in &r.warnings {
            let _ = write!(
                b,
                "<tr><td>{}</td><td><strong>{}</strong></td><td><code>{}</code></td><td>{}</td></tr>",
                esc(&w.rule),
                esc(&w.remd_code),
                esc(&w.path),
                esc(&w.message)
            );
        }
        b.push_str("</tbody></table></div>");
    }
    b.push_str("<div class=\"actions\">");
    if p.retryable {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/ops/submissions/{}/retry\">{}<h2>Отправить повторно</h2>\
             <p class=\"field\"><label for=\"retry-comment\">Комментарий (что исправлено)</label>\
             <textarea id=\"retry-comment\" name=\"comment\" maxlength=\"1000\"></textarea></p>\
             <p><button type=\"submit\">Отправить повторно</button></p></form>",
            r.id,
            csrf_field(p.csrf)
        );
    }
    if p.cancellable {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/ops/submissions/{}/cancel\">{}<h2>Отменить</h2>\
             <p class=\"field\"><label for=\"cancel-comment\">Комментарий (почему)</label>\
             <textarea id=\"cancel-comment\" name=\"comment\" maxlength=\"1000\"></textarea></p>\
             <p><button type=\"submit\" class=\"danger\">Отменить — больше не отправлять</button></p></form>",
            r.id,
            csrf_field(p.csrf)
        );
    }
    let _ = write!(
        b,
        "<form method=\"post\" action=\"/ops/submissions/{}/document\">{}<h2>Документ</h2>\
         <p>Сохранённые байты документа, в точности как подписаны.</p>\
         <p><button type=\"submit\" class=\"secondary\">Скачать документ</button></p></form></div>",
        r.id,
        csrf_field(p.csrf)
    );
    b.push_str(
        "<h2>История</h2><div class=\"scroll\"><table><thead><tr><th>Время</th><th>Статус</th><th>Кто</th>\
                <th>Событие</th></tr></thead><tbody>",
    );
    for e in p.events {
        let actor = match e.actor.as_str() {
            "relay" => "шлюз (отправка)".to_owned(),
            "remd" => "РЭМД".to_owned(),
            "watchdog" => "шлюз (контроль результата)".to_owned(),
            other => other.to_owned(),
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            time(e.at, p.offset),
            status_html(e.status),
            esc(&actor),
            esc(&e.detail)
        );
    }
    b.push_str("</tbody></table></div>");
    if !p.messages.is_empty() {
        b.push_str("<h2>Отправленные сообщения (wsa:MessageID)</h2><ol>");
        for m in p.messages {
            let _ = write!(b, "<li><code>{}</code></li>", esc(m));
        }
        b.push_str("</ol>");
    }
    b
}

/// A bulk run's documents per status now, and their ids.
pub type Progress = (Vec<(Status, u64)>, Vec<uuid::Uuid>);

pub struct BulkPage<'a> {
    pub filter: &'a FilterForm,
    pub csrf: &'a str,
    pub problems: &'a [String],
    /// After a dry run: the count to confirm.
    pub dry_run: Option<BulkOutcome>,
    /// After a run.
    pub done: Option<BulkOutcome>,
    /// The run's documents per status now, and their ids (progress).
    pub progress: Option<Progress>,
    pub bulk_max: u32,
}

pub fn bulk(p: &BulkPage<'_>) -> String {
    let mut b = String::new();
    for problem in p.problems {
        b.push_str(&notice("error", problem));
    }
    let statuses = vec![
        (String::new(), "failed, retry_wait и unknown".to_owned()),
        ("failed".to_owned(), status_ru(Status::Failed).to_owned()),
        ("retry_wait".to_owned(), status_ru(Status::RetryWait).to_owned()),
        ("unknown".to_owned(), status_ru(Status::Unknown).to_owned()),
    ];
    if let Some(done) = &p.done {
        let left = done.matched.saturating_sub(done.requeued);
        b.push_str(&notice(
            "ok",
            &format!("Поставлено в очередь: {} из {}. Осталось: {left}.", done.requeued, done.matched),
        ));
        if done.capped && done.requeued > 0 {
            let _ = write!(
                b,
                "<form method=\"post\" action=\"/ops/bulk\">{}{}<input type=\"hidden\" name=\"step\" value=\"run\">\
                 <p class=\"field\"><label for=\"comment\">Комментарий</label><input id=\"comment\" name=\"comment\" type=\"text\"></p>\
                 <p><button type=\"submit\">Продолжить: следующие {}</button></p></form>",
                csrf_field(p.csrf),
                p.filter.hidden(),
                p.bulk_max.min(left as u32)
            );
        }
    }
    if let Some((progress, ids)) = &p.progress {
        let _ = write!(
            b,
            "<h2>Ход отправки</h2><p>Перезапущенные документы ({}) сейчас; шлюз отправляет их в пределах квоты РЭМД:</p><ul>",
            ids.len()
        );
        for (s, n) in progress {
            let _ = write!(b, "<li>{}: {n}</li>", status_html(*s));
        }
        let ids = ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let _ = write!(
            b,
            "</ul><form method=\"post\" action=\"/ops/bulk\">{}{}<input type=\"hidden\" name=\"step\" value=\"progress\">\
             <input type=\"hidden\" name=\"ids\" value=\"{}\"><button type=\"submit\" class=\"secondary\">Обновить ход</button></form>",
            csrf_field(p.csrf),
            p.filter.hidden(),
            esc(&ids)
        );
    }
    if let Some(dry) = &p.dry_run {
        let will = dry.matched.min(u64::from(p.bulk_max));
        if dry.matched == 0 {
            b.push_str(&notice("info", "Под фильтр не попал ни один документ, который можно перезапустить."));
        } else {
            let _ = write!(
                b,
                "{}<form method=\"post\" action=\"/ops/bulk\">{}{}<input type=\"hidden\" name=\"step\" value=\"run\">\
                 <p class=\"field\"><label for=\"comment\">Комментарий (что исправлено)</label>\
                 <input id=\"comment\" name=\"comment\" type=\"text\" maxlength=\"1000\"></p>\
                 <p><button type=\"submit\">Подтвердить: перезапустить {will}</button></p></form>",
                notice(
                    "info",
                    &format!(
                        "Под фильтр попадает {} документ(ов); за один раз перезапускается не больше {}. \
                         Отправка идёт в пределах квоты РЭМД.",
                        dry.matched, p.bulk_max
                    )
                ),
                csrf_field(p.csrf),
                p.filter.hidden()
            );
        }
    }
    let _ = write!(
        b,
        "<h2>Фильтр</h2><form class=\"filters\" method=\"post\" action=\"/ops/bulk\">{}{}\
         <input type=\"hidden\" name=\"step\" value=\"dry_run\">\
         <p class=\"field\"><button type=\"submit\">Проверить: сколько будет перезапущено</button></p></form>",
        csrf_field(p.csrf),
        p.filter.inputs(&statuses, &[])
    );
    b
}

pub fn report(r: &Report, week: &str, mappings: &Mappings, offset: FixedOffset) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<form class=\"filters\" method=\"get\" action=\"/ops/report\">{}\
         <p class=\"field\"><button type=\"submit\">Показать</button></p></form>\
         <p>Документы, поданные с {} по {} (время региона). \
         <a href=\"/ops/report.csv?week={}\" download>Скачать CSV</a> (UTF-8, разделитель «;»).</p>",
        input("week", "Неделя (любой её день)", week, "date", ""),
        time(r.from, offset),
        time(r.to, offset),
        url_value(week)
    );
    b.push_str(
        "<div class=\"scroll\"><table class=\"report\"><thead><tr><th>Организация</th><th>Вид</th><th class=\"num\">Подано</th>\
         <th class=\"num\">Зарегистрировано</th><th class=\"num\">С ошибкой</th><th class=\"num\">В обработке</th>\
         <th class=\"num\">Отменено</th><th class=\"num\">Успешно</th><th>Частые ошибки</th></tr></thead><tbody>",
    );
    let row = |b: &mut String, org: String, kind: String, r: &crate::ops::report::ReportRow| {
        let codes: Vec<String> = r
            .top_error_codes
            .iter()
            .map(|c| {
                let hint = mappings.any_code(&c.code).map(|h| h.hint_ru.as_str()).unwrap_or("");
                format!("<span title=\"{}\">{}</span> ({})", esc(hint), esc(&c.code), c.count)
            })
            .collect();
        let _ = write!(
            b,
            "<tr><td class=\"org-cell\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"codes\">{}</td></tr>",
            org,
            kind,
            r.submitted,
            r.registered,
            r.failed,
            r.pending,
            r.cancelled,
            percent(r.success_rate),
            codes.join(", ")
        );
    };
    for r in &r.rows {
        let name = mappings.kind(r.kind).map(|k| k.name.clone()).unwrap_or_default();
        let org = organization(&r.organization, r.organization_name.as_deref());
        // The full name on hover, where FRMO gives one beside the short.
        let org = match &r.organization_full_name {
            Some(full) if Some(full) != r.organization_name.as_ref() => {
                format!("<span title=\"{}\">{org}</span>", esc(full))
            }
            _ => org,
        };
        row(&mut b, org, format!("{} <small class=\"hint\">{}</small>", r.kind, esc(&name)), r);
    }
    row(&mut b, "Итого".to_owned(), String::new(), &r.total);
    b.push_str("</tbody></table></div>");
    b
}

pub fn audit(items: &[AuditEntry], names: &Names, next_cursor: Option<&str>, offset: FixedOffset) -> String {
    let mut b = String::from(
        "<div class=\"scroll\"><table><thead><tr><th>Время</th><th>Кто</th><th>Действие</th><th>Организация</th>\
         <th>Документ или фильтр</th><th>Комментарий</th><th class=\"num\">Сколько</th></tr></thead><tbody>",
    );
    for e in items {
        let target = match (&e.submission_id, &e.filter) {
            (Some(id), _) => format!("<a href=\"/ops/submissions/{id}\">{id}</a>"),
            (None, Some(f)) => format!("<code>{}</code>", esc(&f.to_string())),
            (None, None) => "—".into(),
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"org-cell\">{}</td><td>{target}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            time(e.at, offset),
            esc(&e.actor_name),
            e.action.title_ru(),
            e.organization.as_deref().map(|o| organization(o, names.of(o))).unwrap_or_else(|| "—".into()),
            esc(e.comment.as_deref().unwrap_or("")),
            e.count
        );
    }
    b.push_str("</tbody></table></div>");
    if items.is_empty() {
        b.push_str("<p>Записей нет.</p>");
    }
    if let Some(c) = next_cursor {
        let _ =
            write!(b, "<p class=\"pager\"><a href=\"/ops/audit?cursor={}\">Следующая страница →</a></p>", url_value(c));
    }
    b
}
