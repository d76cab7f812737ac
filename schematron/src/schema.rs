//! A schematron file compiled ([`Schema::compile`]) and run over a document
//! ([`Schema::validate`]).
//!
//! The ISO semantics the ministry's files rely on:
//! - every rule's `context` is an XSLT pattern: a relative one (`ClinicalDocument/code`)
//!   matches wherever it stands, as `//ClinicalDocument/code` would select; `current()` in
//!   its last step's predicates is the node being matched;
//! - within a pattern only the first rule (in the file's order) whose context matches a node
//!   fires for it; rules of other patterns still fire;
//! - an `assert` whose test is false is a failed assert, a `report` whose test is true a
//!   successful report, each at the location of the rule's context node;
//! - findings come in the order SchXslt emits them: by pattern in the file's order, then by
//!   the document order of the context nodes, then by the checks' order;
//! - unprefixed element names are in the document's namespace (`urn:hl7-org:v3` for SEMD),
//!   as though the default namespace were stripped before the run.
//!
//! A dynamic XPath error ends the run, as it ends Saxon's; so does the budget.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use quick_xml::events::Event;
use quick_xml::reader::NsReader;

use crate::tree::{Document, NameId, NodeId};
use crate::xpath::{self, Env, EvalError, Expr, Focus, Fuel, Func, Item, Names, Step};

const SCH_NS: &str = "http://purl.oclc.org/dsdl/schematron";

/// Bounds on a schematron file; a package is data that arrives later.
#[derive(Debug, Clone, Copy)]
pub struct CompileLimits {
    pub max_bytes: usize,
    pub max_rules: usize,
    pub max_checks: usize,
}

impl Default for CompileLimits {
    fn default() -> Self {
        // The largest of the ministry's 95 files is about 1 MB with 1,500 rules.
        Self { max_bytes: 16 * 1024 * 1024, max_rules: 100_000, max_checks: 500_000 }
    }
}

/// Why a schematron file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("схематрон не является корректным XML: {0}")]
    Xml(String),
    #[error("схематрон больше допустимого: {0}")]
    OverLimit(String),
    #[error("схематрон использует то, что не поддерживается: {0}")]
    Unsupported(String),
    #[error("ошибка в выражении «{expr}»: {reason}")]
    Expression { expr: String, reason: String },
}

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    FailedAssert,
    SuccessfulReport,
}

/// Most findings one run keeps; the rest are counted ([`Outcome::omitted`]).
pub const MAX_FINDINGS: usize = 1000;
/// The longest message and test a finding carries, in characters (a package is data).
const MAX_FINDING_TEXT: usize = 2000;

/// One failed assert or successful report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The message as written, whitespace normalised.
    pub message: String,
    /// The message's head, e.g. `У1-19` (absent when the message has none).
    pub code: Option<String>,
    /// The context node, as REMD prints it: `/ClinicalDocument[1]/recordTarget[1]`.
    pub location: String,
    /// The test, as written.
    pub test: String,
}

/// Why a run stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "stopped")]
pub enum Stopped {
    /// An XPath dynamic error, as Saxon would raise it.
    Error { code: String, message: String, context: String, test: Option<String> },
    /// The budget ran out.
    Exhausted,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    /// Findings beyond [`MAX_FINDINGS`], not kept.
    pub omitted: usize,
    pub stopped: Option<Stopped>,
    /// Budget units spent.
    pub spent: u64,
}

/// The budget of one run.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Evaluation units: a node visited by an axis, a call. A kind-119 document of 30 KB
    /// spends about 100,000.
    pub units: u64,
    pub deadline: Option<Instant>,
}

impl Default for Budget {
    fn default() -> Self {
        Self { units: 50_000_000, deadline: None }
    }
}

#[derive(Debug)]
struct Check {
    report: bool,
    test: Expr,
    test_src: String,
    message: String,
    code: Option<String>,
}

