//! The Ministry of Digital Development's list of accredited CAs (the "TSL" its portal
//! publishes as XML) **[model]**: its structure is modelled from public client code that
//! reads it (no schema is published with it), and every element name the gateway reads is
//! in this module and nowhere else:
//!
//! ```text
//! АккредитованныеУдостоверяющиеЦентры
//!   Версия, Дата
//!   УдостоверяющийЦентр*
//!     Название, КраткоеНазвание
//!     СтатусАккредитации/Статус            "Действует" | "Прекращена" | "Аннулирована"
//!     ПрограммноАппаратныеКомплексы/ПрограммноАппаратныйКомплекс*
//!       КлючиУполномоченныхЛиц/Ключ*
//!         АдресаСписковОтзыва/Адрес*       CRL addresses of the key
//!         Сертификаты/ДанныеСертификата*/Данные   the CA certificate, base64 DER
//! ```
//!
//! Only the certificates of CAs whose accreditation is in force ("Действует") are trusted.
//! Parsing is streamed and bounded: the whole list, each text, the number of certificates.
//! Pure.

use base64::Engine;
use quick_xml::events::Event;

/// The largest list read (the federal list is a few tens of megabytes).
pub const MAX_TSL_BYTES: usize = 128 * 1024 * 1024;
/// The most certificates taken from one list.
pub const MAX_CERTIFICATES: usize = 50_000;
/// The longest text of one element (a certificate in base64 included).
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// The most CRL addresses kept per CA.
pub const MAX_CRL_URLS_PER_CA: usize = 16;
/// The status of an accreditation in force.
pub const IN_FORCE: &str = "Действует";

const ROOT: &str = "АккредитованныеУдостоверяющиеЦентры";
const CA: &str = "УдостоверяющийЦентр";
const PATH_VERSION: &[&str] = &[ROOT, "Версия"];
const PATH_DATE: &[&str] = &[ROOT, "Дата"];
const PATH_NAME: &[&str] = &[ROOT, CA, "Название"];
const PATH_SHORT_NAME: &[&str] = &[ROOT, CA, "КраткоеНазвание"];
const PATH_STATUS: &[&str] = &[ROOT, CA, "СтатусАккредитации", "Статус"];
const KEY: &[&str] =
    &[ROOT, CA, "ПрограммноАппаратныеКомплексы", "ПрограммноАппаратныйКомплекс", "КлючиУполномоченныхЛиц", "Ключ"];
const KEY_CRL: &[&str] = &["АдресаСписковОтзыва", "Адрес"];
const KEY_CERTIFICATE: &[&str] = &["Сертификаты", "ДанныеСертификата", "Данные"];

/// One CA of the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedCa {
    pub name: String,
    pub status: String,
    /// Its certificates, DER.
    pub certificates: Vec<Vec<u8>>,
    /// The CRL addresses its keys name.
    pub crl_urls: Vec<String>,
}

impl ListedCa {
    pub fn accredited(&self) -> bool {
        self.status.trim() == IN_FORCE
    }
}

/// The list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedList {
    pub version: Option<String>,
    pub date: Option<String>,
    pub cas: Vec<ListedCa>,
}

impl TrustedList {
    /// The certificates of the CAs in force, each with the CRL addresses of its CA.
    pub fn accredited_certificates(&self) -> impl Iterator<Item = (&[u8], &[String])> {
        self.cas
            .iter()
            .filter(|c| c.accredited())
            .flat_map(|c| c.certificates.iter().map(|d| (d.as_slice(), c.crl_urls.as_slice())))
    }
}

fn at(stack: &[String], path: &[&str]) -> bool {
    stack.len() == path.len() && stack.iter().zip(path).all(|(a, b)| a == b)
}

fn under_key(stack: &[String], rest: &[&str]) -> bool {
    stack.len() == KEY.len() + rest.len() && at(&stack[..KEY.len()], KEY) && at(&stack[KEY.len()..], rest)
}

fn push_text(text: &mut String, piece: &str, stack: &[String]) -> Result<(), String> {
    if text.len() + piece.len() > MAX_TEXT_BYTES {
        return Err(format!("a text longer than {MAX_TEXT_BYTES} bytes at {}", stack.join("/")));
    }
    text.push_str(piece);
    Ok(())
}

