//! Writing HTML safely: every value from the database or the request goes through
//! [`esc`]; pages are assembled from strings the console writes itself.

use std::fmt::Write;

/// `s` with `& < > " '` escaped, for text and attribute values alike.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` percent-encoded for a query value.
pub fn url_value(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// What the navigation marks as the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Failed,
    Bulk,
    Report,
    Audit,
    None,
}

/// The whole page: head, navigation (with the sign-out form when `csrf` is given), `body`.
pub fn page(title: &str, nav: Nav, operator: Option<(&str, &str)>, body: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"ru\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} — консоль шлюза ЕГИСЗ</title>\
         <link rel=\"stylesheet\" href=\"/ops/static/console.css\"></head><body>",
        esc(title)
    );
    out.push_str("<header class=\"top\"><a class=\"brand\" href=\"/ops/\">Шлюз ЕГИСЗ · консоль</a>");
    if let Some((name, csrf)) = operator {
        out.push_str("<nav aria-label=\"Разделы\"><ul>");
        for (item, href, label) in [
            (Nav::Dashboard, "/ops/", "Сводка"),
            (Nav::Failed, "/ops/failed", "Ошибки"),
            (Nav::Bulk, "/ops/bulk", "Перезапуск"),
            (Nav::Report, "/ops/report", "Отчёт"),
            (Nav::Audit, "/ops/audit", "Журнал"),
        ] {
            let current = if item == nav { " aria-current=\"page\"" } else { "" };
            let _ = write!(out, "<li><a href=\"{href}\"{current}>{label}</a></li>");
        }
        out.push_str("</ul></nav>");
        let _ = write!(
            out,
            "<form class=\"signout\" method=\"post\" action=\"/ops/logout\">{}\
             <span class=\"who\">{}</span> <button type=\"submit\">Выйти</button></form>",
            csrf_field(csrf),
            esc(name)
        );
    }
    out.push_str("</header><main id=\"main\">");
    let _ = write!(out, "<h1>{}</h1>", esc(title));
    out.push_str(body);
    out.push_str("</main></body></html>\n");
    out
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(token: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(token))
}

/// A labelled text input.
pub fn input(name: &str, label: &str, value: &str, kind: &str, hint: &str) -> String {
    let hint_html =
        if hint.is_empty() { String::new() } else { format!("<small id=\"{name}-hint\">{}</small>", esc(hint)) };
    let described = if hint.is_empty() { String::new() } else { format!(" aria-describedby=\"{name}-hint\"") };
    format!(
        "<p class=\"field\"><label for=\"{name}\">{}</label>\
         <input id=\"{name}\" name=\"{name}\" type=\"{kind}\" value=\"{}\"{described}>{hint_html}</p>",
        esc(label),
        esc(value)
    )
}

/// An organisation as people read it: its FRMO name over its OID; an OID the FRMO copy does
/// not know, with a mark that says so.
pub fn organization(oid: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("<span class=\"org\">{}</span><br><small class=\"oid\">{}</small>", esc(name), esc(oid)),
        None => format!(
            "<span class=\"oid\">{}</span> <small class=\"unknown\" title=\"Организации с этим OID нет в копии ФРМО\">нет в ФРМО</small>",
            esc(oid)
        ),
    }
}

/// A labelled select; `options` are `(value, label)`, the first usually "any".
pub fn select(name: &str, label: &str, value: &str, options: &[(String, String)]) -> String {
    let mut out = format!(
        "<p class=\"field\"><label for=\"{name}\">{}</label><select id=\"{name}\" name=\"{name}\">",
        esc(label)
    );
    for (v, l) in options {
        let selected = if v == value { " selected" } else { "" };
        let _ = write!(out, "<option value=\"{}\"{selected}>{}</option>", esc(v), esc(l));
    }
    out.push_str("</select></p>");
    out
}

/// A message box (`kind`: `info`, `ok`, `error`).
pub fn notice(kind: &str, text: &str) -> String {
    let role = if kind == "error" { "alert" } else { "status" };
    format!("<p class=\"notice {kind}\" role=\"{role}\">{}</p>", esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisations_by_name_and_unknown_ones_marked() {
        let known = organization("1.2.3", Some("ГБУЗ «<ККД>»"));
        assert!(
            known.contains("ГБУЗ «&lt;ККД&gt;»") && known.contains("<small class=\"oid\">1.2.3</small>"),
            "{known}"
        );
        let unknown = organization("1.2.4", None);
        assert!(unknown.contains("1.2.4") && unknown.contains("нет в ФРМО"), "{unknown}");
    }

    #[test]
    fn values_are_escaped() {
        assert_eq!(esc("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        let p = page("<script>", Nav::None, Some(("\"><img>", "t\"")), "");
        assert!(!p.contains("<script>") && !p.contains("\"><img>"), "{p}");
        assert!(p.contains("lang=\"ru\""));
    }
}
