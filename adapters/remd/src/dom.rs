//! The reading half's foundation: a namespace-aware, size-limited parse of a message into
//! a small element tree, on which the readers match by (namespace, local name) only.
//!
//! Refused outright: input over [`MAX_MESSAGE_BYTES`], anything but UTF-8, a DOCTYPE
//! (and so every entity declaration), references to entities other than the five
//! predefined ones, undeclared prefixes, nesting deeper than [`MAX_DEPTH`], more than
//! [`MAX_ELEMENTS`] elements, more than one root. Errors never quote the input.

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{QName, ResolveResult};

/// The largest message the readers accept: 16 MiB (a `getDocumentFileResponse` carries a
/// whole document in base64).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 64;
/// Most elements accepted in one message.
pub const MAX_ELEMENTS: usize = 100_000;

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
    #[error("a namespace prefix is not declared")]
    UnboundPrefix,
    #[error("not a SOAP 1.1 or 1.2 envelope")]
    NotSoap,
    #[error("the envelope has no body element")]
    NoBody,
    #[error("unexpected body, expected {expected}")]
    UnexpectedBody { expected: &'static str },
    #[error("wsa:Action does not name the operation of the body ({expected})")]
    ActionMismatch { expected: &'static str },
    #[error("missing element {0}")]
    Missing(&'static str),
    #[error("invalid value of {0}")]
    Invalid(&'static str),
}

/// An element: its expanded name, attributes, text and children.
#[derive(Debug, Default)]
pub(crate) struct Node {
    /// Namespace URI; `None` for an unqualified element.
    pub ns: Option<String>,
    pub local: String,
    /// `(namespace, local name, value)`, namespace declarations excluded.
    pub attrs: Vec<(Option<String>, String, String)>,
    /// All character data directly inside the element (CDATA included), unescaped.
    pub text: String,
    /// When `text` (trimmed) is a prefixed QName (`soap:Sender`), the namespace its prefix
    /// is bound to in the element's scope.
    pub text_ns: Option<String>,
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
        self.attrs.iter().find(|(ns, name, _)| ns.is_none() && name == local).map(|(_, _, v)| v.as_str())
    }
}

/// Parses `bytes` into the root element, with every limit above.
pub(crate) fn parse(bytes: &[u8]) -> Result<Node, ParseError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::TooLarge { limit: MAX_MESSAGE_BYTES });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| ParseError::NotUtf8)?;

    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut elements = 0usize;
    loop {
        let read = reader.read_resolved_event().map(|(ns, event)| (owned(ns), event));
        let (ns, event) = match read {
            Ok((Ok(ns), event)) => (ns, event),
            Ok((Err(unbound), _)) => return Err(unbound),
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
                let node = element(&reader, ns, start)?;
                if matches!(event, Event::Start(_)) {
                    stack.push(node);
                } else {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => root = Some(node),
                    }
                }
            }
            Event::End(_) => {
                // The element's own namespace bindings are still in scope here.
                let Some(mut node) = stack.pop() else {
                    return Err(ParseError::Malformed { kind: "unmatched end", position: reader.buffer_position() });
                };
                node.text_ns = text_qname_namespace(&reader, &node.text);
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&t.xml10_content());
                } else if !t.xml10_content().trim().is_empty() {
                    return Err(ParseError::Malformed {
                        kind: "text outside the root",
                        position: reader.buffer_position(),
                    });
                }
            }
            Event::CData(c) => match stack.last_mut() {
                Some(node) => node.text.push_str(&c.xml10_content()),
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
                    Some(node) => node.text.push(resolved),
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

fn element(reader: &NsReader<&[u8]>, ns: Option<String>, start: &BytesStart<'_>) -> Result<Node, ParseError> {
    let position = reader.buffer_position();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|_| ParseError::Malformed { kind: "attribute", position })?;
        if attr.key.as_namespace_binding().is_some() {
            continue;
        }
        let (attr_ns, local) = reader.resolver().resolve_attribute(attr.key);
        let attr_ns = owned(attr_ns)?;
        let value = attr.normalized_value(XmlVersion::Implicit1_0).map_err(|_| ParseError::Entity)?;
        attrs.push((attr_ns, local.as_ref().to_owned(), value.into_owned()));
    }
    Ok(Node { ns, local: start.local_name().as_ref().to_owned(), attrs, ..Node::default() })
}

