//! The CDA header, read once into typed values ([`CdaHeader::parse`]).
//!
//! Parsing is structural: it rejects only what makes the document unreadable or unsafe
//! (rule H1: a DTD or entity declarations, not UTF-8, another root element or namespace;
//! and XML that is not well-formed or over the limits). Everything else, including missing
//! elements, is recorded as found and judged by [`crate::check`], so that all problems are
//! reported together.
//!
//! Every dimension of the input is bounded, each by a named constant below, so that no
//! document within the size limit can make the parse take much more memory or time than
//! reading it: element count, nesting, attributes per element and their size, names,
//! namespace URIs and bindings, the text the header keeps, and how often each repeated
//! header element (authors, authenticators, participants, …) may occur. Past a bound the
//! parse stops with one `XML` violation that names it.
//!
//! Elements are matched by namespace (`urn:hl7-org:v3`) and local name, never by prefix;
//! elements of other namespaces (`identity:`, `address:`, …) and their content are skipped.
//! Inside `component/structuredBody` only the codes of the top-level sections are noted.

use egisz_contract::{Personal, Snils, SnilsError};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;

use crate::time::{Hl7Time, TimeError};
use crate::violation::{Violation, rules};

/// The SNILS root (`id/@root` of the identifier that carries a SNILS).
pub const SNILS_ROOT: &str = "1.2.643.100.3";

/// The HL7 v3 namespace every CDA element lives in.
pub const HL7_NS: &str = "urn:hl7-org:v3";
/// The largest document accepted, in bytes. TMK protocols are a few tens of kilobytes.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;
/// The deepest element nesting accepted (CDA entries nest, but not this deep).
pub const MAX_DEPTH: usize = 128;
/// Most elements in one document (a 10 MiB protocol has a few hundred thousand).
pub const MAX_ELEMENTS: usize = 1_000_000;
/// Most attributes (namespace declarations included) on one element.
pub const MAX_ATTRIBUTES: usize = 64;
/// Longest value of one attribute, in bytes.
pub const MAX_ATTRIBUTE_BYTES: usize = 64 * 1024;
/// Longest element or attribute name (prefix included), in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest namespace URI, in bytes.
pub const MAX_NAMESPACE_URI_BYTES: usize = 1024;
/// Most namespace bindings in scope at once.
pub const MAX_NAMESPACES_IN_SCOPE: usize = 32;
/// Longest text the header keeps (a part of a name, an organisation's name), in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Most `author` elements in the header.
pub const MAX_AUTHORS: usize = 32;
/// Most `legalAuthenticator` elements, and most `authenticator` elements, in the header.
pub const MAX_AUTHENTICATORS: usize = 8;
/// Most `participant` and `informationRecipient` elements in the header, together.
pub const MAX_PARTICIPANTS: usize = 64;
/// Most occurrences of any other repeated header element: `templateId`, `recordTarget`,
/// `custodian`, and the `id`, `name` and `given` of a person or organisation.
pub const MAX_REPEATS: usize = 32;
/// Most top-level sections of the structured body.
pub const MAX_SECTIONS: usize = 512;
/// Most coded elements (an element with `@codeSystem`) in one document, body included.
pub const MAX_CODED_ELEMENTS: usize = 20_000;

/// An instance identifier (`II`): `@root`, `@extension`, `@nullFlavor` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceId {
    pub root: Option<String>,
    pub extension: Option<String>,
    pub null_flavor: Option<String>,
}

/// A coded value (`CD`/`CE`/`CS`) as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodedValue {
    pub code: Option<String>,
    pub code_system: Option<String>,
    pub code_system_version: Option<String>,
    pub display_name: Option<String>,
    pub null_flavor: Option<String>,
}

/// A coded element anywhere in the document (any HL7 element with `@codeSystem`), for the
/// dictionary rule H13.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodedElement {
    /// Where: element names with their position among same-named siblings when it is not the
    /// first, e.g. `/ClinicalDocument/component/structuredBody/component[3]/section/code`.
    pub path: String,
    pub value: CodedValue,
}

/// A `time` element of a participation (`author/time`, `legalAuthenticator/time`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeElement {
    pub value: Option<String>,
    pub null_flavor: Option<String>,
}

/// A SNILS from an `id/@extension`: checked, never printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnilsField {
    /// No `@extension` (or an empty one).
    Absent,
    /// Written, but not a SNILS (the value itself is not kept).
    Invalid(SnilsError),
    Valid(Snils),
}

impl SnilsField {
    fn from_extension(extension: Option<&str>) -> Self {
        match extension.map(str::trim) {
            None | Some("") => SnilsField::Absent,
            // In a document the SNILS is 11 digits, no separators: REMD compares it as text.
            Some(s) if s.len() != 11 || !s.bytes().all(|b| b.is_ascii_digit()) => {
                SnilsField::Invalid(SnilsError::Format)
            }
            Some(s) => match Snils::parse(s) {
                Ok(snils) => SnilsField::Valid(snils),
                Err(e) => SnilsField::Invalid(e),
            },
        }
    }

