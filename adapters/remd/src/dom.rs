//! The reading half's foundation: a namespace-aware, bounded parse of a message into a
//! small element tree, on which the readers match by (namespace, local name) only.
//!
//! Every byte may come from an outsider (the REMD-facing listener is reachable before
//! anything is authenticated), so every dimension of the parse is bounded, each by a named
//! constant and each answered by its own [`ParseError`]:
//!
//! | bound | limit |
//! |---|---|
//! | message size | [`Limits::max_bytes`]: [`MAX_CALL_BYTES`] for REMD's calls, [`MAX_MESSAGE_BYTES`] for answers |
//! | one text run | [`Limits::max_text_bytes`]: [`MAX_CALL_TEXT_BYTES`] / [`MAX_MESSAGE_BYTES`] |
//! | nesting | [`MAX_DEPTH`] |
//! | elements | [`MAX_ELEMENTS`] |
//! | attributes of one element / bytes of one value | [`MAX_ATTRIBUTES`] / [`MAX_ATTRIBUTE_BYTES`] |
//! | element and attribute names | [`MAX_NAME_BYTES`] |
//! | a namespace URI / bindings in scope / distinct URIs | [`MAX_NAMESPACE_URI_BYTES`] / [`MAX_NAMESPACES_IN_SCOPE`] / [`MAX_DISTINCT_NAMESPACES`] |
//! | the tree's memory | [`MEMORY_PER_INPUT_BYTE`] × input + [`MEMORY_BASE`] |
//! | resolving names to namespaces | [`WORK_PER_INPUT_BYTE`] × input + [`MEMORY_BASE`] bytes hashed |
//!
//! Namespace URIs are interned: each distinct URI is held once and elements share it, so a
//! long URI over many elements costs its length once (a copy per element would turn a
//! 200 KB message into gigabytes). The tree's memory is accounted as it grows, so whatever
//! the shape of the input the parse stays within a small multiple of its size.
//!
//! Refused outright as well: anything but UTF-8, a DOCTYPE (and so every entity
//! declaration), references to entities other than the five predefined ones, undeclared
//! prefixes, more than one root. Errors never quote the input.

use std::sync::Arc;

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{QName, ResolveResult};

/// The largest message the readers of answers accept: 16 MiB (a `getDocumentFileResponse`
/// carries a whole document in base64).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// The largest call from REMD the listener's reader accepts: 1 MiB. REMD's calls carry ids,
/// a status and a list of messages; none carries a document.
pub const MAX_CALL_BYTES: usize = 1024 * 1024;
/// The longest text of one element in a call from REMD.
pub const MAX_CALL_TEXT_BYTES: usize = 64 * 1024;
/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 64;
/// Most elements accepted in one message.
pub const MAX_ELEMENTS: usize = 100_000;
/// Most attributes (namespace declarations included) on one element.
pub const MAX_ATTRIBUTES: usize = 32;
/// Longest value of one attribute, in bytes.
pub const MAX_ATTRIBUTE_BYTES: usize = 4096;
/// Longest element or attribute name (prefix included), in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest namespace URI, in bytes (the contract's are under 100).
pub const MAX_NAMESPACE_URI_BYTES: usize = 1024;
/// Most namespace bindings in scope at once.
pub const MAX_NAMESPACES_IN_SCOPE: usize = 32;
/// Most distinct namespace URIs in one message.
pub const MAX_DISTINCT_NAMESPACES: usize = 64;
/// The tree may take this many bytes of memory per byte of input…
pub const MEMORY_PER_INPUT_BYTE: usize = 16;
/// …plus this much.
pub const MEMORY_BASE: usize = 64 * 1024;
/// Bytes of namespace URIs the reader may hash while resolving names, per byte of input
/// (plus [`MEMORY_BASE`]).
pub const WORK_PER_INPUT_BYTE: usize = 16;

/// The bounds that differ between what the gateway reads: REMD's calls to its listener
/// (small) and REMD's answers to its requests (a document in base64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_text_bytes: usize,
}

