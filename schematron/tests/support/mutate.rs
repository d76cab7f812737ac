//! Deterministic mutations of a valid document: the corpus the reference findings were made
//! for (`tests/reference/`), and the inputs of the property tests.
//!
//! The generator must not change: `mutant(sample, seed)` is the document the committed
//! reference was produced from. A new kind of mutation is a new function, with a new
//! reference.

/// A tiny, stable PRNG (SplitMix64): the corpus must not depend on a crate's version.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug, Clone)]
pub enum Node {
    Element(Element),
    Text(String),
    Comment(String),
}

#[derive(Debug, Clone)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

/// Reads a document (names as written, namespace declarations as attributes).
pub fn read(xml: &str) -> Element {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Element> = vec![Element { name: String::new(), attrs: vec![], children: vec![] }];
    let open = |e: &quick_xml::events::BytesStart<'_>| Element {
        name: e.name().as_ref().to_owned(),
        attrs: e
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                (
                    a.key.as_ref().to_owned(),
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0).unwrap().into_owned(),
                )
            })
            .collect(),
        children: vec![],
    };
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => stack.push(open(&e)),
            Event::Empty(e) => {
                let el = open(&e);
                stack.last_mut().unwrap().children.push(Node::Element(el));
            }
            Event::End(_) => {
                let el = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(Node::Element(el));
            }
            Event::Text(t) => stack.last_mut().unwrap().children.push(Node::Text(t.xml10_content().into_owned())),
            Event::GeneralRef(r) => {
                let s = match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_xml_entity(&r).unwrap().to_owned(),
                };
                stack.last_mut().unwrap().children.push(Node::Text(s));
            }
            Event::CData(t) => stack.last_mut().unwrap().children.push(Node::Text(t.xml10_content().into_owned())),
            Event::Comment(c) => stack.last_mut().unwrap().children.push(Node::Comment(c.xml10_content().into_owned())),
            Event::Eof => break,
            _ => {}
        }
    }
    let mut doc = stack.pop().unwrap();
    doc.children.retain(|c| matches!(c, Node::Element(_)));
    match doc.children.pop() {
        Some(Node::Element(root)) => root,
        _ => panic!("no root element"),
    }
}

fn escape(s: &str, attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            _ => out.push(c),
        }
    }
    out
}

fn write_element(e: &Element, out: &mut String) {
    out.push('<');
    out.push_str(&e.name);
    for (k, v) in &e.attrs {
        out.push_str(&format!(" {k}=\"{}\"", escape(v, true)));
    }
    if e.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for c in &e.children {
        match c {
            Node::Element(el) => write_element(el, out),
            Node::Text(t) => out.push_str(&escape(t, false)),
            Node::Comment(c) => out.push_str(&format!("<!--{c}-->")),
        }
    }
    out.push_str(&format!("</{}>", e.name));
}

pub fn write(root: &Element) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    write_element(root, &mut out);
    out.push('\n');
    out
}

/// Index paths of every element below the root, in document order.
fn element_paths(e: &Element, prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    for (i, c) in e.children.iter().enumerate() {
        if let Node::Element(el) = c {
            prefix.push(i);
            out.push(prefix.clone());
            element_paths(el, prefix, out);
            prefix.pop();
        }
    }
}

fn at<'a>(root: &'a mut Element, path: &[usize]) -> &'a mut Element {
    let mut e = root;
    for &i in path {
        e = match &mut e.children[i] {
            Node::Element(el) => el,
            _ => unreachable!("paths name elements"),
        };
    }
    e
}

fn all_attribute_values(e: &Element, name: &str, out: &mut Vec<String>) {
    for (k, v) in &e.attrs {
        if k == name {
            out.push(v.clone());
        }
    }
    for c in &e.children {
        if let Node::Element(el) = c {
            all_attribute_values(el, name, out);
        }
    }
}

fn all_names(e: &Element, out: &mut Vec<String>) {
    for c in &e.children {
        if let Node::Element(el) = c {
            out.push(el.name.clone());
            all_names(el, out);
        }
    }
}