    pub fn valid(&self) -> Option<&Snils> {
        match self {
            SnilsField::Valid(s) => Some(s),
            _ => None,
        }
    }
}

/// The identifier that carries a person's SNILS (`id[2]` of a patient, author or legal
/// authenticator). Its extension is read as a SNILS whatever the root, so it is never kept
/// as plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnilsId {
    pub root: Option<String>,
    pub null_flavor: Option<String>,
    pub snils: SnilsField,
}

/// A person's name: `family` and `given` (the first `given` is the name, the second the
/// patronymic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonName {
    pub family: Option<Personal<String>>,
    pub given: Vec<Personal<String>>,
}

impl PersonName {
    pub fn family(&self) -> Option<&str> {
        self.family.as_ref().map(|f| f.expose().as_str()).filter(|s| !s.is_empty())
    }

    pub fn name(&self) -> Option<&str> {
        self.given.first().map(|g| g.expose().as_str()).filter(|s| !s.is_empty())
    }

    pub fn patronymic(&self) -> Option<&str> {
        self.given.get(1).map(|g| g.expose().as_str()).filter(|s| !s.is_empty())
    }
}

/// An organisation (`providerOrganization`, `representedOrganization`,
/// `representedCustodianOrganization`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Organization {
    /// The first `id`.
    pub id: Option<InstanceId>,
    /// The first non-empty `name`.
    pub name: Option<String>,
    /// An `addr` element is present.
    pub has_address: bool,
}

/// `recordTarget/patientRole`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientRole {
    /// How many `id` elements there are.
    pub id_count: usize,
    /// `id[1]`: the MIS's patient id.
    pub local_id: Option<InstanceId>,
    /// `id[2]`: the SNILS.
    pub snils_id: Option<SnilsId>,
    /// Every `patient/name`, in order.
    pub names: Vec<PersonName>,
    /// `patient/administrativeGenderCode`.
    pub gender: Option<CodedValue>,
    /// `patient/birthTime/@value`; `None` when the element is absent.
    pub birth_time: Option<Result<Personal<Hl7Time>, TimeError>>,
    pub provider_organization: Option<Organization>,
}

impl PatientRole {
    pub fn name(&self) -> Option<&PersonName> {
        self.names.first()
    }
}

/// `author/assignedAuthor` or `legalAuthenticator/assignedEntity`: a medical worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignedPerson {
    /// How many `id` elements there are.
    pub id_count: usize,
    /// `id[1]`: the MIS's id of the worker.
    pub local_id: Option<InstanceId>,
    /// `id[2]`: the SNILS.
    pub snils_id: Option<SnilsId>,
    /// `code`: the position (NSI 1.2.643.5.1.13.13.11.1002).
    pub position: Option<CodedValue>,
    /// Every `assignedPerson/name`, in order.
    pub names: Vec<PersonName>,
    /// `representedOrganization`.
    pub organization: Option<Organization>,
}

impl AssignedPerson {
    pub fn name(&self) -> Option<&PersonName> {
        self.names.first()
    }

    pub fn snils(&self) -> Option<&Snils> {
        self.snils_id.as_ref().and_then(|i| i.snils.valid())
    }
}

/// `author`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Author {
    pub time: Option<TimeElement>,
    pub assigned: Option<AssignedPerson>,
}

/// `legalAuthenticator`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegalAuthenticator {
    pub time: Option<TimeElement>,
    pub signature_code: Option<CodedValue>,
    pub assigned: Option<AssignedPerson>,
}

/// `custodian`: `assignedCustodian/representedCustodianOrganization`, when present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Custodian {
    /// How many `representedCustodianOrganization` elements there are.
    pub organization_count: usize,
    pub organization: Option<Organization>,
}

/// The header of a CDA document as written. Elements that may occur once are the first
/// occurrence; counts are kept where the rules need them. Personal data (names, birth
/// time, SNILS) is held in redacting types: `{:?}` of a header is safe to log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdaHeader {
    /// `realmCode/@code`.
    pub realm_code: Option<String>,
    pub type_id: Option<InstanceId>,
    /// Every `templateId/@root`.
    pub template_ids: Vec<String>,
    /// `id`: `@root` is `<MO OID>.100.<MIS>.<instance>.51`, `@extension` the REMD `localUid`.
    pub id: Option<InstanceId>,
    /// `code`: the document type in NSI 1.2.643.5.1.13.13.11.1522.
    pub code: Option<CodedValue>,
    /// `effectiveTime/@value`; `None` when the element is absent.
    pub effective_time: Option<Result<Hl7Time, TimeError>>,
    pub confidentiality: Option<CodedValue>,
    /// `languageCode/@code`.
    pub language_code: Option<String>,
    pub set_id: Option<InstanceId>,
    /// `versionNumber/@value`.
    pub version_number: Option<String>,
    /// How many `recordTarget` elements there are.
    pub record_target_count: usize,
    /// The `patientRole` of the first `recordTarget`.
    pub patient: Option<PatientRole>,
    pub authors: Vec<Author>,
    pub custodians: Vec<Custodian>,
    pub legal_authenticators: Vec<LegalAuthenticator>,
    /// `component/structuredBody` is present.
    pub structured_body: bool,
    /// `code` of each top-level `structuredBody/component/section`, in order.
    pub sections: Vec<CodedValue>,
    /// Every coded element of the document, header and body, in document order.
    pub coded: Vec<CodedElement>,
}