impl Limits {
    /// REMD's calls to the gateway's listener.
    pub const CALL: Limits = Limits { max_bytes: MAX_CALL_BYTES, max_text_bytes: MAX_CALL_TEXT_BYTES };
    /// Answers to the gateway's requests (and the gateway's requests, read by the emulator).
    pub const MESSAGE: Limits = Limits { max_bytes: MAX_MESSAGE_BYTES, max_text_bytes: MAX_MESSAGE_BYTES };
}

/// Why a message could not be read. The texts never quote the message: it may hold
/// personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("message is not UTF-8")]
    NotUtf8,
    #[error("message declares an encoding other than UTF-8")]
    Encoding,
    #[error("DOCTYPE and entity declarations are refused")]
    Doctype,
    #[error("reference to an undeclared entity")]
    Entity,
    #[error("XML is not well-formed ({kind} error at byte {position})")]
    Malformed { kind: &'static str, position: u64 },
    #[error("elements are nested deeper than {limit}")]
    TooDeep { limit: usize },
    #[error("message has more than {limit} elements")]
    TooManyElements { limit: usize },
    #[error("an element has more than {limit} attributes")]
    TooManyAttributes { limit: usize },
    #[error("an attribute value is longer than {limit} bytes")]
    AttributeTooLong { limit: usize },
    #[error("an element or attribute name is longer than {limit} bytes")]
    NameTooLong { limit: usize },
    #[error("the text of an element is longer than {limit} bytes")]
    TextTooLong { limit: usize },
    #[error("a namespace URI is longer than {limit} bytes")]
    NamespaceTooLong { limit: usize },
    #[error("more than {limit} namespace bindings are in scope, or more than {limit} distinct namespaces are used")]
    TooManyNamespaces { limit: usize },
    #[error("the message's structure would take more than {limit} bytes of memory")]
    TooComplex { limit: usize },
    #[error("a namespace prefix is not declared")]
    UnboundPrefix,
    #[error("not a SOAP 1.1 or 1.2 envelope")]
    NotSoap,
    #[error("the envelope has no body element")]
    NoBody,
    #[error("unexpected body, expected {expected}")]
    UnexpectedBody { expected: &'static str },
    /// A header block marked `mustUnderstand` that the reader does not understand (its
    /// namespace URI and local name): SOAP requires a `MustUnderstand` fault.
    #[error("a header block marked mustUnderstand is not understood: {{{0}}}{1}")]
    NotUnderstood(String, String),
    #[error("wsa:Action does not name the operation of the body ({expected})")]
    ActionMismatch { expected: &'static str },
    #[error("missing element {0}")]
    Missing(&'static str),
    #[error("invalid value of {0}")]
    Invalid(&'static str),
}

/// An interned namespace URI, shared by every element and attribute in it.
pub(crate) type Ns = Arc<str>;

/// An attribute: namespace (`None`: unqualified), local name, value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Attr {
    pub ns: Option<Ns>,
    pub local: String,
    pub value: String,
}

/// An element: its expanded name, attributes, text and children.
#[derive(Debug, Default)]
pub(crate) struct Node {
    /// Namespace URI; `None` for an unqualified element.
    pub ns: Option<Ns>,
    pub local: String,
    /// Namespace declarations excluded.
    pub attrs: Vec<Attr>,
    /// All character data directly inside the element (CDATA included), unescaped.
    pub text: String,
    /// When `text` (trimmed) is a prefixed QName (`soap:Sender`), the namespace its prefix
    /// is bound to in the element's scope.
    pub text_ns: Option<Ns>,
    pub children: Vec<Node>,
}

impl Node {
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns.as_deref() == Some(ns)
    }

    /// The first child with this expanded name.
    pub fn child(&self, ns: &str, local: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.is(ns, local))
    }

    /// The first unqualified child with this local name.
    pub fn child_unqualified(&self, local: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.ns.is_none() && c.local == local)
    }

    /// The trimmed text, `None` when empty.
    pub fn value(&self) -> Option<&str> {
        let t = self.text.trim();
        (!t.is_empty()).then_some(t)
    }

    /// The trimmed text of the first child with this name, `None` when the child is
    /// missing or empty.
    pub fn child_value(&self, ns: &str, local: &str) -> Option<&str> {
        self.child(ns, local).and_then(Node::value)
    }

    /// An unqualified attribute.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs.iter().find(|a| a.ns.is_none() && a.local == local).map(|a| a.value.as_str())
    }
}