#[derive(Debug)]
struct Rule {
    pattern: usize,
    /// The context as a select expression from the document node.
    context: Expr,
    /// Rules whose contexts are written alike share this index: each is evaluated once
    /// per document (the ministry's files repeat contexts — `ClinicalDocument` opens a
    /// hundred patterns of kind 119).
    context_id: usize,
    context_src: String,
    checks: Vec<Check>,
}

/// A compiled schematron.
#[derive(Debug)]
pub struct Schema {
    names: Vec<(String, String)>,
    patterns: usize,
    rules: Vec<Rule>,
    regexes: xpath::regex::Cache,
    /// How many distinct contexts the rules have.
    contexts: usize,
}

/// Counts of what a schema holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub patterns: usize,
    pub rules: usize,
    pub asserts: usize,
    pub reports: usize,
    pub regexes: usize,
}

struct Interner<'a> {
    prefixes: &'a HashMap<String, String>,
    default_ns: &'a str,
    names: Vec<(String, String)>,
    index: HashMap<(String, String), u32>,
}

impl Names for Interner<'_> {
    fn namespace(&self, prefix: &str) -> Option<String> {
        match prefix {
            "xml" => Some("http://www.w3.org/XML/1998/namespace".into()),
            _ => self.prefixes.get(prefix).cloned(),
        }
    }

    fn default_element_namespace(&self) -> &str {
        self.default_ns
    }

    fn intern(&mut self, ns: &str, local: &str) -> u32 {
        let key = (ns.to_owned(), local.to_owned());
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(key.clone());
        self.index.insert(key, i);
        i
    }
}

/// The code at a message's head: its first word, if that ends with a dot and holds a digit
/// (`У1-19.`, `Main05-1.`, `Core02-1.`).
pub fn message_code(message: &str) -> Option<String> {
    let first = message.split_whitespace().next()?;
    let code = first.strip_suffix('.')?;
    (code.chars().any(|c| c.is_ascii_digit()) && !code.is_empty()).then(|| code.to_owned())
}

/// The file as read, before its expressions are compiled: the namespace prefixes, the
/// number of patterns and the rules.
struct RawSchema {
    prefixes: HashMap<String, String>,
    patterns: usize,
    rules: Vec<RawRule>,
}

/// A rule as read, before its expressions are compiled.
struct RawRule {
    pattern: usize,
    context: String,
    checks: Vec<(bool, String, String)>,
}