impl CdaHeader {
    /// `id/@extension`, the REMD `localUid`, when non-empty.
    pub fn local_uid(&self) -> Option<&str> {
        self.id.as_ref().and_then(|i| i.extension.as_deref()).map(str::trim).filter(|s| !s.is_empty())
    }

    pub fn legal_authenticator(&self) -> Option<&LegalAuthenticator> {
        self.legal_authenticators.first()
    }

    pub fn has_section(&self, code: &str) -> bool {
        self.sections.iter().any(|s| s.code.as_deref() == Some(code))
    }

    /// Parses the header of a CDA document. `Err` only for what makes the document
    /// unreadable (rule H1, or `XML`: not well-formed, too large, too deep); everything else
    /// is left to [`crate::check`].
    pub fn parse(bytes: &[u8]) -> Result<CdaHeader, Vec<Violation>> {
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(vec![Violation::new(
                rules::XML,
                "/",
                format!("документ больше {} МБ", MAX_DOCUMENT_BYTES / (1024 * 1024)),
            )]);
        }
        if let Some(v) = encoding(bytes) {
            return Err(vec![v]);
        }
        Parser::default().run(bytes).map_err(|v| vec![v])
    }
}

/// How the bytes are encoded, as REMD reads them (UTF-8, no byte-order mark): each way of
/// getting it wrong named on its own (rule `ENC`), since an integrator sees only "not
/// valid" otherwise.
pub fn encoding(bytes: &[u8]) -> Option<Violation> {
    let v = |message: String| Some(Violation::new(rules::ENC, "/", message));
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return v("документ начинается с метки порядка байтов (BOM) UTF-8; РЭМД принимает UTF-8 без BOM — сохраните файл без неё, не меняя остального (и подпишите заново)".into());
    }
    if bytes.starts_with(&[0xFE, 0xFF])
        || bytes.starts_with(&[0xFF, 0xFE])
        || bytes.starts_with(&[0, b'<'])
        || bytes.starts_with(&[b'<', 0])
    {
        return v("документ в кодировке UTF-16; РЭМД принимает только UTF-8".into());
    }
    if let Some(declared) = declared_encoding(bytes)
        && !declared.eq_ignore_ascii_case("utf-8")
    {
        let shown: String = declared.chars().take(40).collect();
        return v(format!("в объявлении XML указана кодировка «{shown}»; РЭМД принимает только UTF-8"));
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return v(format!(
            "байты документа не являются корректным UTF-8 (позиция {}); РЭМД принимает только UTF-8",
            e.valid_up_to()
        ));
    }
    None
}

/// The `encoding` of the XML declaration, if the bytes start with one that names it.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = bytes.get(..bytes.len().min(512))?;
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = String::from_utf8_lossy(&head[..end]);
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].to_owned())
}

/// Element names the parser matches on; any other HL7 element is `OTHER`, any element of
/// another namespace `FOREIGN`, so that neither ever matches a path pattern.
const KNOWN: &[&str] = &[
    "ClinicalDocument",
    "realmCode",
    "typeId",
    "templateId",
    "id",
    "code",
    "effectiveTime",
    "confidentialityCode",
    "languageCode",
    "setId",
    "versionNumber",
    "recordTarget",
    "patientRole",
    "patient",
    "name",
    "family",
    "given",
    "administrativeGenderCode",
    "birthTime",
    "providerOrganization",
    "author",
    "time",
    "assignedAuthor",
    "assignedPerson",
    "representedOrganization",
    "custodian",
    "assignedCustodian",
    "representedCustodianOrganization",
    "addr",
    "legalAuthenticator",
    "signatureCode",
    "assignedEntity",
    "component",
    "structuredBody",
    "section",
];
const OTHER: &str = "*";
const FOREIGN: &str = "#";

fn intern(local: &str) -> &'static str {
    KNOWN.iter().find(|k| **k == local).copied().unwrap_or(OTHER)
}

/// The unprefixed attributes the rules look at.
#[derive(Default)]
struct Attrs {
    root: Option<String>,
    extension: Option<String>,
    code: Option<String>,
    code_system: Option<String>,
    code_system_version: Option<String>,
    display_name: Option<String>,
    null_flavor: Option<String>,
    value: Option<String>,
}

