//! XML Schema validation through the system's libxml2, on a pool of threads of its own.
//!
//! libxml2's compiled schemas are not `Send` in the `libxml` crate, so each pool thread
//! compiles the schemas it needs once (keyed by kind and package hash) and keeps them;
//! a caller on a blocking thread sends a document and waits for the answer. Documents are
//! parsed with no network, no recovery and libxml2's own limits; the gateway's bounded
//! parser has already refused DTDs and over-limit documents before a document gets here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use libxml::parser::{Parser, ParserOptions};
use libxml::schemas::{SchemaParserContext, SchemaValidationContext};

/// Most errors kept from one validation.
pub const MAX_ERRORS: usize = 100;

/// One error libxml2 reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XsdError {
    pub line: Option<u32>,
    /// libxml2's message, namespaces in braces removed for the HL7 one.
    pub message: String,
}

fn messages(errors: Vec<libxml::error::StructuredError>) -> Vec<XsdError> {
    errors
        .into_iter()
        .take(MAX_ERRORS)
        .map(|e| XsdError {
            line: e.line.and_then(|l| u32::try_from(l).ok()).filter(|l| *l > 0),
            message: e
                .message
                .unwrap_or_else(|| "ошибка без описания".into())
                .replace("{urn:hl7-org:v3}", "")
                .trim()
                .to_owned(),
        })
        .collect()
}

fn compile_context(entry: &Path) -> Result<SchemaValidationContext, String> {
    let path = entry.to_str().ok_or("путь к CDA.xsd не в UTF-8")?;
    if path.contains('\0') || !entry.is_file() {
        return Err(format!("{}: нет файла", entry.display()));
    }
    let mut parser = SchemaParserContext::from_file(path);
    SchemaValidationContext::from_parser(&mut parser).map_err(|errors| {
        let list: Vec<String> = messages(errors)
            .into_iter()
            .take(5)
            .map(|e| match e.line {
                Some(l) => format!("строка {l}: {}", e.message),
                None => e.message,
            })
            .collect();
        list.join("; ")
    })
}

struct Job {
    kind: u32,
    sha256: String,
    entry: PathBuf,
    /// The document to validate; `None`: only compile the schema (and keep it).
    document: Option<Arc<Vec<u8>>>,
    reply: mpsc::Sender<Result<Vec<XsdError>, String>>,
}

/// Threads that validate documents against the packages' schemas.
#[derive(Clone)]
pub struct XsdPool {
    jobs: mpsc::SyncSender<Job>,
    threads: usize,
}

impl std::fmt::Debug for XsdPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XsdPool").field("threads", &self.threads).finish()
    }
}

impl XsdPool {
    /// Starts `threads` threads (at least one). They end when the last handle is dropped.
    pub fn start(threads: usize) -> XsdPool {
        let threads = threads.max(1);
        let (jobs, rx) = mpsc::sync_channel::<Job>(threads * 4);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("xsd-{i}"))
                .spawn(move || worker(&rx))
                .expect("a validation thread starts");
        }
        XsdPool { jobs, threads }
    }

    /// Validates `document` against the schema of the package (`kind`, `sha256`) whose entry
    /// point is `entry`. Blocks: call it from a blocking thread.
    pub fn validate(
        &self,
        kind: u32,
        sha256: &str,
        entry: &Path,
        document: Arc<Vec<u8>>,
    ) -> Result<Vec<XsdError>, String> {
        self.run(kind, sha256, entry, Some(document))
    }

    /// Compiles the schema of a package on one of the pool's threads, which keeps it: the
    /// check a package passes before it is put in force, without a copy compiled only to be
    /// thrown away.
    pub fn compile(&self, kind: u32, sha256: &str, entry: &Path) -> Result<(), String> {
        self.run(kind, sha256, entry, None).map(|_| ())
    }

    fn run(
        &self,
        kind: u32,
        sha256: &str,
        entry: &Path,
        document: Option<Arc<Vec<u8>>>,
    ) -> Result<Vec<XsdError>, String> {
        let (reply, answer) = mpsc::channel();
        let job = Job { kind, sha256: sha256.to_owned(), entry: entry.to_owned(), document, reply };
        self.jobs.send(job).map_err(|_| "проверка XSD остановлена".to_owned())?;
        answer.recv().map_err(|_| "проверка XSD прервалась".to_owned())?
    }
}