fn read(bytes: &[u8], limits: &CompileLimits) -> Result<RawSchema, CompileError> {
    if bytes.len() > limits.max_bytes {
        return Err(CompileError::OverLimit(format!("файл больше {} байт", limits.max_bytes)));
    }
    let mut reader = NsReader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    let mut prefixes = HashMap::new();
    let mut patterns = 0usize;
    let mut rules: Vec<RawRule> = Vec::new();
    let mut checks = 0usize;
    // The check being read: (report, test, text so far).
    let mut open_check: Option<(bool, String, String)> = None;
    let mut in_pattern = false;
    let mut depth_in_check = 0usize;
    let attr = |e: &quick_xml::events::BytesStart<'_>, name: &[u8]| -> Result<Option<String>, CompileError> {
        for a in e.attributes() {
            let a = a.map_err(|e| CompileError::Xml(e.to_string()))?;
            if a.key.as_ref().as_bytes() == name {
                return Ok(Some(
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| CompileError::Xml(e.to_string()))?
                        .into_owned(),
                ));
            }
        }
        Ok(None)
    };
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| CompileError::Xml(e.to_string()))?;
        let in_sch = matches!(ns, quick_xml::name::ResolveResult::Bound(quick_xml::name::Namespace(n)) if n == SCH_NS);
        match event {
            Event::DocType(_) => return Err(CompileError::Unsupported("DOCTYPE".into())),
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local = e.local_name();
                let local = local.as_ref().to_owned();
                if open_check.is_some() {
                    return Err(CompileError::Unsupported(format!("элемент <{local}> внутри assert/report")));
                }
                if !in_sch {
                    continue;
                }
                match local.as_str() {
                    "schema" | "title" | "p" => {}
                    "ns" => {
                        let prefix = attr(e, b"prefix")?.unwrap_or_default();
                        let uri = attr(e, b"uri")?.unwrap_or_default();
                        prefixes.insert(prefix, uri);
                    }
                    "pattern" => {
                        if attr(e, b"abstract")?.as_deref() == Some("true") || attr(e, b"is-a")?.is_some() {
                            return Err(CompileError::Unsupported("абстрактные шаблоны".into()));
                        }
                        patterns += 1;
                        in_pattern = !empty;
                    }
                    "rule" => {
                        if !in_pattern {
                            return Err(CompileError::Unsupported("правило вне pattern".into()));
                        }
                        if attr(e, b"abstract")?.as_deref() == Some("true") {
                            return Err(CompileError::Unsupported("абстрактные правила".into()));
                        }
                        let context = attr(e, b"context")?
                            .ok_or_else(|| CompileError::Xml("у правила нет атрибута context".into()))?;
                        if rules.len() >= limits.max_rules {
                            return Err(CompileError::OverLimit(format!("больше {} правил", limits.max_rules)));
                        }
                        rules.push(RawRule { pattern: patterns - 1, context, checks: Vec::new() });
                    }
                    "assert" | "report" => {
                        if rules.is_empty() {
                            return Err(CompileError::Unsupported("проверка вне правила".into()));
                        }
                        checks += 1;
                        if checks > limits.max_checks {
                            return Err(CompileError::OverLimit(format!("больше {} проверок", limits.max_checks)));
                        }
                        let test = attr(e, b"test")?
                            .ok_or_else(|| CompileError::Xml(format!("у {local} нет атрибута test")))?;
                        let check = (local == "report", test, String::new());
                        if empty {
                            rules.last_mut().expect("checked above").checks.push(check);
                        } else {
                            open_check = Some(check);
                            depth_in_check = 0;
                        }
                    }
                    other => return Err(CompileError::Unsupported(format!("элемент <{other}>"))),
                }
            }
            Event::End(e) => {
                if let Some(check) = open_check.take() {
                    if depth_in_check == 0 {
                        rules.last_mut().expect("a check is inside a rule").checks.push(check);
                    } else {
                        depth_in_check -= 1;
                        open_check = Some(check);
                    }
                } else if e.local_name().as_ref() == "pattern" {
                    in_pattern = false;
                }
            }
            Event::Text(t) => {
                if let Some((_, _, text)) = open_check.as_mut() {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some((_, _, text)) = open_check.as_mut() {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, _, text)) = open_check.as_mut() {
                    let resolved = match r.resolve_char_ref().map_err(|e| CompileError::Xml(e.to_string()))? {
                        Some(c) => c.to_string(),
                        None => quick_xml::escape::resolve_xml_entity(&r)
                            .ok_or_else(|| CompileError::Xml(format!("неизвестная сущность &{};", &*r)))?
                            .to_owned(),
                    };
                    text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
        }
    }
    Ok(RawSchema { prefixes, patterns, rules })
}

/// A rule context as a select expression from the document node: each branch of a union
/// that is not absolute gets `//` in front, and its last step is marked so that `current()`
/// is the matched node.
fn context_select(mut e: Expr) -> Result<Expr, String> {
    fn anchor(e: Expr) -> Result<Expr, String> {
        match e {
            Expr::Root => Ok(Expr::Root),
            Expr::Path { base, mut steps } => {
                let base = match *base {
                    Expr::Root => Expr::Root,
                    Expr::ContextItem => {
                        steps.insert(0, Step::descendant_or_self());
                        Expr::Root
                    }
                    Expr::Call(Func::Current, _) => return Err("current() в начале контекста".into()),
                    other => other,
                };
                if let Some(last) = steps.last_mut() {
                    last.matched = true;
                }
                Ok(Expr::Path { base: Box::new(base), steps })
            }
            Expr::Union(parts) => Ok(Expr::Union(parts.into_iter().map(anchor).collect::<Result<_, _>>()?)),
            Expr::Paren(inner) => anchor(*inner),
            other => Err(format!("контекст правила не является образцом XSLT: {other:?}")),
        }
    }
    e = anchor(e)?;
    e.optimise();
    Ok(e)
}

