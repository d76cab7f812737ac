//! The document as the rules see it: an arena of nodes in document order, built in one pass
//! with quick-xml ([`Document::parse`]).
//!
//! Node ids are positions in document order: an element, then its attributes, then its
//! children's subtrees. So an element's descendants are one contiguous range of ids (`//` is
//! a slice), its attributes the ids right after it, and sorting ids sorts nodes in document
//! order. Comments and processing instructions are not kept (no rule can name them), but
//! they still end a text node, as in the XPath data model.
//!
//! Every dimension is bounded ([`TreeLimits`]); a DTD is refused, as the gateway's header
//! parser refuses it before this one runs.

use std::collections::HashMap;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;

/// A node's place in [`Document::nodes`].
pub type NodeId = u32;
/// An interned expanded name (namespace URI, local name) of the document.
pub type NameId = u32;

/// Bounds on the tree built from one document.
#[derive(Debug, Clone, Copy)]
pub struct TreeLimits {
    /// Most nodes (elements, attributes and text nodes together).
    pub max_nodes: usize,
    /// Deepest element nesting.
    pub max_depth: usize,
}

impl Default for TreeLimits {
    fn default() -> Self {
        Self { max_nodes: 4_000_000, max_depth: 256 }
    }
}

/// Why a document could not be read into a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("документ не является корректным XML (позиция {position}): {reason}")]
    Malformed { position: u64, reason: String },
    #[error("документ не должен содержать DOCTYPE и объявлений сущностей (DTD)")]
    Dtd,
    #[error("документ больше допустимого: {0}")]
    OverLimit(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Root,
    Element,
    Attribute,
    Text,
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    /// The expanded name (elements and attributes); `u32::MAX` otherwise.
    pub name: NameId,
    /// The parent (an attribute's parent is its element); the root's is itself.
    pub parent: NodeId,
    /// One past the last node of this node's subtree (attributes and descendants).
    pub end: NodeId,
    /// Attributes: how many follow the element.
    pub attributes: u32,
    /// Attribute and text values: a range of [`Document::text`].
    pub value: (u32, u32),
    /// Among the parent's children of the same expanded name, 1-based (elements).
    pub position: u32,
}

/// A document read for the rules.
#[derive(Debug)]
pub struct Document {
    pub(crate) nodes: Vec<Node>,
    /// The interned names, by [`NameId`].
    pub(crate) names: Vec<(Box<str>, Box<str>)>,
    /// Namespace URI → local name → id.
    pub(crate) name_ids: HashMap<Box<str>, HashMap<Box<str>, NameId, Fnv>, Fnv>,
    /// Every element of each name, in document order.
    pub(crate) by_name: Vec<Vec<NodeId>>,
    pub(crate) text: String,
}

const NO_NAME: NameId = u32::MAX;

/// FNV-1a for the name maps: short keys looked up for every element and attribute, where
/// SipHash's resistance to chosen collisions buys nothing (a document has at most a few
/// hundred distinct names within its limits).
#[derive(Default, Clone, Copy)]
pub(crate) struct Fnv;

impl std::hash::BuildHasher for Fnv {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(0xcbf2_9ce4_8422_2325)
    }
}

pub(crate) struct FnvHasher(u64);

impl std::hash::Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl Document {
    /// Reads `bytes` (UTF-8 XML) into a tree.
    pub fn parse(bytes: &[u8], limits: &TreeLimits) -> Result<Document, TreeError> {
        Builder::new(limits).run(bytes)
    }

    /// How many nodes the tree holds.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a document has at least its root.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub(crate) fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    /// The name id of an expanded name, if the document has it.
    pub(crate) fn name_id(&self, ns: &str, local: &str) -> Option<NameId> {
        self.name_ids.get(ns)?.get(local).copied()
    }

    pub(crate) fn value(&self, id: NodeId) -> &str {
        let (start, len) = self.node(id).value;
        &self.text[start as usize..(start + len) as usize]
    }