fn worker(rx: &Mutex<mpsc::Receiver<Job>>) {
    // The schemas this thread has compiled: kind → (package hash, context).
    let mut compiled: HashMap<u32, (String, SchemaValidationContext)> = HashMap::new();
    let parser = Parser::default();
    loop {
        let job = {
            let Ok(rx) = rx.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        // A panic inside libxml2's wrapper must not take the thread (and, thread by thread,
        // the whole pool) with it: the job fails, the thread's schemas are dropped and
        // compiled again on demand.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut compiled, &parser, &job)))
            .unwrap_or_else(|_| {
                compiled.clear();
                Err("проверка XSD завершилась внутренней ошибкой".to_owned())
            });
        let _ = job.reply.send(result);
    }
}

fn run(
    compiled: &mut HashMap<u32, (String, SchemaValidationContext)>,
    parser: &Parser,
    job: &Job,
) -> Result<Vec<XsdError>, String> {
    if compiled.get(&job.kind).is_none_or(|(sha, _)| *sha != job.sha256) {
        // The schema in hand stays until its successor compiles.
        let context = compile_context(&job.entry)?;
        compiled.insert(job.kind, (job.sha256.clone(), context));
    }
    let (_, context) = compiled.get_mut(&job.kind).expect("compiled above");
    let Some(document) = &job.document else { return Ok(Vec::new()) };
    let options =
        ParserOptions { recover: false, no_net: true, no_error: true, no_warning: true, ..Default::default() };
    let doc = match parser.parse_string_with_options(document.as_slice(), options) {
        Ok(doc) => doc,
        // What libxml2 cannot read (a control character the gateway's own parser let pass,
        // say), REMD's parser will not read either: a finding, not "not checked".
        Err(e) => {
            return Ok(vec![XsdError {
                line: None,
                message: format!("документ не читается как XML 1.0 ({e:?}); РЭМД его не примет"),
            }]);
        }
    };
    Ok(match context.validate_document(&doc) {
        Ok(()) => Vec::new(),
        Err(errors) => messages(errors),
    })
}

/// The elements libxml2 means by each error's line and the name in its message, found in
/// one pass over the document: see [`locate`].
pub fn locate_all(document: &[u8], wanted: &[(u32, Option<&str>)]) -> Vec<Option<String>> {
    let mut out = vec![None; wanted.len()];
    let Some(last) = wanted.iter().map(|w| w.0).max() else { return out };
    let mut first_on_line: Vec<Option<String>> = vec![None; wanted.len()];
    walk_start_tags(document, last, &mut |begin, end, name, path| {
        for (i, (line, local)) in wanted.iter().enumerate() {
            if out[i].is_none() && (begin..=end).contains(line) {
                if local.is_none_or(|l| l == name) {
                    out[i] = Some(path.to_owned());
                } else if first_on_line[i].is_none() {
                    first_on_line[i] = Some(path.to_owned());
                }
            }
        }
    });
    out.into_iter().zip(first_on_line).map(|(exact, first)| exact.or(first)).collect()
}

/// The element libxml2 means by a line and the name in its message: the location of the
/// start tag that spans `line` with that local name, as the schematron's locations are
/// written (`/ClinicalDocument[1]/recordTarget[1]`); the first element on the line
/// otherwise.
pub fn locate(document: &[u8], line: u32, local: Option<&str>) -> Option<String> {
    locate_all(document, &[(line, local)]).pop().flatten()
}

/// Calls `f(first line, last line, local name, path)` for every start tag up to line `until`.
fn walk_start_tags(document: &[u8], until: u32, f: &mut dyn FnMut(u32, u32, &str, &str)) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(document);
    // For each open element: its path, and its children's counts by name.
    let mut stack: Vec<(String, Vec<(String, u32)>)> = vec![(String::new(), Vec::new())];
    let mut line_at = 1u32;
    let mut counted = 0usize;
    loop {
        let start = (reader.buffer_position() as usize).min(document.len());
        let Ok(event) = reader.read_event() else { return };
        let end = (reader.buffer_position() as usize).min(document.len());
        line_at += document[counted..start].iter().filter(|&&b| b == b'\n').count() as u32;
        counted = start;
        let inner = document[start..end].iter().filter(|&&b| b == b'\n').count() as u32;
        if line_at > until {
            return;
        }
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.local_name().as_ref().to_owned();
                let Some((parent, counts)) = stack.last_mut() else { return };
                let n = match counts.iter_mut().find(|(c, _)| *c == name) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        counts.push((name.clone(), 1));
                        1
                    }
                };
                let path = format!("{parent}/{name}[{n}]");
                f(line_at, line_at + inner, &name, &path);
                if matches!(event, Event::Start(_)) {
                    stack.push((path, Vec::new()));
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof => return,
            _ => {}
        }
    }
}

/// The local name an error message is about: `Element 'recordTarget': …` (libxml2's
/// wording), HL7 namespace already removed; `None` for another namespace or no name.
pub fn element_of(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("Element '")?;
    let name = &rest[..rest.find('\'')?];
    let name = name.rsplit_once('}').map_or(name, |(_, l)| l);
    let name = name.split_once(", attribute").map_or(name, |(e, _)| e);
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_point_at_the_element() {
        let doc = b"<a>\n  <b/>\n  <b\n     x='1'/>\n  <c/>\n</a>";
        assert_eq!(locate(doc, 2, Some("b")).as_deref(), Some("/a[1]/b[1]"));
        assert_eq!(locate(doc, 4, Some("b")).as_deref(), Some("/a[1]/b[2]"));
        assert_eq!(locate(doc, 5, None).as_deref(), Some("/a[1]/c[1]"));
        assert_eq!(element_of("Element 'recordTarget': This element is not expected."), Some("recordTarget"));
        assert_eq!(element_of("Element '{urn:x}b', attribute 'q': not allowed."), Some("b"));
    }
}