/// Reads the list. An error names what is wrong (in English, for the operator's log).
pub fn parse(xml: &[u8]) -> Result<TrustedList, String> {
    if xml.len() > MAX_TSL_BYTES {
        return Err(format!("the list is larger than {MAX_TSL_BYTES} bytes"));
    }
    let mut reader = quick_xml::Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut list = TrustedList::default();
    let mut certificates = 0usize;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let name = e.local_name().as_ref().to_owned();
                if stack.is_empty() && name != ROOT {
                    return Err(format!("the root element is {name}, not {ROOT}"));
                }
                if stack.len() >= 16 {
                    return Err("elements nested deeper than 16".into());
                }
                stack.push(name);
                if at(&stack, &[ROOT, CA]) {
                    list.cas.push(ListedCa::default());
                }
                text.clear();
            }
            Ok(Event::Text(t)) => push_text(&mut text, &t.xml10_content(), &stack)?,
            Ok(Event::CData(t)) => push_text(&mut text, &t.xml10_content(), &stack)?,
            Ok(Event::GeneralRef(r)) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_xml_entity(&r).map(str::to_owned).unwrap_or_default(),
                };
                push_text(&mut text, &resolved, &stack)?;
            }
            Ok(Event::End(_)) => {
                let value = std::mem::take(&mut text).trim().to_owned();
                let ca = list.cas.last_mut();
                if at(&stack, PATH_VERSION) {
                    list.version = Some(value);
                } else if at(&stack, PATH_DATE) {
                    list.date = Some(value);
                } else if let Some(ca) = ca {
                    if at(&stack, PATH_NAME) || (at(&stack, PATH_SHORT_NAME) && ca.name.is_empty()) {
                        ca.name = value;
                    } else if at(&stack, PATH_STATUS) {
                        ca.status = value;
                    } else if under_key(&stack, KEY_CRL)
                        && (value.starts_with("http://") || value.starts_with("https://"))
                    {
                        if ca.crl_urls.len() < MAX_CRL_URLS_PER_CA && !ca.crl_urls.contains(&value) {
                            ca.crl_urls.push(value);
                        }
                    } else if under_key(&stack, KEY_CERTIFICATE) {
                        certificates += 1;
                        if certificates > MAX_CERTIFICATES {
                            return Err(format!("more than {MAX_CERTIFICATES} certificates"));
                        }
                        let compact: String = value.split_whitespace().collect();
                        let der = base64::engine::general_purpose::STANDARD
                            .decode(compact)
                            .map_err(|e| format!("a certificate of {:?} is not base64: {e}", ca.name))?;
                        ca.certificates.push(der);
                    }
                }
                stack.pop();
            }
            Ok(Event::Empty(e)) if stack.is_empty() => {
                let name = e.local_name().as_ref().to_owned();
                return Err(format!("the root element is {name}, not {ROOT}"));
            }
            Ok(Event::Eof) => break,
            Ok(Event::DocType(_)) => return Err("a DOCTYPE is not accepted".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("not well-formed XML at byte {}: {e}", reader.buffer_position())),
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(format!("the list is cut short inside {}", stack.join("/")));
    }
    if list.cas.is_empty() {
        return Err(format!("no {CA} in the list"));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(body: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><{ROOT}><Версия>7</Версия><Дата>2026-12-01T00:00:00+03:00</Дата>{body}</{ROOT}>"
        )
    }

    fn ca(name: &str, status: &str, cert_b64: &str, crl: &str) -> String {
        format!(
            "<{CA}><Название>{name}</Название><СтатусАккредитации><Статус>{status}</Статус></СтатусАккредитации>\
             <ПрограммноАппаратныеКомплексы><ПрограммноАппаратныйКомплекс><Псевдоним>p</Псевдоним><КлючиУполномоченныхЛиц><Ключ>\
             <ИдентификаторКлюча>ab</ИдентификаторКлюча><АдресаСписковОтзыва><Адрес>{crl}</Адрес></АдресаСписковОтзыва>\
             <Сертификаты><ДанныеСертификата><Отпечаток>x</Отпечаток><Данные>{cert_b64}</Данные></ДанныеСертификата></Сертификаты>\
             </Ключ></КлючиУполномоченныхЛиц></ПрограммноАппаратныйКомплекс></ПрограммноАппаратныеКомплексы></{CA}>"
        )
    }

    #[test]
    fn cas_their_certificates_and_crl_addresses() {
        let xml = list(
            &(ca("УЦ 1", "Действует", "AQID", "http://ca1/list.crl")
                + &ca("УЦ 2", "Прекращена", "BAUG", "http://ca2/x.crl")),
        );
        let l = parse(xml.as_bytes()).unwrap();
        assert_eq!(l.version.as_deref(), Some("7"));
        assert_eq!(l.cas.len(), 2);
        assert_eq!(l.cas[0].certificates, [vec![1, 2, 3]]);
        assert_eq!(l.cas[0].crl_urls, ["http://ca1/list.crl"]);
        let accredited: Vec<_> = l.accredited_certificates().collect();
        assert_eq!(accredited.len(), 1, "the terminated CA is not trusted");
        assert_eq!(accredited[0].0, [1, 2, 3]);
    }

    #[test]
    fn what_is_refused() {
        assert!(parse(b"<Other/>").unwrap_err().contains("root element"));
        assert!(parse(list("").as_bytes()).unwrap_err().contains("no "));
        assert!(parse(list(&ca("x", "Действует", "!!", "http://a")).as_bytes()).unwrap_err().contains("base64"));
        assert!(parse(b"<!DOCTYPE x><x/>").is_err());
        let long = "A".repeat(MAX_TEXT_BYTES + 4);
        assert!(parse(list(&ca("x", "Действует", &long, "http://a")).as_bytes()).unwrap_err().contains("longer"));
        assert!(parse(format!("<{ROOT}><{CA}>").as_bytes()).is_err(), "truncated");
    }
}