/// One mutation, chosen by `rng`, applied to `root`; a short description of it.
pub fn mutate_once(root: &mut Element, rng: &mut Rng) -> String {
    let mut paths = Vec::new();
    element_paths(root, &mut Vec::new(), &mut paths);
    if paths.is_empty() {
        return "nothing".into();
    }
    let path = paths[rng.below(paths.len())].clone();
    let roll = rng.below(100);
    if roll < 20 {
        let (parent, last) = path.split_at(path.len() - 1);
        let name = at(root, &path).name.clone();
        at(root, parent).children.remove(last[0]);
        return format!("remove <{name}>");
    }
    if roll < 30 {
        let (parent, last) = path.split_at(path.len() - 1);
        let copy = at(root, &path).clone();
        at(root, parent).children.insert(last[0] + 1, Node::Element(copy));
        return "duplicate".into();
    }
    let mut pool = Vec::new();
    if roll >= 85 {
        all_names(root, &mut pool);
    }
    let element = at(root, &path);
    let plain: Vec<usize> = (0..element.attrs.len()).filter(|&i| !element.attrs[i].0.starts_with("xmlns")).collect();
    if roll < 45 {
        if plain.is_empty() {
            return "nothing".into();
        }
        let i = plain[rng.below(plain.len())];
        let (k, _) = element.attrs.remove(i);
        return format!("remove @{k}");
    }
    if roll < 70 {
        if plain.is_empty() {
            return "nothing".into();
        }
        let i = plain[rng.below(plain.len())];
        let name = element.attrs[i].0.clone();
        let old = element.attrs[i].1.clone();
        let new = match rng.below(6) {
            0 => String::new(),
            1 => "X".to_owned(),
            2 => {
                let mut chars: Vec<char> = old.chars().collect();
                if !chars.is_empty() {
                    let j = rng.below(chars.len());
                    chars[j] = ['0', '9', 'a', '.', '-', 'Z'][rng.below(6)];
                }
                chars.into_iter().collect()
            }
            3 => format!("{old}1"),
            4 => {
                let mut values = Vec::new();
                all_attribute_values(root, &name, &mut values);
                let v = values[rng.below(values.len())].clone();
                let element = at(root, &path);
                element.attrs[i].1 = v.clone();
                return format!("@{name} from elsewhere");
            }
            _ => old.chars().take(old.chars().count() / 2).collect(),
        };
        element.attrs[i].1 = new;
        return format!("change @{name}");
    }
    if roll < 80 {
        if let Some(a) = element.attrs.iter_mut().find(|(k, _)| k == "nullFlavor") {
            a.1 = "UNK".into();
        } else {
            element.attrs.push(("nullFlavor".into(), "NI".into()));
        }
        return "nullFlavor".into();
    }
    if roll < 85 {
        let texts: Vec<usize> = (0..element.children.len())
            .filter(|&i| matches!(&element.children[i], Node::Text(t) if !t.trim().is_empty()))
            .collect();
        if texts.is_empty() {
            element.children.push(Node::Text("X".into()));
            return "add text".into();
        }
        let i = texts[rng.below(texts.len())];
        element.children[i] = Node::Text(if rng.below(2) == 0 { String::new() } else { "X".into() });
        return "change text".into();
    }
    if roll < 92 {
        let prefix = element.name.split_once(':').map(|(p, _)| p.to_owned());
        let same: Vec<&String> =
            pool.iter().filter(|n| n.split_once(':').map(|(p, _)| p.to_owned()) == prefix).collect();
        let new = same[rng.below(same.len())].clone();
        element.name = new;
        return "rename".into();
    }
    // Swap with the next element sibling.
    let (parent, last) = path.split_at(path.len() - 1);
    let parent = at(root, parent);
    let next = (last[0] + 1..parent.children.len()).find(|&j| matches!(parent.children[j], Node::Element(_)));
    if let Some(j) = next {
        parent.children.swap(last[0], j);
        return "swap".into();
    }
    "nothing".into()
}

/// Mutant `seed` of `sample`: one to three mutations.
pub fn mutant(sample: &str, seed: u64) -> String {
    let mut root = read(sample);
    let mut rng = Rng::new(seed);
    let n = 1 + rng.below(3);
    for _ in 0..n {
        mutate_once(&mut root, &mut rng);
    }
    write(&root)
}