    /// The string value: an attribute's or a text node's value, or the text of an
    /// element's (or the root's) descendants.
    pub(crate) fn string_value(&self, id: NodeId) -> std::borrow::Cow<'_, str> {
        let node = self.node(id);
        match node.kind {
            Kind::Attribute | Kind::Text => self.value(id).into(),
            Kind::Element | Kind::Root => {
                let mut texts = (id + 1..node.end).filter(|&d| self.node(d).kind == Kind::Text);
                match (texts.next(), texts.next()) {
                    (None, _) => "".into(),
                    (Some(one), None) => self.value(one).into(),
                    (Some(a), Some(b)) => {
                        let mut s = String::from(self.value(a));
                        s.push_str(self.value(b));
                        for t in texts {
                            s.push_str(self.value(t));
                        }
                        s.into()
                    }
                }
            }
        }
    }

    /// The element's attributes, as node ids.
    pub(crate) fn attributes(&self, id: NodeId) -> std::ops::Range<NodeId> {
        id + 1..id + 1 + self.node(id).attributes
    }

    /// The node's children (elements and text), in document order.
    pub(crate) fn children(&self, id: NodeId) -> Children<'_> {
        let node = self.node(id);
        Children { doc: self, next: id + 1 + node.attributes, end: node.end }
    }

    /// The location of a node as REMD prints it: `/ClinicalDocument[1]/recordTarget[1]/@code`
    /// (local names, the position among same-named siblings; namespaces removed).
    pub fn location(&self, id: NodeId) -> String {
        let mut chain = Vec::new();
        let mut at = id;
        while self.node(at).kind != Kind::Root {
            chain.push(at);
            at = self.node(at).parent;
        }
        let mut out = String::new();
        for &n in chain.iter().rev() {
            let node = self.node(n);
            out.push('/');
            match node.kind {
                Kind::Element => {
                    out.push_str(&self.names[node.name as usize].1);
                    out.push('[');
                    out.push_str(&node.position.to_string());
                    out.push(']');
                }
                Kind::Attribute => {
                    out.push('@');
                    out.push_str(&self.names[node.name as usize].1);
                }
                Kind::Text => {
                    let parent = node.parent;
                    let position = self.children(parent).filter(|&c| self.node(c).kind == Kind::Text && c <= n).count();
                    out.push_str(&format!("text()[{position}]"));
                }
                Kind::Root => {}
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }
}

/// The children of a node: each child's subtree is skipped to reach the next.
pub(crate) struct Children<'a> {
    doc: &'a Document,
    next: NodeId,
    end: NodeId,
}

impl Iterator for Children<'_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        if self.next >= self.end {
            return None;
        }
        let id = self.next;
        self.next = self.doc.node(id).end;
        Some(id)
    }
}

struct Builder<'l> {
    limits: &'l TreeLimits,
    doc: Document,
    /// Open elements, and for each the count of its children by name (few names each).
    stack: Vec<(NodeId, Vec<(NameId, u32)>)>,
    /// The text node being built, if any.
    open_text: Option<NodeId>,
}

impl<'l> Builder<'l> {
    fn new(limits: &'l TreeLimits) -> Self {
        let root =
            Node { kind: Kind::Root, name: NO_NAME, parent: 0, end: 1, attributes: 0, value: (0, 0), position: 1 };
        Self {
            limits,
            doc: Document {
                nodes: vec![root],
                names: Vec::new(),
                name_ids: HashMap::default(),
                by_name: Vec::new(),
                text: String::new(),
            },
            stack: vec![(0, Vec::new())],
            open_text: None,
        }
    }

    fn malformed(reader: &NsReader<&[u8]>, reason: impl std::fmt::Display) -> TreeError {
        TreeError::Malformed { position: reader.error_position(), reason: reason.to_string() }
    }

    fn intern(&mut self, ns: &str, local: &str) -> NameId {
        if let Some(id) = self.doc.name_id(ns, local) {
            return id;
        }
        let id = self.doc.names.len() as NameId;
        self.doc.names.push((Box::from(ns), Box::from(local)));
        self.doc.name_ids.entry(Box::from(ns)).or_default().insert(Box::from(local), id);
        self.doc.by_name.push(Vec::new());
        id
    }