/// The expanded name of the root element (namespace, local name), reading no further than
/// its start tag; `None` for anything [`parse`] would refuse before it, or an unqualified root.
pub(crate) fn root_name(bytes: &[u8]) -> Option<(String, String)> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return None;
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).ok()?;
    let mut reader = NsReader::from_str(text);
    loop {
        match reader.read_resolved_event().ok()? {
            (ResolveResult::Bound(ns), Event::Start(e) | Event::Empty(e)) => {
                return Some((ns.0.to_owned(), e.local_name().as_ref().to_owned()));
            }
            (_, Event::Start(_) | Event::Empty(_) | Event::DocType(_) | Event::Eof) => return None,
            _ => {}
        }
    }
}

/// A resolved namespace as an owned URI; an undeclared prefix is an error.
fn owned(ns: ResolveResult<'_>) -> Result<Option<String>, ParseError> {
    match ns {
        ResolveResult::Bound(ns) => Ok(Some(ns.0.to_owned())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(_) => Err(ParseError::UnboundPrefix),
    }
}

/// The namespace of the prefix of `text` when `text` is a prefixed QName.
fn text_qname_namespace(reader: &NsReader<&[u8]>, text: &str) -> Option<String> {
    let text = text.trim();
    let (prefix, local) = text.split_once(':')?;
    let name_like = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
            && s.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    if !name_like(prefix) || !name_like(local) {
        return None;
    }
    match reader.resolver().resolve_element(QName(text)).0 {
        ResolveResult::Bound(ns) => Some(ns.0.to_owned()),
        _ => None,
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
        E::Namespace(_) => "namespace",
    };
    ParseError::Malformed { kind, position }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_namespaced_tree() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<a:root xmlns:a="urn:a" xmlns="urn:d"><child x="1" a:y="&lt;2">t&amp;<![CDATA[<c>]]>&#1071;</child><a:q>a:Sender</a:q><e/></a:root>"#;
        let root = parse(xml.as_bytes()).unwrap();
        assert!(root.is("urn:a", "root"));
        let child = root.child("urn:d", "child").unwrap();
        assert_eq!(child.text, "t&<c>Я");
        assert_eq!(child.attr("x"), Some("1"));
        assert_eq!(child.attrs[1], (Some("urn:a".to_owned()), "y".to_owned(), "<2".to_owned()));
        assert_eq!(root.child("urn:a", "q").unwrap().text_ns.as_deref(), Some("urn:a"));
        assert!(root.child("urn:d", "e").is_some());
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
            assert_eq!(parse(xml.as_bytes()).unwrap_err(), *expected, "{xml}");
        }
        assert!(matches!(parse(b"<r><a></r>"), Err(ParseError::Malformed { .. })));
        assert_eq!(parse(b"<r>\xff</r>").unwrap_err(), ParseError::NotUtf8);
        let deep = format!("{}{}", "<a>".repeat(MAX_DEPTH + 1), "</a>".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(deep.as_bytes()).unwrap_err(), ParseError::TooDeep { limit: MAX_DEPTH });
        let big = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert_eq!(parse(&big).unwrap_err(), ParseError::TooLarge { limit: MAX_MESSAGE_BYTES });
        let many = format!("<r>{}</r>", "<a/>".repeat(MAX_ELEMENTS));
        assert_eq!(parse(many.as_bytes()).unwrap_err(), ParseError::TooManyElements { limit: MAX_ELEMENTS });
    }

    #[test]
    fn accepts_a_bom() {
        assert!(parse(b"\xEF\xBB\xBF<r/>").is_ok());
    }
}