/// The distinct namespace URIs of one message, each held once; and the work of finding
/// them, bounded like the tree's memory: every resolution hashes its URI, and the bytes
/// hashed are charged against [`WORK_PER_INPUT_BYTE`] × input, so that many prefixed names
/// bound to long URIs cannot make a small message expensive.
struct Namespaces {
    known: std::collections::HashMap<Ns, ()>,
    work_left: usize,
    work_limit: usize,
}

impl Namespaces {
    fn for_input(len: usize) -> Self {
        let work_limit = len.saturating_mul(WORK_PER_INPUT_BYTE).saturating_add(MEMORY_BASE);
        Self { known: std::collections::HashMap::new(), work_left: work_limit, work_limit }
    }

    fn intern(&mut self, uri: &str) -> Result<Ns, ParseError> {
        self.work_left =
            self.work_left.checked_sub(uri.len()).ok_or(ParseError::TooComplex { limit: self.work_limit })?;
        if let Some((ns, ())) = self.known.get_key_value(uri) {
            return Ok(Arc::clone(ns));
        }
        if uri.len() > MAX_NAMESPACE_URI_BYTES {
            return Err(ParseError::NamespaceTooLong { limit: MAX_NAMESPACE_URI_BYTES });
        }
        if self.known.len() >= MAX_DISTINCT_NAMESPACES {
            return Err(ParseError::TooManyNamespaces { limit: MAX_DISTINCT_NAMESPACES });
        }
        let ns: Ns = Arc::from(uri);
        self.known.insert(Arc::clone(&ns), ());
        Ok(ns)
    }

    /// A resolved namespace; an undeclared prefix is an error.
    fn resolved(&mut self, ns: ResolveResult<'_>) -> Result<Option<Ns>, ParseError> {
        match ns {
            ResolveResult::Bound(ns) => self.intern(ns.0).map(Some),
            ResolveResult::Unbound => Ok(None),
            ResolveResult::Unknown(_) => Err(ParseError::UnboundPrefix),
        }
    }
}

/// What the tree built so far may still take, in bytes: every allocation of the tree is
/// charged here before it is made (and what [`finish`] gives back is returned), so the
/// tree never holds more than the budget.
struct Budget {
    left: usize,
    limit: usize,
}

impl Budget {
    fn for_input(len: usize) -> Self {
        let limit = len.saturating_mul(MEMORY_PER_INPUT_BYTE).saturating_add(MEMORY_BASE);
        Self { left: limit, limit }
    }

    fn take(&mut self, bytes: usize) -> Result<(), ParseError> {
        self.left = self.left.checked_sub(bytes).ok_or(ParseError::TooComplex { limit: self.limit })?;
        Ok(())
    }

    fn give(&mut self, bytes: usize) {
        self.left = (self.left + bytes).min(self.limit);
    }

    /// Pushes `item`, charging for the vector's growth first.
    fn push<T>(&mut self, list: &mut Vec<T>, item: T) -> Result<(), ParseError> {
        if list.len() == list.capacity() {
            let more = list.capacity().max(4);
            self.take(more * std::mem::size_of::<T>())?;
            list.reserve_exact(more);
        }
        list.push(item);
        Ok(())
    }