impl Attrs {
    fn ii(&self) -> InstanceId {
        InstanceId { root: self.root.clone(), extension: self.extension.clone(), null_flavor: self.null_flavor.clone() }
    }

    fn coded(&self) -> CodedValue {
        CodedValue {
            code: self.code.clone(),
            code_system: self.code_system.clone(),
            code_system_version: self.code_system_version.clone(),
            display_name: self.display_name.clone(),
            null_flavor: self.null_flavor.clone(),
        }
    }

    fn time(&self) -> TimeElement {
        TimeElement { value: self.value.clone(), null_flavor: self.null_flavor.clone() }
    }

    fn snils_id(&self) -> SnilsId {
        SnilsId {
            root: self.root.clone(),
            null_flavor: self.null_flavor.clone(),
            snils: SnilsField::from_extension(self.extension.as_deref()),
        }
    }
}

fn ts(value: Option<&str>) -> Result<Hl7Time, TimeError> {
    Hl7Time::parse(value.unwrap_or(""))
}

#[derive(Default)]
struct Parser {
    header: CdaHeader,
    stack: Vec<&'static str>,
    text: String,
    root_seen: bool,
    root_closed: bool,
    elements: usize,
    /// `authenticator`, `participant` and `informationRecipient` are only counted.
    authenticators: usize,
    participants: usize,
    /// Per open element: how many `id`, `name`, `given` children it has had so far.
    repeats: Vec<[usize; 3]>,
    /// Per open element: its children so far, by name, with how many of each.
    children: Vec<Vec<(Box<str>, u32)>>,
    /// Per open element below the root: its name's index in its parent's `children`, and
    /// its position among the siblings of that name (1-based).
    places: Vec<(usize, u32)>,
}

impl Parser {
    fn path(&self) -> String {
        if self.stack.is_empty() { "/".to_owned() } else { format!("/{}", self.stack.join("/")) }
    }

    fn xml_error(&self, reader: &NsReader<&[u8]>, what: impl std::fmt::Display) -> Violation {
        Violation::new(
            rules::XML,
            self.path(),
            format!("документ не является корректным XML (позиция {}): {what}", reader.error_position()),
        )
    }