impl Schema {
    /// Compiles a schematron file. `default_element_namespace` is the namespace unprefixed
    /// element names stand for (`urn:hl7-org:v3` for SEMD).
    pub fn compile(
        bytes: &[u8],
        default_element_namespace: &str,
        limits: &CompileLimits,
    ) -> Result<Schema, CompileError> {
        let RawSchema { prefixes, patterns, rules: raw } = read(bytes, limits)?;
        let mut names = Interner {
            prefixes: &prefixes,
            default_ns: default_element_namespace,
            names: Vec::new(),
            index: HashMap::new(),
        };
        let mut regexes = xpath::regex::Cache::default();
        let mut rules = Vec::with_capacity(raw.len());
        let mut context_ids: HashMap<String, usize> = HashMap::new();
        let expr_error =
            |src: &str, reason: String| CompileError::Expression { expr: src.chars().take(300).collect(), reason };
        for r in raw {
            let context = xpath::parse(&r.context, &mut names).map_err(|e| expr_error(&r.context, e.0))?;
            let context = context_select(context).map_err(|e| expr_error(&r.context, e))?;
            collect_regexes(&context, &mut regexes).map_err(|e| expr_error(&r.context, e))?;
            let mut checks = Vec::with_capacity(r.checks.len());
            for (report, test_src, text) in r.checks {
                let mut test = xpath::parse(&test_src, &mut names).map_err(|e| expr_error(&test_src, e.0))?;
                test.optimise();
                collect_regexes(&test, &mut regexes).map_err(|e| expr_error(&test_src, e))?;
                let message: String = xpath::normalize_space(&text).chars().take(MAX_FINDING_TEXT).collect();
                let test_src: String = test_src.chars().take(MAX_FINDING_TEXT).collect();
                let code = message_code(&message);
                checks.push(Check { report, test, test_src, message, code });
            }
            let next = context_ids.len();
            let context_id = *context_ids.entry(r.context.clone()).or_insert(next);
            rules.push(Rule { pattern: r.pattern, context, context_id, context_src: r.context, checks });
        }
        Ok(Schema { names: names.names, patterns, rules, regexes, contexts: context_ids.len() })
    }

    pub fn stats(&self) -> Stats {
        let checks = self.rules.iter().flat_map(|r| &r.checks);
        Stats {
            patterns: self.patterns,
            rules: self.rules.len(),
            asserts: checks.clone().filter(|c| !c.report).count(),
            reports: checks.filter(|c| c.report).count(),
            regexes: self.regexes.len(),
        }
    }