    fn push(&mut self, node: Node) -> Result<NodeId, TreeError> {
        if self.doc.nodes.len() >= self.limits.max_nodes {
            return Err(TreeError::OverLimit("слишком много узлов"));
        }
        let id = self.doc.nodes.len() as NodeId;
        self.doc.nodes.push(node);
        Ok(id)
    }

    fn add_text(&mut self, text: &str) -> Result<(), TreeError> {
        if self.stack.len() == 1 {
            // Outside the root element only whitespace is allowed, and it is not a node.
            return Ok(());
        }
        let parent = self.stack.last().map(|(id, _)| *id).unwrap_or(0);
        let start = self.doc.text.len() as u32;
        self.doc.text.push_str(text);
        if self.doc.text.len() > u32::MAX as usize / 2 {
            return Err(TreeError::OverLimit("слишком много текста"));
        }
        match self.open_text {
            Some(id) => self.doc.nodes[id as usize].value.1 += text.len() as u32,
            None => {
                let id = self.push(Node {
                    kind: Kind::Text,
                    name: NO_NAME,
                    parent,
                    end: 0,
                    attributes: 0,
                    value: (start, text.len() as u32),
                    position: 0,
                })?;
                self.doc.nodes[id as usize].end = id + 1;
                self.open_text = Some(id);
            }
        }
        Ok(())
    }