    /// Appends `text`, charging for the string's growth first.
    fn push_str(&mut self, string: &mut String, text: &str) -> Result<(), ParseError> {
        let needed = string.len() + text.len();
        if needed > string.capacity() {
            let new_capacity = needed.max(2 * string.capacity());
            self.take(new_capacity - string.capacity())?;
            string.reserve_exact(new_capacity - string.len());
        }
        string.push_str(text);
        Ok(())
    }

    /// A copy of `text`, charged.
    fn owned(&mut self, text: &str) -> Result<String, ParseError> {
        self.take(text.len())?;
        Ok(text.to_owned())
    }
}

/// A closed element gives back what its lists and text hold beyond their length.
fn finish(node: &mut Node, budget: &mut Budget) {
    let spare = (node.children.capacity() - node.children.len()) * std::mem::size_of::<Node>()
        + (node.attrs.capacity() - node.attrs.len()) * std::mem::size_of::<Attr>()
        + (node.text.capacity() - node.text.len());
    node.children.shrink_to_fit();
    node.attrs.shrink_to_fit();
    node.text.shrink_to_fit();
    budget.give(spare);
}

/// Parses `bytes` into the root element, within `limits` and every bound above.
pub(crate) fn parse(bytes: &[u8], limits: Limits) -> Result<Node, ParseError> {
    if bytes.len() > limits.max_bytes {
        return Err(ParseError::TooLarge { limit: limits.max_bytes });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| ParseError::NotUtf8)?;

    let mut reader = NsReader::from_str(text);
    reader.resolver_mut().set_max_namespace_bindings(MAX_NAMESPACES_IN_SCOPE);
    let mut namespaces = Namespaces::for_input(bytes.len());
    let mut budget = Budget::for_input(bytes.len());
    // The open elements (at most MAX_DEPTH) and the root sit outside any parent's list.
    budget.take((MAX_DEPTH + 1) * std::mem::size_of::<Node>())?;
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut elements = 0usize;
    loop {
        let (ns, event) = match reader.read_resolved_event() {
            Ok((ns, event)) => (namespaces.resolved(ns)?, event),
            Err(e) => return Err(malformed(&e, reader.error_position())),
        };
        match &event {
            Event::Start(start) | Event::Empty(start) => {
                if root.is_some() {
                    return Err(ParseError::Malformed { kind: "second root", position: reader.buffer_position() });
                }
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(ParseError::TooManyElements { limit: MAX_ELEMENTS });
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(ParseError::TooDeep { limit: MAX_DEPTH });
                }
                let mut node = element(&reader, &mut namespaces, &mut budget, ns, start)?;
                if matches!(event, Event::Start(_)) {
                    stack.push(node);
                } else {
                    finish(&mut node, &mut budget);
                    match stack.last_mut() {
                        Some(parent) => budget.push(&mut parent.children, node)?,
                        None => root = Some(node),
                    }
                }
            }
            Event::End(_) => {
                // The element's own namespace bindings are still in scope here.
                let Some(mut node) = stack.pop() else {
                    return Err(ParseError::Malformed { kind: "unmatched end", position: reader.buffer_position() });
                };
                node.text_ns = text_qname_namespace(&reader, &mut namespaces, &node.text)?;
                finish(&mut node, &mut budget);
                match stack.last_mut() {
                    Some(parent) => budget.push(&mut parent.children, node)?,
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(node) => push_text(node, &content, limits, &mut budget)?,
                    None if !content.trim().is_empty() => {
                        return Err(ParseError::Malformed {
                            kind: "text outside the root",
                            position: reader.buffer_position(),
                        });
                    }
                    None => {}
                }
            }
            Event::CData(c) => match stack.last_mut() {
                Some(node) => push_text(node, &c.xml10_content(), limits, &mut budget)?,
                None => {
                    return Err(ParseError::Malformed {
                        kind: "text outside the root",
                        position: reader.buffer_position(),
                    });
                }
            },
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match &*r.xml10_content() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "apos" => '\'',
                        "quot" => '"',
                        _ => return Err(ParseError::Entity),
                    },
                    Err(_) => {
                        return Err(ParseError::Malformed {
                            kind: "character reference",
                            position: reader.buffer_position(),
                        });
                    }
                };
                match stack.last_mut() {
                    Some(node) => push_text(node, resolved.encode_utf8(&mut [0; 4]), limits, &mut budget)?,
                    None => {
                        return Err(ParseError::Malformed {
                            kind: "text outside the root",
                            position: reader.buffer_position(),
                        });
                    }
                }
            }
            Event::DocType(_) => return Err(ParseError::Doctype),
            Event::Decl(decl) => {
                if let Some(encoding) = decl.encoding() {
                    let encoding = encoding.map_err(|_| ParseError::Encoding)?;
                    if !encoding.eq_ignore_ascii_case("utf-8") && !encoding.eq_ignore_ascii_case("utf8") {
                        return Err(ParseError::Encoding);
                    }
                }
            }
            Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(ParseError::Malformed { kind: "unclosed element", position: reader.buffer_position() });
    }
    root.ok_or(ParseError::Malformed { kind: "no root element", position: 0 })
}