    /// Runs every rule over `doc`.
    pub fn validate(&self, doc: &Document, budget: &Budget) -> Outcome {
        let names: Vec<Option<NameId>> = self.names.iter().map(|(ns, local)| doc.name_id(ns, local)).collect();
        let fuel = Fuel::new(budget.units, budget.deadline);
        let dynamic = RefCell::new(HashMap::new());
        let env = Env {
            doc,
            names: &names,
            regexes: &self.regexes,
            fuel: &fuel,
            dynamic: &dynamic,
            in_pattern: std::cell::Cell::new(false),
        };
        let mut omitted = 0usize;
        // (pattern, node, check) of each finding, to sort into SchXslt's order.
        let mut found: Vec<(usize, NodeId, usize, Finding)> = Vec::new();
        // For each node, the last pattern that claimed it (+1): rules of one pattern are
        // consecutive in the file, so one stamp per node suffices.
        let mut claimed: Vec<u32> = vec![0; doc.len()];
        let mut stopped = None;
        let root = Focus::node(0);
        // The nodes of each distinct context, evaluated once.
        let mut contexts: Vec<Option<std::rc::Rc<Vec<Item>>>> = vec![None; self.contexts];
        'rules: for rule in &self.rules {
            let stamp = rule.pattern as u32 + 1;
            let nodes = match &contexts[rule.context_id] {
                Some(nodes) => std::rc::Rc::clone(nodes),
                None => match context_nodes(&env, &rule.context, &root) {
                    Ok(nodes) => {
                        let nodes = std::rc::Rc::new(nodes);
                        contexts[rule.context_id] = Some(std::rc::Rc::clone(&nodes));
                        nodes
                    }
                    Err(e) => {
                        stopped = Some(stop(e, &rule.context_src, None));
                        break;
                    }
                },
            };
            for item in nodes.iter() {
                let &Item::Node(node) = item else { continue };
                if claimed[node as usize] == stamp {
                    continue;
                }
                claimed[node as usize] = stamp;
                let focus = Focus::node(node);
                for (ci, check) in rule.checks.iter().enumerate() {
                    let holds = xpath::eval_bool(&env, &check.test, &focus);
                    let holds = match holds {
                        Ok(h) => h,
                        Err(e) => {
                            stopped = Some(stop(e, &rule.context_src, Some(&check.test_src)));
                            break 'rules;
                        }
                    };
                    if holds == check.report {
                        if found.len() >= MAX_FINDINGS {
                            omitted += 1;
                            continue;
                        }
                        found.push((
                            rule.pattern,
                            node,
                            ci,
                            Finding {
                                kind: if check.report {
                                    FindingKind::SuccessfulReport
                                } else {
                                    FindingKind::FailedAssert
                                },
                                message: check.message.clone(),
                                code: check.code.clone(),
                                location: doc.location(node),
                                test: check.test_src.clone(),
                            },
                        ));
                    }
                }
            }
        }
        found.sort_by_key(|(n, r, c, _)| (*n, *r, *c));
        Outcome {
            findings: found.into_iter().map(|(.., f)| f).collect(),
            omitted,
            stopped,
            spent: fuel.spent(budget.units),
        }
    }
}

/// The nodes a rule's context matches: evaluated as a pattern, where an XPath error in a
/// predicate means "does not match".
fn context_nodes(env: &Env<'_>, context: &Expr, root: &Focus) -> Result<Vec<Item>, EvalError> {
    env.in_pattern.set(true);
    let nodes = xpath::eval(env, context, root);
    env.in_pattern.set(false);
    nodes
}

fn stop(e: EvalError, context: &str, test: Option<&str>) -> Stopped {
    match e {
        EvalError::Exhausted => Stopped::Exhausted,
        EvalError::Dynamic { code, message } => Stopped::Error {
            code: code.to_owned(),
            message,
            context: context.to_owned(),
            test: test.map(str::to_owned),
        },
    }
}

/// Compiles the literal patterns of `matches()` once, with the schema.
fn collect_regexes(e: &Expr, cache: &mut xpath::regex::Cache) -> Result<(), String> {
    let mut result = Ok(());
    e.visit(&mut |e| {
        if let Expr::Call(Func::Matches, args) = e {
            let flags = match args.get(2) {
                None => Some(String::new()),
                Some(Expr::Str(f)) => Some(f.clone()),
                Some(_) => None,
            };
            if let (Some(Expr::Str(p)), Some(flags)) = (args.get(1), flags)
                && let Err(err) = cache.add(p, &flags)
                && result.is_ok()
            {
                result = Err(err.to_string());
            }
        }
    });
    result
}