    fn start(&mut self, reader: &NsReader<&[u8]>, ns: &str, e: &BytesStart<'_>) -> Result<(), TreeError> {
        self.open_text = None;
        if self.stack.len() > self.limits.max_depth {
            return Err(TreeError::OverLimit("слишком глубокая вложенность элементов"));
        }
        if self.stack.len() == 1 && self.doc.nodes.len() > 1 {
            return Err(Self::malformed(reader, "второй корневой элемент"));
        }
        let local = e.local_name().into_inner();
        let name = self.intern(ns, local);
        let (parent, counts) = self.stack.last_mut().expect("the root is never popped");
        let parent = *parent;
        let position = match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, count)) => {
                *count += 1;
                *count
            }
            None => {
                counts.push((name, 1));
                1
            }
        };
        let id =
            self.push(Node { kind: Kind::Element, name, parent, end: 0, attributes: 0, value: (0, 0), position })?;
        self.doc.by_name[name as usize].push(id);
        let mut attributes = 0;
        for attr in e.attributes() {
            let attr = attr.map_err(|err| Self::malformed(reader, err))?;
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let (ans, alocal) = reader.resolver().resolve_attribute(attr.key);
            let ans = match ans {
                ResolveResult::Bound(Namespace(n)) => n,
                ResolveResult::Unbound => "",
                ResolveResult::Unknown(p) => {
                    return Err(Self::malformed(reader, format!("не объявлен префикс {}", p)));
                }
            };
            let alocal = alocal.into_inner();
            let aname = self.intern(ans, alocal);
            let value = attr.normalized_value(XmlVersion::Implicit1_0).map_err(|err| Self::malformed(reader, err))?;
            let start = self.doc.text.len() as u32;
            self.doc.text.push_str(&value);
            let aid = self.push(Node {
                kind: Kind::Attribute,
                name: aname,
                parent: id,
                end: 0,
                attributes: 0,
                value: (start, value.len() as u32),
                position: 1,
            })?;
            self.doc.nodes[aid as usize].end = aid + 1;
            attributes += 1;
        }
        self.doc.nodes[id as usize].attributes = attributes;
        self.stack.push((id, Vec::new()));
        Ok(())
    }

    fn end(&mut self) {
        self.open_text = None;
        if let Some((id, _)) = self.stack.pop() {
            self.doc.nodes[id as usize].end = self.doc.nodes.len() as NodeId;
        }
    }

    fn run(mut self, bytes: &[u8]) -> Result<Document, TreeError> {
        let mut reader = NsReader::from_reader(bytes);
        reader.config_mut().check_end_names = true;
        loop {
            let (ns, event) = match reader.read_resolved_event() {
                Ok((ResolveResult::Bound(Namespace(n)), event)) => (Ok(n.to_owned()), event),
                Ok((ResolveResult::Unbound, event)) => (Ok(String::new()), event),
                Ok((ResolveResult::Unknown(p), event)) => (Err(format!("не объявлен префикс {p}")), event),
                Err(e) => {
                    return Err(TreeError::Malformed { position: reader.error_position(), reason: e.to_string() });
                }
            };
            match event {
                Event::DocType(_) => return Err(TreeError::Dtd),
                Event::Start(e) => {
                    let ns = ns.map_err(|m| Self::malformed(&reader, m))?;
                    self.start(&reader, &ns, &e)?;
                }
                Event::Empty(e) => {
                    let ns = ns.map_err(|m| Self::malformed(&reader, m))?;
                    self.start(&reader, &ns, &e)?;
                    self.end();
                }
                Event::End(_) => self.end(),
                Event::Text(t) => {
                    let text = t.xml10_content();
                    if self.stack.len() == 1 && !text.trim().is_empty() {
                        return Err(Self::malformed(&reader, "текст вне корневого элемента"));
                    }
                    self.add_text(&text)?;
                }
                Event::CData(t) => {
                    let text = t.xml10_content();
                    self.add_text(&text)?;
                }
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref().map_err(|e| Self::malformed(&reader, e))? {
                        Some(c) => c.to_string(),
                        None => match quick_xml::escape::resolve_xml_entity(&r) {
                            Some(s) => s.to_owned(),
                            None => {
                                return Err(Self::malformed(&reader, format_args!("неизвестная сущность &{};", &*r)));
                            }
                        },
                    };
                    self.add_text(&resolved)?;
                }
                Event::Comment(_) | Event::PI(_) => self.open_text = None,
                Event::Decl(_) => {}
                Event::Eof => break,
            }
        }
        if self.stack.len() != 1 {
            return Err(TreeError::Malformed {
                position: reader.buffer_position(),
                reason: "документ оборван: элемент не закрыт".into(),
            });
        }
        if self.doc.nodes.len() == 1 {
            return Err(TreeError::Malformed {
                position: 0, reason: "нет корневого элемента".into()
            });
        }
        self.doc.nodes[0].end = self.doc.nodes.len() as NodeId;
        Ok(self.doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_document_order_and_subtrees_are_ranges() {
        let doc = Document::parse(
            br#"<a xmlns="urn:x" k="1"><b>t1<!--c-->t2</b><b/><i:c xmlns:i="urn:i" i:q="2"/></a>"#,
            &TreeLimits::default(),
        )
        .unwrap();
        // root, a, @k, b, text, text, b, c, @q
        assert_eq!(doc.len(), 9);
        assert_eq!(doc.node(1).end, 9);
        assert_eq!(doc.attributes(1), 2..3);
        assert_eq!(doc.children(1).collect::<Vec<_>>(), vec![3, 6, 7]);
        assert_eq!(doc.string_value(3), "t1t2");
        assert_eq!(doc.location(6), "/a[1]/b[2]");
        assert_eq!(doc.location(8), "/a[1]/c[1]/@q");
        assert_eq!(doc.location(5), "/a[1]/b[1]/text()[2]");
        assert_eq!(doc.name_id("urn:i", "c").map(|n| doc.by_name[n as usize].clone()), Some(vec![7]));
    }

    #[test]
    fn dtd_and_limits_are_refused() {
        assert_eq!(
            Document::parse(b"<!DOCTYPE a [<!ENTITY x 'y'>]><a/>", &TreeLimits::default()).unwrap_err(),
            TreeError::Dtd
        );
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert!(matches!(
            Document::parse(deep.as_bytes(), &TreeLimits { max_nodes: 1000, max_depth: 30 }),
            Err(TreeError::OverLimit(_))
        ));
        let wide = "<a>".to_owned() + &"<b/>".repeat(100) + "</a>";
        assert!(matches!(
            Document::parse(wide.as_bytes(), &TreeLimits { max_nodes: 50, max_depth: 30 }),
            Err(TreeError::OverLimit(_))
        ));
        assert!(matches!(Document::parse(b"<a><b></a>", &TreeLimits::default()), Err(TreeError::Malformed { .. })));
    }
}