fn push_text(node: &mut Node, text: &str, limits: Limits, budget: &mut Budget) -> Result<(), ParseError> {
    if node.text.len() + text.len() > limits.max_text_bytes {
        return Err(ParseError::TextTooLong { limit: limits.max_text_bytes });
    }
    budget.push_str(&mut node.text, text)
}

fn element(
    reader: &NsReader<&[u8]>,
    namespaces: &mut Namespaces,
    budget: &mut Budget,
    ns: Option<Ns>,
    start: &BytesStart<'_>,
) -> Result<Node, ParseError> {
    let position = reader.buffer_position();
    if start.name().as_ref().len() > MAX_NAME_BYTES {
        return Err(ParseError::NameTooLong { limit: MAX_NAME_BYTES });
    }
    let local = budget.owned(start.local_name().as_ref())?;
    let mut attrs = Vec::new();
    for (count, attr) in start.attributes().enumerate() {
        if count >= MAX_ATTRIBUTES {
            return Err(ParseError::TooManyAttributes { limit: MAX_ATTRIBUTES });
        }
        let attr = attr.map_err(|_| ParseError::Malformed { kind: "attribute", position })?;
        if attr.key.as_ref().len() > MAX_NAME_BYTES {
            return Err(ParseError::NameTooLong { limit: MAX_NAME_BYTES });
        }
        if attr.key.as_namespace_binding().is_some() {
            if attr.value.len() > MAX_NAMESPACE_URI_BYTES {
                return Err(ParseError::NamespaceTooLong { limit: MAX_NAMESPACE_URI_BYTES });
            }
            continue;
        }
        if attr.value.len() > MAX_ATTRIBUTE_BYTES {
            return Err(ParseError::AttributeTooLong { limit: MAX_ATTRIBUTE_BYTES });
        }
        let (attr_ns, attr_local) = reader.resolver().resolve_attribute(attr.key);
        let attr_ns = namespaces.resolved(attr_ns)?;
        let value = attr.normalized_value(XmlVersion::Implicit1_0).map_err(|_| ParseError::Entity)?;
        let attr = Attr { ns: attr_ns, local: budget.owned(attr_local.as_ref())?, value: budget.owned(&value)? };
        budget.push(&mut attrs, attr)?;
    }
    Ok(Node { ns, local, attrs, ..Node::default() })
}

/// The expanded name of the root element (namespace, local name), reading no further than
/// its start tag; `None` for anything [`parse`] would refuse before it, or an unqualified root.
pub(crate) fn root_name(bytes: &[u8]) -> Option<(String, String)> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).ok()?;
    let mut reader = NsReader::from_str(text);
    loop {
        match reader.read_resolved_event().ok()? {
            (ResolveResult::Bound(ns), Event::Start(e) | Event::Empty(e)) => {
                if ns.0.len() > MAX_NAMESPACE_URI_BYTES || e.name().as_ref().len() > MAX_NAME_BYTES {
                    return None;
                }
                return Some((ns.0.to_owned(), e.local_name().as_ref().to_owned()));
            }
            (_, Event::Start(_) | Event::Empty(_) | Event::DocType(_) | Event::Eof) => return None,
            _ => {}
        }
    }
}