    fn run(mut self, bytes: &[u8]) -> Result<CdaHeader, Violation> {
        let mut reader = NsReader::from_reader(bytes);
        reader.config_mut().check_end_names = true;
        reader.resolver_mut().set_max_namespace_bindings(MAX_NAMESPACES_IN_SCOPE);
        loop {
            let (in_hl7, event) = match reader.read_resolved_event() {
                Ok((ns, event)) => (matches!(ns, ResolveResult::Bound(Namespace(n)) if n == HL7_NS), event),
                Err(quick_xml::Error::Namespace(quick_xml::name::NamespaceError::TooManyBindings(_))) => {
                    return Err(self.over_limit(format!(
                        "больше {MAX_NAMESPACES_IN_SCOPE} объявлений пространств имён в области видимости"
                    )));
                }
                Err(e) => return Err(self.xml_error(&reader, e)),
            };
            match event {
                Event::DocType(_) => {
                    return Err(Violation::new(
                        rules::H1,
                        "/",
                        "документ не должен содержать DOCTYPE и объявлений сущностей (DTD)",
                    ));
                }
                Event::Decl(decl) => {
                    if let Some(enc) = decl.encoding() {
                        let enc = enc.map_err(|e| self.xml_error(&reader, e))?;
                        if !enc.eq_ignore_ascii_case("utf-8") {
                            return Err(Violation::new(rules::ENC, "/", "документ должен быть в кодировке UTF-8"));
                        }
                    }
                }
                Event::Start(e) => {
                    self.bounds(&reader, &e, in_hl7)?;
                    self.start(&reader, &e, in_hl7)?;
                    let place = self.sibling_of(&e, in_hl7);
                    self.coded(&reader, &e, in_hl7, place)?;
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(Violation::new(
                            rules::XML,
                            self.path(),
                            format!("вложенность элементов больше {MAX_DEPTH}"),
                        ));
                    }
                    self.stack.push(self.element_name(&e, in_hl7));
                    self.repeats.push([0; 3]);
                    self.places.extend(place);
                    self.children.push(Vec::new());
                    self.text.clear();
                }
                Event::Empty(e) => {
                    self.bounds(&reader, &e, in_hl7)?;
                    self.start(&reader, &e, in_hl7)?;
                    let place = self.sibling_of(&e, in_hl7);
                    self.coded(&reader, &e, in_hl7, place)?;
                    self.text.clear();
                    let name = self.element_name(&e, in_hl7);
                    self.end(name);
                    if self.stack.is_empty() {
                        self.root_closed = true;
                    }
                }
                Event::End(_) => {
                    self.repeats.pop();
                    self.children.pop();
                    self.places.pop();
                    if let Some(name) = self.stack.pop() {
                        self.end(name);
                    }
                    if self.stack.is_empty() {
                        self.root_closed = true;
                    }
                }
                Event::Text(t) => {
                    if self.capturing() {
                        self.capture(&t.xml10_content())?;
                    } else if self.stack.is_empty() && !t.xml10_content().trim().is_empty() {
                        return Err(self.xml_error(&reader, "текст вне корневого элемента"));
                    }
                }
                Event::CData(t) => {
                    if self.capturing() {
                        self.capture(&t.xml10_content())?;
                    }
                }
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref().map_err(|e| self.xml_error(&reader, e))? {
                        Some(c) => c.to_string(),
                        None => match quick_xml::escape::resolve_xml_entity(&r) {
                            Some(s) => s.to_owned(),
                            None => return Err(self.xml_error(&reader, format_args!("неизвестная сущность &{};", &*r))),
                        },
                    };
                    if self.capturing() {
                        self.capture(&resolved)?;
                    }
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        if !self.root_seen {
            return Err(Violation::new(rules::H1, "/", "нет корневого элемента ClinicalDocument"));
        }
        if !self.stack.is_empty() {
            return Err(Violation::new(rules::XML, self.path(), "документ оборван: элемент не закрыт"));
        }
        Ok(self.header)
    }

    /// [`Self::sibling`] by the element's local name (HL7) or qualified name (any other
    /// namespace, so that `identity:id` is not counted as an `id`).
    fn sibling_of(&mut self, e: &BytesStart<'_>, in_hl7: bool) -> Option<(usize, u32)> {
        if in_hl7 { self.sibling(e.local_name().as_ref()) } else { self.sibling(e.name().as_ref()) }
    }

    /// Counts an element among its parent's children: its name's index there and its
    /// position among same-named siblings (1-based). `None` for the root.
    fn sibling(&mut self, qname: &str) -> Option<(usize, u32)> {
        let siblings = self.children.last_mut()?;
        Some(match siblings.iter().position(|(n, _)| &**n == qname) {
            Some(i) => {
                siblings[i].1 += 1;
                (i, siblings[i].1)
            }
            None => {
                siblings.push((qname.into(), 1));
                (siblings.len() - 1, 1)
            }
        })
    }

    /// The path of a child named `qname` at `place` under the open elements.
    fn child_path(&self, qname: &str, place: (usize, u32)) -> String {
        let mut path = String::from("/ClinicalDocument");
        let step = |path: &mut String, name: &str, n: u32| {
            path.push('/');
            path.push_str(name);
            if n > 1 {
                path.push_str(&format!("[{n}]"));
            }
        };
        for (level, &(i, n)) in self.places.iter().enumerate() {
            step(&mut path, &self.children[level][i].0, n);
        }
        step(&mut path, qname, place.1);
        path
    }

    /// Keeps a coded element (H13) wherever it is, unless it lies in another namespace.
    fn coded(
        &mut self,
        reader: &NsReader<&[u8]>,
        e: &BytesStart<'_>,
        in_hl7: bool,
        place: Option<(usize, u32)>,
    ) -> Result<(), Violation> {
        let Some(place) = place else { return Ok(()) };
        if !in_hl7 || self.stack.contains(&FOREIGN) {
            return Ok(());
        }
        let local = e.local_name();
        let has_code_system = e.attributes().flatten().any(|a| a.key.as_ref() == "codeSystem");
        if !has_code_system {
            return Ok(());
        }
        if self.header.coded.len() >= MAX_CODED_ELEMENTS {
            return Err(self.over_limit(format!("больше {MAX_CODED_ELEMENTS} кодированных элементов")));
        }
        let value = self.attrs(reader, e)?.coded();
        let path = self.child_path(local.as_ref(), place);
        self.header.coded.push(CodedElement { path, value });
        Ok(())
    }

    fn over_limit(&self, what: impl std::fmt::Display) -> Violation {
        Violation::new(rules::XML, self.path(), format!("документ превышает ограничение разбора: {what}"))
    }

    /// Every bound of an element's start, checked before anything of it is kept.
    fn bounds(&mut self, reader: &NsReader<&[u8]>, e: &BytesStart<'_>, in_hl7: bool) -> Result<(), Violation> {
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            return Err(self.over_limit(format!("больше {MAX_ELEMENTS} элементов")));
        }
        if e.name().as_ref().len() > MAX_NAME_BYTES {
            return Err(self.over_limit(format!("имя элемента длиннее {MAX_NAME_BYTES} байт")));
        }
        for (count, attr) in e.attributes().enumerate() {
            if count >= MAX_ATTRIBUTES {
                return Err(self.over_limit(format!("у элемента больше {MAX_ATTRIBUTES} атрибутов")));
            }
            let attr = attr.map_err(|err| self.xml_error(reader, err))?;
            if attr.key.as_ref().len() > MAX_NAME_BYTES {
                return Err(self.over_limit(format!("имя атрибута длиннее {MAX_NAME_BYTES} байт")));
            }
            if attr.key.as_namespace_binding().is_some() {
                if attr.value.len() > MAX_NAMESPACE_URI_BYTES {
                    return Err(
                        self.over_limit(format!("URI пространства имён длиннее {MAX_NAMESPACE_URI_BYTES} байт"))
                    );
                }
            } else if attr.value.len() > MAX_ATTRIBUTE_BYTES {
                return Err(self.over_limit(format!("значение атрибута длиннее {MAX_ATTRIBUTE_BYTES} байт")));
            }
        }
        if !in_hl7 {
            return Ok(());
        }
        let local = e.local_name();
        let h = &self.header;
        let (count, limit, what) = match (&self.stack[..], local.as_ref()) {
            (["ClinicalDocument"], "author") => (h.authors.len() + 1, MAX_AUTHORS, "author"),
            (["ClinicalDocument"], "legalAuthenticator") => {
                (h.legal_authenticators.len() + 1, MAX_AUTHENTICATORS, "legalAuthenticator")
            }
            (["ClinicalDocument"], "authenticator") => {
                self.authenticators += 1;
                (self.authenticators, MAX_AUTHENTICATORS, "authenticator")
            }
            (["ClinicalDocument"], "participant" | "informationRecipient") => {
                self.participants += 1;
                (self.participants, MAX_PARTICIPANTS, "participant и informationRecipient")
            }
            (["ClinicalDocument"], "templateId") => (h.template_ids.len() + 1, MAX_REPEATS, "templateId"),
            (["ClinicalDocument"], "recordTarget") => (h.record_target_count + 1, MAX_REPEATS, "recordTarget"),
            (["ClinicalDocument"], "custodian") => (h.custodians.len() + 1, MAX_REPEATS, "custodian"),
            (["ClinicalDocument", "component", "structuredBody", "component", "section"], "code") => {
                (h.sections.len() + 1, MAX_SECTIONS, "разделов (section)")
            }
            (["ClinicalDocument", ..], name @ ("id" | "name" | "given")) if self.stack.len() <= 6 => {
                let slot = match name {
                    "id" => 0,
                    "name" => 1,
                    _ => 2,
                };
                let Some(counts) = self.repeats.last_mut() else { return Ok(()) };
                counts[slot] += 1;
                let what = match slot {
                    0 => "id в одном элементе",
                    1 => "name в одном элементе",
                    _ => "given в одном имени",
                };
                (counts[slot], MAX_REPEATS, what)
            }
            _ => return Ok(()),
        };
        if count > limit {
            return Err(self.over_limit(format!("больше {limit} элементов {what}")));
        }
        Ok(())
    }

    /// Keeps text of a name part, up to [`MAX_TEXT_BYTES`].
    fn capture(&mut self, text: &str) -> Result<(), Violation> {
        if self.text.len() + text.len() > MAX_TEXT_BYTES {
            return Err(self.over_limit(format!("текст элемента длиннее {MAX_TEXT_BYTES} байт")));
        }
        self.text.push_str(text);
        Ok(())
    }

    fn element_name(&self, e: &BytesStart<'_>, in_hl7: bool) -> &'static str {
        if in_hl7 { intern(e.local_name().as_ref()) } else { FOREIGN }
    }

    /// Text is kept only inside the leaf elements whose text the header needs.
    fn capturing(&self) -> bool {
        // Names in the body (its sections, entries) are not kept.
        matches!(self.stack.last(), Some(&("family" | "given" | "name"))) && self.stack.get(1) != Some(&"component")
    }

    fn attrs(&self, reader: &NsReader<&[u8]>, e: &BytesStart<'_>) -> Result<Attrs, Violation> {
        let mut attrs = Attrs::default();
        for attr in e.attributes() {
            let attr = attr.map_err(|err| self.xml_error(reader, err))?;
            let (ns, local) = reader.resolver().resolve_attribute(attr.key);
            if !matches!(ns, ResolveResult::Unbound) {
                continue;
            }
            let slot = match local.as_ref() {
                "root" => &mut attrs.root,
                "extension" => &mut attrs.extension,
                "code" => &mut attrs.code,
                "codeSystem" => &mut attrs.code_system,
                "codeSystemVersion" => &mut attrs.code_system_version,
                "displayName" => &mut attrs.display_name,
                "nullFlavor" => &mut attrs.null_flavor,
                "value" => &mut attrs.value,
                _ => continue,
            };
            let value = attr.normalized_value(XmlVersion::Implicit1_0).map_err(|err| self.xml_error(reader, err))?;
            *slot = Some(value.into_owned());
        }
        Ok(attrs)
    }

    fn start(&mut self, reader: &NsReader<&[u8]>, e: &BytesStart<'_>, in_hl7: bool) -> Result<(), Violation> {
        if self.root_closed {
            return Err(self.xml_error(reader, "второй корневой элемент"));
        }
        if !self.root_seen {
            self.root_seen = true;
            if !(in_hl7 && e.local_name().as_ref() == "ClinicalDocument") {
                return Err(Violation::new(
                    rules::H1,
                    "/",
                    "корневой элемент должен быть ClinicalDocument в пространстве имён urn:hl7-org:v3",
                ));
            }
            return Ok(());
        }
        let local = self.element_name(e, in_hl7);
        if local == OTHER || local == FOREIGN || self.stack.contains(&FOREIGN) || self.stack.contains(&OTHER) {
            return Ok(());
        }
        let a = self.attrs(reader, e)?;
        let h = &mut self.header;
        let first_target = h.record_target_count == 1;
        match (&self.stack[..], local) {
            (["ClinicalDocument"], "realmCode") => set_once(&mut h.realm_code, a.code),
            (["ClinicalDocument"], "typeId") => set_once(&mut h.type_id, Some(a.ii())),
            (["ClinicalDocument"], "templateId") => h.template_ids.extend(a.root),
            (["ClinicalDocument"], "id") => set_once(&mut h.id, Some(a.ii())),
            (["ClinicalDocument"], "code") => set_once(&mut h.code, Some(a.coded())),
            (["ClinicalDocument"], "effectiveTime") => set_once(&mut h.effective_time, Some(ts(a.value.as_deref()))),
            (["ClinicalDocument"], "confidentialityCode") => set_once(&mut h.confidentiality, Some(a.coded())),
            (["ClinicalDocument"], "languageCode") => set_once(&mut h.language_code, a.code),
            (["ClinicalDocument"], "setId") => set_once(&mut h.set_id, Some(a.ii())),
            (["ClinicalDocument"], "versionNumber") => set_once(&mut h.version_number, a.value),
            (["ClinicalDocument"], "recordTarget") => h.record_target_count += 1,
            (["ClinicalDocument", "recordTarget"], "patientRole") if first_target => {
                h.patient.get_or_insert_with(PatientRole::default);
            }
            (["ClinicalDocument", "recordTarget", "patientRole", rest @ ..], local) if first_target => {
                if let Some(p) = h.patient.as_mut() {
                    patient_start(p, rest, local, &a);
                }
            }
            (["ClinicalDocument"], "author") => h.authors.push(Author::default()),
            (["ClinicalDocument", "author"], "time") => {
                if let Some(author) = h.authors.last_mut() {
                    set_once(&mut author.time, Some(a.time()));
                }
            }
            (["ClinicalDocument", "author"], "assignedAuthor") => {
                if let Some(author) = h.authors.last_mut() {
                    author.assigned.get_or_insert_with(AssignedPerson::default);
                }
            }
            (["ClinicalDocument", "author", "assignedAuthor", rest @ ..], local) => {
                if let Some(p) = h.authors.last_mut().and_then(|x| x.assigned.as_mut()) {
                    assigned_start(p, rest, local, &a);
                }
            }
            (["ClinicalDocument"], "custodian") => h.custodians.push(Custodian::default()),
            (["ClinicalDocument", "custodian", "assignedCustodian"], "representedCustodianOrganization") => {
                if let Some(c) = h.custodians.last_mut() {
                    c.organization_count += 1;
                    c.organization.get_or_insert_with(Organization::default);
                }
            }
            (["ClinicalDocument", "custodian", "assignedCustodian", "representedCustodianOrganization"], local) => {
                if let Some(o) = h.custodians.last_mut().and_then(|c| c.organization.as_mut()) {
                    organization_start(o, local, &a);
                }
            }
            (["ClinicalDocument"], "legalAuthenticator") => h.legal_authenticators.push(LegalAuthenticator::default()),
            (["ClinicalDocument", "legalAuthenticator"], "time") => {
                if let Some(l) = h.legal_authenticators.last_mut() {
                    set_once(&mut l.time, Some(a.time()));
                }
            }
            (["ClinicalDocument", "legalAuthenticator"], "signatureCode") => {
                if let Some(l) = h.legal_authenticators.last_mut() {
                    set_once(&mut l.signature_code, Some(a.coded()));
                }
            }
            (["ClinicalDocument", "legalAuthenticator"], "assignedEntity") => {
                if let Some(l) = h.legal_authenticators.last_mut() {
                    l.assigned.get_or_insert_with(AssignedPerson::default);
                }
            }
            (["ClinicalDocument", "legalAuthenticator", "assignedEntity", rest @ ..], local) => {
                if let Some(p) = h.legal_authenticators.last_mut().and_then(|x| x.assigned.as_mut()) {
                    assigned_start(p, rest, local, &a);
                }
            }
            (["ClinicalDocument", "component"], "structuredBody") => h.structured_body = true,
            (["ClinicalDocument", "component", "structuredBody", "component", "section"], "code") => {
                h.sections.push(a.coded());
            }
            _ => {}
        }
        Ok(())
    }

    /// The end of an element: store the text of a name part.
    fn end(&mut self, local: &'static str) {
        if !matches!(local, "family" | "given" | "name") || self.stack.contains(&FOREIGN) {
            return;
        }
        let text = std::mem::take(&mut self.text).trim().to_owned();
        let h = &mut self.header;
        let first_target = h.record_target_count == 1;
        match &self.stack[..] {
            ["ClinicalDocument", "recordTarget", "patientRole", "patient", "name"] if first_target => {
                if let Some(n) = h.patient.as_mut().and_then(|p| p.names.last_mut()) {
                    name_part(n, local, text);
                }
            }
            ["ClinicalDocument", "recordTarget", "patientRole", "providerOrganization"] if first_target => {
                if let Some(o) = h.patient.as_mut().and_then(|p| p.provider_organization.as_mut()) {
                    org_name(o, local, text);
                }
            }
            ["ClinicalDocument", "author", "assignedAuthor", rest @ ..] => {
                if let Some(p) = h.authors.last_mut().and_then(|x| x.assigned.as_mut()) {
                    assigned_text(p, rest, local, text);
                }
            }
            ["ClinicalDocument", "legalAuthenticator", "assignedEntity", rest @ ..] => {
                if let Some(p) = h.legal_authenticators.last_mut().and_then(|x| x.assigned.as_mut()) {
                    assigned_text(p, rest, local, text);
                }
            }
            ["ClinicalDocument", "custodian", "assignedCustodian", "representedCustodianOrganization"] => {
                if let Some(o) = h.custodians.last_mut().and_then(|c| c.organization.as_mut()) {
                    org_name(o, local, text);
                }
            }
            _ => {}
        }
    }
}

fn set_once<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

fn patient_start(p: &mut PatientRole, rest: &[&str], local: &str, a: &Attrs) {
    match (rest, local) {
        ([], "id") => {
            // The SNILS by its root, wherever it stands: some kinds (160) give the patient
            // no MIS identifier, the SNILS being the only `id`.
            p.id_count += 1;
            if a.root.as_deref().map(str::trim) == Some(SNILS_ROOT) && p.snils_id.is_none() {
                p.snils_id = Some(a.snils_id());
            } else if p.local_id.is_none() {
                p.local_id = Some(a.ii());
            } else if p.snils_id.is_none() {
                p.snils_id = Some(a.snils_id());
            }
        }
        (["patient"], "name") => p.names.push(PersonName::default()),
        (["patient"], "administrativeGenderCode") => set_once(&mut p.gender, Some(a.coded())),
        (["patient"], "birthTime") => set_once(&mut p.birth_time, Some(ts(a.value.as_deref()).map(Personal))),
        ([], "providerOrganization") => {
            p.provider_organization.get_or_insert_with(Organization::default);
        }
        (["providerOrganization"], local) => {
            if let Some(o) = p.provider_organization.as_mut() {
                organization_start(o, local, a);
            }
        }
        _ => {}
    }
}

fn assigned_start(p: &mut AssignedPerson, rest: &[&str], local: &str, a: &Attrs) {
    match (rest, local) {
        ([], "id") => {
            p.id_count += 1;
            match p.id_count {
                1 => p.local_id = Some(a.ii()),
                2 => p.snils_id = Some(a.snils_id()),
                _ => {}
            }
        }
        ([], "code") => set_once(&mut p.position, Some(a.coded())),
        (["assignedPerson"], "name") => p.names.push(PersonName::default()),
        ([], "representedOrganization") => {
            p.organization.get_or_insert_with(Organization::default);
        }
        (["representedOrganization"], local) => {
            if let Some(o) = p.organization.as_mut() {
                organization_start(o, local, a);
            }
        }
        _ => {}
    }
}

fn organization_start(o: &mut Organization, local: &str, a: &Attrs) {
    match local {
        "id" => set_once(&mut o.id, Some(a.ii())),
        "addr" => o.has_address = true,
        _ => {}
    }
}

fn assigned_text(p: &mut AssignedPerson, rest: &[&str], local: &str, text: String) {
    match rest {
        ["assignedPerson", "name"] => {
            if let Some(n) = p.names.last_mut() {
                name_part(n, local, text);
            }
        }
        ["representedOrganization"] => {
            if let Some(o) = p.organization.as_mut() {
                org_name(o, local, text);
            }
        }
        _ => {}
    }
}

fn name_part(n: &mut PersonName, local: &str, text: String) {
    match local {
        "family" => set_once(&mut n.family, Some(Personal(text))),
        "given" => n.given.push(Personal(text)),
        _ => {}
    }
}

fn org_name(o: &mut Organization, local: &str, text: String) {
    if local == "name" && !text.is_empty() {
        set_once(&mut o.name, Some(text));
    }
}