/// The namespace of the prefix of `text` when `text` is a prefixed QName.
fn text_qname_namespace(
    reader: &NsReader<&[u8]>,
    namespaces: &mut Namespaces,
    text: &str,
) -> Result<Option<Ns>, ParseError> {
    let text = text.trim();
    if text.len() > MAX_NAME_BYTES {
        return Ok(None);
    }
    let Some((prefix, local)) = text.split_once(':') else { return Ok(None) };
    let name_like = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
            && s.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    if !name_like(prefix) || !name_like(local) {
        return Ok(None);
    }
    match reader.resolver().resolve_element(QName(text)).0 {
        ResolveResult::Bound(ns) => namespaces.intern(ns.0).map(Some),
        _ => Ok(None),
    }
}

fn malformed(error: &quick_xml::Error, position: u64) -> ParseError {
    use quick_xml::Error as E;
    let kind = match error {
        E::Io(_) => "i/o",
        E::Syntax(_) => "syntax",
        E::IllFormed(_) => "ill-formed",
        E::InvalidAttr(_) => "attribute",
        E::Encoding(_) => return ParseError::NotUtf8,
        E::Escape(_) => "escape",
        E::Namespace(quick_xml::name::NamespaceError::TooManyBindings(_)) => {
            return ParseError::TooManyNamespaces { limit: MAX_NAMESPACES_IN_SCOPE };
        }
        E::Namespace(_) => "namespace",
    };
    ParseError::Malformed { kind, position }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_call(xml: &str) -> Result<Node, ParseError> {
        parse(xml.as_bytes(), Limits::CALL)
    }

    #[test]
    fn builds_a_namespaced_tree() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<a:root xmlns:a="urn:a" xmlns="urn:d"><child x="1" a:y="&lt;2">t&amp;<![CDATA[<c>]]>&#1071;</child><a:q>a:Sender</a:q><e/></a:root>"#;
        let root = parse_call(xml).unwrap();
        assert!(root.is("urn:a", "root"));
        let child = root.child("urn:d", "child").unwrap();
        assert_eq!(child.text, "t&<c>Я");
        assert_eq!(child.attr("x"), Some("1"));
        assert_eq!(
            child.attrs[1],
            Attr { ns: Some(Arc::from("urn:a")), local: "y".to_owned(), value: "<2".to_owned() }
        );
        assert_eq!(root.child("urn:a", "q").unwrap().text_ns.as_deref(), Some("urn:a"));
        assert!(root.child("urn:d", "e").is_some());
    }

    #[test]
    fn a_namespace_is_held_once_however_many_elements_use_it() {
        let uri = format!("urn:{}", "n".repeat(MAX_NAMESPACE_URI_BYTES - 4));
        let xml = format!(r#"<r xmlns="{uri}">{}</r>"#, "<c/>".repeat(50));
        let root = parse_call(&xml).unwrap();
        let shared = root.ns.as_ref().unwrap();
        assert!(root.children.iter().all(|c| Arc::ptr_eq(c.ns.as_ref().unwrap(), shared)));
        // One allocation, shared by the root and every child.
        assert_eq!(Arc::strong_count(shared), 51);
    }

    #[test]
    fn refuses_what_it_must() {
        let cases: &[(&str, ParseError)] = &[
            (r#"<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>"#, ParseError::Doctype),
            ("<r>&x;</r>", ParseError::Entity),
            ("<p:r/>", ParseError::UnboundPrefix),
            ("<r/><r/>", ParseError::Malformed { kind: "second root", position: 8 }),
            (r#"<?xml version="1.0" encoding="windows-1251"?><r/>"#, ParseError::Encoding),
            ("", ParseError::Malformed { kind: "no root element", position: 0 }),
        ];
        for (xml, expected) in cases {
            assert_eq!(parse_call(xml).unwrap_err(), *expected, "{xml}");
        }
        assert!(matches!(parse_call("<r><a></r>"), Err(ParseError::Malformed { .. })));
        assert_eq!(parse(b"<r>\xff</r>", Limits::CALL).unwrap_err(), ParseError::NotUtf8);
    }

    /// Each bound, just within and just past it.
    #[test]
    fn every_bound_holds() {
        let nest = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(parse_call(&nest(MAX_DEPTH)).is_ok());
        assert_eq!(parse_call(&nest(MAX_DEPTH + 1)).unwrap_err(), ParseError::TooDeep { limit: MAX_DEPTH });

        let big = vec![b' '; MAX_CALL_BYTES + 1];
        assert_eq!(parse(&big, Limits::CALL).unwrap_err(), ParseError::TooLarge { limit: MAX_CALL_BYTES });
        let big = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert_eq!(parse(&big, Limits::MESSAGE).unwrap_err(), ParseError::TooLarge { limit: MAX_MESSAGE_BYTES });

        let many = |n: usize| format!("<r>{}</r>", "<a>0123456789abcdef</a>".repeat(n));
        assert!(parse(many(MAX_ELEMENTS - 1).as_bytes(), Limits::MESSAGE).is_ok());
        assert_eq!(
            parse(many(MAX_ELEMENTS).as_bytes(), Limits::MESSAGE).unwrap_err(),
            ParseError::TooManyElements { limit: MAX_ELEMENTS }
        );

        let attrs = |n: usize| format!("<r {}/>", (0..n).map(|i| format!("a{i}=\"v\"")).collect::<Vec<_>>().join(" "));
        assert!(parse_call(&attrs(MAX_ATTRIBUTES)).is_ok());
        assert_eq!(
            parse_call(&attrs(MAX_ATTRIBUTES + 1)).unwrap_err(),
            ParseError::TooManyAttributes { limit: MAX_ATTRIBUTES }
        );

        let value = |n: usize| format!(r#"<r a="{}"/>"#, "v".repeat(n));
        assert!(parse_call(&value(MAX_ATTRIBUTE_BYTES)).is_ok());
        assert_eq!(
            parse_call(&value(MAX_ATTRIBUTE_BYTES + 1)).unwrap_err(),
            ParseError::AttributeTooLong { limit: MAX_ATTRIBUTE_BYTES }
        );

        let name = |n: usize| format!("<{0}/>", "n".repeat(n));
        assert!(parse_call(&name(MAX_NAME_BYTES)).is_ok());
        assert_eq!(
            parse_call(&name(MAX_NAME_BYTES + 1)).unwrap_err(),
            ParseError::NameTooLong { limit: MAX_NAME_BYTES }
        );

        let text = |n: usize| format!("<r>{}</r>", "t".repeat(n));
        assert!(parse_call(&text(MAX_CALL_TEXT_BYTES)).is_ok());
        assert_eq!(
            parse_call(&text(MAX_CALL_TEXT_BYTES + 1)).unwrap_err(),
            ParseError::TextTooLong { limit: MAX_CALL_TEXT_BYTES }
        );
        // Text in pieces (entities, CDATA) counts as a whole.
        let pieces = format!(
            "<r>{}<![CDATA[{}]]></r>",
            "&amp;".repeat(MAX_CALL_TEXT_BYTES / 2),
            "t".repeat(MAX_CALL_TEXT_BYTES / 2 + 1)
        );
        assert_eq!(parse_call(&pieces).unwrap_err(), ParseError::TextTooLong { limit: MAX_CALL_TEXT_BYTES });

        let uri = |n: usize| format!(r#"<r xmlns="urn:{}"/>"#, "u".repeat(n - 4));
        assert!(parse_call(&uri(MAX_NAMESPACE_URI_BYTES)).is_ok());
        assert_eq!(
            parse_call(&uri(MAX_NAMESPACE_URI_BYTES + 1)).unwrap_err(),
            ParseError::NamespaceTooLong { limit: MAX_NAMESPACE_URI_BYTES }
        );
        // Declared but never used: refused all the same.
        let unused = format!(r#"<r xmlns:p="urn:{}"/>"#, "u".repeat(MAX_NAMESPACE_URI_BYTES));
        assert_eq!(parse_call(&unused).unwrap_err(), ParseError::NamespaceTooLong { limit: MAX_NAMESPACE_URI_BYTES });

        // Bindings in scope: 16 per element, nested.
        let scope = |depth: usize| {
            let decls = |d: usize| (0..16).map(|i| format!(r#"xmlns:p{d}x{i}="urn:s""#)).collect::<Vec<_>>().join(" ");
            let open: String = (0..depth).map(|d| format!("<a {}>", decls(d))).collect();
            format!("{open}{}", "</a>".repeat(depth))
        };
        assert!(parse_call(&scope(MAX_NAMESPACES_IN_SCOPE / 16)).is_ok());
        assert_eq!(
            parse_call(&scope(MAX_NAMESPACES_IN_SCOPE / 16 + 1)).unwrap_err(),
            ParseError::TooManyNamespaces { limit: MAX_NAMESPACES_IN_SCOPE }
        );
        // Distinct URIs, each on its own sibling (so never many in scope at once).
        let distinct =
            |n: usize| format!("<r>{}</r>", (0..n).map(|i| format!(r#"<c xmlns="urn:{i}"/>"#)).collect::<String>());
        assert!(parse_call(&distinct(MAX_DISTINCT_NAMESPACES)).is_ok());
        assert_eq!(
            parse_call(&distinct(MAX_DISTINCT_NAMESPACES + 1)).unwrap_err(),
            ParseError::TooManyNamespaces { limit: MAX_DISTINCT_NAMESPACES }
        );
    }

    #[test]
    fn structure_beyond_the_memory_budget_is_refused() {
        // Empty elements are the densest structure: a few bytes of input each.
        let dense = format!("<r>{}</r>", "<a/>".repeat(50_000));
        let limit = dense.len() * MEMORY_PER_INPUT_BYTE + MEMORY_BASE;
        assert_eq!(parse_call(&dense).unwrap_err(), ParseError::TooComplex { limit });
        // A real message is far from it.
        let sparse = format!("<r>{}</r>", "<a>value of a field</a>".repeat(1_000));
        assert!(parse_call(&sparse).is_ok());
    }

    #[test]
    fn resolving_many_names_against_long_uris_is_bounded() {
        // 64 long URIs that differ only at the end, and many short prefixed names bound to
        // them: each name costs a URI's length to resolve, the input only a few bytes.
        let decls: String = (0..16).map(|i| format!(r#" xmlns:p{i:x}="urn:{}{i:02}""#, "u".repeat(1000))).collect();
        let names: String = (0..30_000).map(|i| format!("<p{:x}:a/>", i % 16)).collect();
        let xml = format!("<r{decls}>{names}</r>");
        assert!(matches!(parse(xml.as_bytes(), Limits::CALL), Err(ParseError::TooComplex { .. })));
        // The same names bound to short URIs parse.
        let decls: String = (0..16).map(|i| format!(r#" xmlns:p{i:x}="urn:u{i:02}""#)).collect();
        let names: String = (0..3_000).map(|i| format!("<p{:x}:a>field value</p{:x}:a>", i % 16, i % 16)).collect();
        assert!(parse(format!("<r{decls}>{names}</r>").as_bytes(), Limits::CALL).is_ok());
    }

    #[test]
    fn accepts_a_bom() {
        assert!(parse(b"\xEF\xBB\xBF<r/>", Limits::CALL).is_ok());
    }
}
