//! The XPath 3.1 subset: the expression tree ([`Expr`], read by [`parse`]) and its
//! evaluation over a [`Document`] ([`eval`]).
//!
//! Semantics follow XPath 3.1 where the ministry's files reach: sequences, atomisation of
//! nodes to `xs:untypedAtomic`, existential general comparisons (an untyped value compared
//! with a number is cast to `xs:double`, and a value that is not a number is error
//! `FORG0001`, as Saxon raises it), arrays atomised to their members, the effective boolean
//! value (`FORG0006` for a sequence of several atomic values), positional predicates in
//! axis order, and the function signatures (a sequence of two where one string is expected
//! is `XPTY0004`). A dynamic error ends the run as it ends Saxon's.
//!
//! Evaluation spends [`Fuel`]: every node an axis visits and every call costs one unit, so
//! no rule and no document can make a run take longer than its budget.

pub mod parse;
pub mod regex;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use crate::tree::{Document, Kind, NameId, NodeId};

pub use parse::{Names, SyntaxError, parse};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Child,
    Descendant,
    DescendantOrSelf,
    Attribute,
    SelfAxis,
    Parent,
    Ancestor,
    AncestorOrSelf,
    FollowingSibling,
    PrecedingSibling,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeTest {
    /// An expanded name, by the index the compiler interned it at.
    Name(u32),
    /// `*`: any element (any attribute on the attribute axis).
    AnyName,
    /// `prefix:*`.
    Namespace(String),
    /// `*:local`.
    Local(String),
    Text,
    AnyNode,
    AnyElement,
    AnyAttribute,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub axis: Axis,
    pub test: NodeTest,
    pub predicates: Vec<Expr>,
    /// The last step of a rule's context: in its predicates `current()` is the node being
    /// matched (XSLT patterns), not the rule's context.
    pub matched: bool,
}

impl Step {
    pub fn descendant_or_self() -> Self {
        Step { axis: Axis::DescendantOrSelf, test: NodeTest::AnyNode, predicates: Vec::new(), matched: false }
    }
}

/// A comparison: of general comparisons (`=`, `!=`, `<`, …: existential over sequences) and
/// value comparisons (`eq`, `ne`, `lt`, …: one value each), as [`Expr`] says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The functions the subset knows. Their names and arities are checked when a package is
/// compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Count,
    Not,
    Matches,
    Last,
    Position,
    Substring,
    StringLength,
    Empty,
    Exists,
    NormalizeSpace,
    Current,
    String,
    Contains,
    StartsWith,
    EndsWith,
    Boolean,
    True,
    False,
    Number,
    Concat,
    LowerCase,
    UpperCase,
}

impl Func {
    pub fn by_name(name: &str, arity: usize) -> Result<Func, SyntaxError> {
        let (f, ok) = match name {
            "count" => (Func::Count, arity == 1),
            "not" => (Func::Not, arity == 1),
            "matches" => (Func::Matches, arity == 2 || arity == 3),
            "last" => (Func::Last, arity == 0),
            "position" => (Func::Position, arity == 0),
            "substring" => (Func::Substring, arity == 2 || arity == 3),
            "string-length" => (Func::StringLength, arity <= 1),
            "empty" => (Func::Empty, arity == 1),
            "exists" => (Func::Exists, arity == 1),
            "normalize-space" => (Func::NormalizeSpace, arity <= 1),
            "current" => (Func::Current, arity == 0),
            "string" => (Func::String, arity <= 1),
            "contains" => (Func::Contains, arity == 2),
            "starts-with" => (Func::StartsWith, arity == 2),
            "ends-with" => (Func::EndsWith, arity == 2),
            "boolean" => (Func::Boolean, arity == 1),
            "true" => (Func::True, arity == 0),
            "false" => (Func::False, arity == 0),
            "number" => (Func::Number, arity <= 1),
            "concat" => (Func::Concat, arity >= 2),
            "lower-case" => (Func::LowerCase, arity == 1),
            "upper-case" => (Func::UpperCase, arity == 1),
            other => return Err(SyntaxError(format!("функция {other}() не поддерживается"))),
        };
        if !ok {
            return Err(SyntaxError(format!("функция {name}() не принимает {arity} аргументов")));
        }
        Ok(f)
    }

    /// Whether the function's result is boolean (so that a predicate of it is not positional).
    fn is_boolean(self) -> bool {
        matches!(
            self,
            Func::Not
                | Func::Matches
                | Func::Empty
                | Func::Exists
                | Func::Contains
                | Func::StartsWith
                | Func::EndsWith
                | Func::Boolean
                | Func::True
                | Func::False
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `/`: the document node.
    Root,
    /// `.`
    ContextItem,
    Str(String),
    Num(f64),
    /// `(a, b)`, `()`.
    Sequence(Vec<Expr>),
    Paren(Box<Expr>),
    /// `[a, b]`: an XPath 3.1 array.
    Array(Vec<Expr>),
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    General(CompareOp, Box<Expr>, Box<Expr>),
    Value(CompareOp, Box<Expr>, Box<Expr>),
    /// `+`, `-`, `*`, `/` (div), `\` (idiv), `%` (mod).
    Arith(char, Box<Expr>, Box<Expr>),
    Negate(Box<Expr>),
    Union(Vec<Expr>),
    /// Steps applied to each node of `base`.
    Path {
        base: Box<Expr>,
        steps: Vec<Step>,
    },
    Filter(Box<Expr>, Vec<Expr>),
    /// `E1/E2` where `E2` is not an axis step (`a/count(b)`): `E2` at each node of `E1`.
    Map(Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

impl Expr {
    /// Whether a predicate of this expression may select by position (a number, or a use of
    /// `position()`/`last()`): then the `//x[p]` shortcut does not apply.
    pub fn may_be_positional(&self) -> bool {
        if self.uses_position() {
            return true;
        }
        match self {
            Expr::Or(..) | Expr::And(..) | Expr::General(..) | Expr::Value(..) => false,
            Expr::Path { .. } | Expr::Union(_) | Expr::Root | Expr::Str(_) => false,
            Expr::Call(f, _) => !f.is_boolean(),
            Expr::Paren(e) => e.may_be_positional(),
            Expr::If(_, a, b) => a.may_be_positional() || b.may_be_positional(),
            _ => true,
        }
    }

    /// Whether `position()` or `last()` occurs anywhere in the expression.
    fn uses_position(&self) -> bool {
        let mut found = false;
        self.visit(&mut |e| {
            if matches!(e, Expr::Call(Func::Position | Func::Last, _)) {
                found = true;
            }
        });
        found
    }

    /// Calls `f` on this expression and every expression inside it.
    pub fn visit(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Root | Expr::ContextItem | Expr::Str(_) | Expr::Num(_) => {}
            Expr::Sequence(v) | Expr::Array(v) | Expr::Union(v) | Expr::Call(_, v) => v.iter().for_each(|e| e.visit(f)),
            Expr::Paren(e) | Expr::Negate(e) => e.visit(f),
            Expr::Or(a, b) | Expr::And(a, b) | Expr::General(_, a, b) | Expr::Value(_, a, b) | Expr::Arith(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Expr::Path { base, steps } => {
                base.visit(f);
                steps.iter().flat_map(|s| &s.predicates).for_each(|e| e.visit(f));
            }
            Expr::Filter(e, preds) => {
                e.visit(f);
                preds.iter().for_each(|p| p.visit(f));
            }
            Expr::Map(a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Expr::If(a, b, c) => {
                a.visit(f);
                b.visit(f);
                c.visit(f);
            }
        }
    }

    /// Rewrites `descendant-or-self::node()/child::x[p]` into `descendant::x[p]` where no
    /// predicate is positional (the same nodes, without visiting every node twice), in this
    /// expression and every one inside it.
    pub fn optimise(&mut self) {
        match self {
            Expr::Path { base, steps } => {
                base.optimise();
                for s in steps.iter_mut() {
                    s.predicates.iter_mut().for_each(Expr::optimise);
                }
                let mut i = 0;
                while i + 1 < steps.len() {
                    let merge = steps[i].axis == Axis::DescendantOrSelf
                        && steps[i].test == NodeTest::AnyNode
                        && steps[i].predicates.is_empty()
                        && steps[i + 1].axis == Axis::Child
                        && !steps[i + 1].predicates.iter().any(Expr::may_be_positional);
                    if merge {
                        steps.remove(i);
                        steps[i].axis = Axis::Descendant;
                    }
                    i += 1;
                }
            }
            Expr::Sequence(v) | Expr::Array(v) | Expr::Union(v) | Expr::Call(_, v) => {
                v.iter_mut().for_each(Expr::optimise)
            }
            Expr::Paren(e) | Expr::Negate(e) => e.optimise(),
            Expr::Or(a, b) | Expr::And(a, b) | Expr::General(_, a, b) | Expr::Value(_, a, b) | Expr::Arith(_, a, b) => {
                a.optimise();
                b.optimise();
            }
            Expr::Filter(e, preds) => {
                e.optimise();
                preds.iter_mut().for_each(Expr::optimise);
            }
            Expr::Map(a, b) => {
                a.optimise();
                b.optimise();
            }
            Expr::If(a, b, c) => {
                a.optimise();
                b.optimise();
                c.optimise();
            }
            Expr::Root | Expr::ContextItem | Expr::Str(_) | Expr::Num(_) => {}
        }
    }
}

/// An atomic value.
#[derive(Debug, Clone, PartialEq)]
pub enum Atom {
    Untyped(String),
    Str(String),
    Num(f64),
    Bool(bool),
}

/// One item of a sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Node(NodeId),
    Atom(Atom),
    Array(Rc<Vec<Vec<Item>>>),
}

pub type Seq = Vec<Item>;

/// Why an evaluation stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// An XPath dynamic or type error, with its code (`FORG0001`, `XPTY0004`, …).
    #[error("{code}: {message}")]
    Dynamic { code: &'static str, message: String },
    /// The run spent its budget.
    #[error("превышен бюджет проверки")]
    Exhausted,
}

fn err(code: &'static str, message: impl Into<String>) -> EvalError {
    EvalError::Dynamic { code, message: message.into() }
}

/// The budget of one run: units left and an optional deadline, checked every few thousand
/// units.
pub struct Fuel {
    left: std::cell::Cell<u64>,
    deadline: Option<Instant>,
}

impl Fuel {
    pub fn new(units: u64, deadline: Option<Instant>) -> Self {
        Self { left: std::cell::Cell::new(units), deadline }
    }

    /// Units spent so far out of `of`.
    pub fn spent(&self, of: u64) -> u64 {
        of - self.left.get()
    }

    fn burn(&self, units: u64) -> Result<(), EvalError> {
        let left = self.left.get();
        if left < units {
            self.left.set(0);
            return Err(EvalError::Exhausted);
        }
        let after = left - units;
        self.left.set(after);
        if let Some(deadline) = self.deadline
            && (left >> 12) != (after >> 12)
            && Instant::now() >= deadline
        {
            self.left.set(0);
            return Err(EvalError::Exhausted);
        }
        Ok(())
    }
}

/// Regular expressions made of a document's values, by (pattern, flags): compiled, or why not.
pub type DynamicRegexes = RefCell<HashMap<(String, String), Result<Rc<::regex::Regex>, String>>>;

/// What an evaluation needs besides the expression: the document, the mapping of the
/// schema's names onto the document's, the compiled regular expressions, the budget.
pub struct Env<'a> {
    pub doc: &'a Document,
    /// For each name the schema interned, the document's id of it (if the document has it).
    pub names: &'a [Option<NameId>],
    /// The package's own regular expressions, compiled with it.
    pub regexes: &'a regex::Cache,
    pub fuel: &'a Fuel,
    /// Regular expressions built from the document's own values (`matches(@a, @b)`).
    pub dynamic: &'a DynamicRegexes,
    /// Evaluating a rule's context: an XPath error in a predicate means "does not match"
    /// (XSLT 3.0, 5.5.4: errors in patterns are not raised), not the end of the run.
    pub in_pattern: std::cell::Cell<bool>,
}

/// Most regular expressions made of a document's values kept compiled in one run; past it,
/// each is compiled again (and charged again).
const MAX_DYNAMIC_REGEXES: usize = 64;

impl Env<'_> {
    /// A node's string value, charged by what reading it costs (an element's is its
    /// subtree's text).
    fn value_of(&self, n: NodeId) -> Result<std::borrow::Cow<'_, str>, EvalError> {
        let node = self.doc.node(n);
        self.fuel.burn(u64::from(node.end.saturating_sub(n)).max(1))?;
        let value = self.doc.string_value(n);
        self.fuel.burn(value.len() as u64 / 64)?;
        Ok(value)
    }
}

/// The focus: the context item, its position and the size of its sequence, and the node
/// `current()` returns.
#[derive(Clone)]
pub struct Focus {
    pub item: Item,
    pub position: usize,
    pub size: usize,
    pub current: NodeId,
}

impl Focus {
    pub fn node(node: NodeId) -> Self {
        Focus { item: Item::Node(node), position: 1, size: 1, current: node }
    }
}

/// Evaluates `expr` at `focus`.
pub fn eval(env: &Env<'_>, expr: &Expr, focus: &Focus) -> Result<Seq, EvalError> {
    env.fuel.burn(1)?;
    Ok(match expr {
        Expr::Root => vec![Item::Node(0)],
        Expr::ContextItem => vec![focus.item.clone()],
        Expr::Str(s) => vec![Item::Atom(Atom::Str(s.clone()))],
        Expr::Num(n) => vec![Item::Atom(Atom::Num(*n))],
        Expr::Paren(e) => eval(env, e, focus)?,
        Expr::Sequence(items) => {
            let mut out = Vec::new();
            for e in items {
                out.extend(eval(env, e, focus)?);
            }
            out
        }
        Expr::Array(members) => {
            let mut out = Vec::with_capacity(members.len());
            for m in members {
                out.push(eval(env, m, focus)?);
            }
            vec![Item::Array(Rc::new(out))]
        }
        Expr::Or(a, b) => bool_seq(ebv(env, &eval(env, a, focus)?)? || ebv(env, &eval(env, b, focus)?)?),
        Expr::And(a, b) => bool_seq(ebv(env, &eval(env, a, focus)?)? && ebv(env, &eval(env, b, focus)?)?),
        Expr::General(op, a, b) => {
            if let Some(literals) = literals(b) {
                // The common case (`@code='RU'`, `@codeSystem=['…','…']`, `count(x)=1`):
                // nodes compared with literals by their string values, without copying them.
                return Ok(bool_seq(general_literals(env, *op, eval(env, a, focus)?, &literals)?));
            }
            let left = atomize(env, eval(env, a, focus)?)?;
            let right = atomize(env, eval(env, b, focus)?)?;
            env.fuel.burn((left.len() as u64).saturating_mul(right.len() as u64))?;
            bool_seq(general(*op, &left, &right)?)
        }
        Expr::Value(op, a, b) => {
            let left = atomize(env, eval(env, a, focus)?)?;
            let right = atomize(env, eval(env, b, focus)?)?;
            match value_compare(*op, &left, &right)? {
                Some(b) => bool_seq(b),
                None => Vec::new(),
            }
        }
        Expr::Arith(op, a, b) => {
            let left = number_arg(env, eval(env, a, focus)?)?;
            let right = number_arg(env, eval(env, b, focus)?)?;
            match (left, right) {
                (Some(x), Some(y)) => vec![Item::Atom(Atom::Num(arith(*op, x, y)?))],
                _ => Vec::new(),
            }
        }
        Expr::Negate(e) => match number_arg(env, eval(env, e, focus)?)? {
            Some(x) => vec![Item::Atom(Atom::Num(-x))],
            None => Vec::new(),
        },
        Expr::Union(parts) => {
            let mut nodes = Vec::new();
            for p in parts {
                for item in eval(env, p, focus)? {
                    match item {
                        Item::Node(n) => nodes.push(n),
                        _ => return Err(err("XPTY0004", "операнд | не является последовательностью узлов")),
                    }
                }
            }
            nodes.sort_unstable();
            nodes.dedup();
            nodes.into_iter().map(Item::Node).collect()
        }
        Expr::Path { base, steps } => {
            let base = match **base {
                Expr::ContextItem => vec![focus.item.clone()],
                Expr::Root => vec![Item::Node(0)],
                _ => eval(env, base, focus)?,
            };
            let mut nodes = Vec::with_capacity(base.len());
            for item in base {
                match item {
                    Item::Node(n) => nodes.push(n),
                    _ => return Err(err("XPTY0019", "шаг пути применён не к узлу")),
                }
            }
            for step in steps {
                nodes = apply_step(env, &nodes, step, focus.current)?;
            }
            nodes.into_iter().map(Item::Node).collect()
        }
        Expr::Filter(e, predicates) => {
            let mut items = eval(env, e, focus)?;
            for p in predicates {
                items = filter(env, items, p, Some(focus.current))?;
            }
            items
        }
        Expr::Map(base, step) => {
            let base = eval(env, base, focus)?;
            let size = base.len();
            let mut out = Vec::new();
            for (i, item) in base.into_iter().enumerate() {
                if !matches!(item, Item::Node(_)) {
                    return Err(err("XPTY0019", "шаг пути применён не к узлу"));
                }
                let inner = Focus { item, position: i + 1, size, current: focus.current };
                out.extend(eval(env, step, &inner)?);
            }
            let nodes = out.iter().filter(|i| matches!(i, Item::Node(_))).count();
            if nodes == out.len() {
                let mut ids: Vec<NodeId> =
                    out.iter().filter_map(|i| if let Item::Node(n) = i { Some(*n) } else { None }).collect();
                ids.sort_unstable();
                ids.dedup();
                ids.into_iter().map(Item::Node).collect()
            } else if nodes == 0 {
                out
            } else {
                return Err(err("XPTY0018", "результат шага пути смешивает узлы и значения"));
            }
        }
        Expr::If(c, a, b) => {
            if ebv(env, &eval(env, c, focus)?)? {
                eval(env, a, focus)?
            } else {
                eval(env, b, focus)?
            }
        }
        Expr::Call(f, args) => call(env, *f, args, focus)?,
    })
}

/// The effective boolean value of `expr` at `focus`: what [`ebv`] of [`eval`] gives, without
/// building the sequences of the boolean operators (the ministry's tests are mostly `and`,
/// `or`, `not()` and comparisons with literals).
pub fn eval_bool(env: &Env<'_>, expr: &Expr, focus: &Focus) -> Result<bool, EvalError> {
    env.fuel.burn(1)?;
    match expr {
        Expr::Or(a, b) => Ok(eval_bool(env, a, focus)? || eval_bool(env, b, focus)?),
        Expr::And(a, b) => Ok(eval_bool(env, a, focus)? && eval_bool(env, b, focus)?),
        Expr::Paren(e) => eval_bool(env, e, focus),
        Expr::Call(Func::Not, args) => Ok(!eval_bool(env, &args[0], focus)?),
        Expr::Call(Func::Boolean, args) => eval_bool(env, &args[0], focus),
        Expr::Call(Func::Empty, args) => Ok(eval(env, &args[0], focus)?.is_empty()),
        Expr::Call(Func::Exists, args) => Ok(!eval(env, &args[0], focus)?.is_empty()),
        Expr::General(op, a, b) => match literals(b) {
            Some(literals) => general_literals(env, *op, eval(env, a, focus)?, &literals),
            None => ebv(env, &eval(env, expr, focus)?),
        },
        _ => ebv(env, &eval(env, expr, focus)?),
    }
}

fn bool_seq(b: bool) -> Seq {
    vec![Item::Atom(Atom::Bool(b))]
}

/// The effective boolean value.
pub fn ebv(env: &Env<'_>, seq: &[Item]) -> Result<bool, EvalError> {
    let _ = env;
    match seq {
        [] => Ok(false),
        [Item::Node(_), ..] => Ok(true),
        [Item::Atom(a)] => Ok(match a {
            Atom::Bool(b) => *b,
            Atom::Str(s) | Atom::Untyped(s) => !s.is_empty(),
            Atom::Num(n) => *n != 0.0 && !n.is_nan(),
        }),
        [Item::Array(_), ..] => Err(err("FORG0006", "логическое значение массива не определено")),
        _ => Err(err("FORG0006", "логическое значение последовательности из нескольких значений не определено")),
    }
}

fn atomize(env: &Env<'_>, seq: Seq) -> Result<Vec<Atom>, EvalError> {
    let mut out = Vec::with_capacity(seq.len());
    for item in seq {
        atomize_into(env, item, &mut out)?;
    }
    Ok(out)
}

fn atomize_into(env: &Env<'_>, item: Item, out: &mut Vec<Atom>) -> Result<(), EvalError> {
    match item {
        Item::Node(n) => out.push(Atom::Untyped(env.value_of(n)?.into_owned())),
        Item::Atom(a) => out.push(a),
        Item::Array(members) => {
            for m in members.iter() {
                for i in m {
                    atomize_into(env, i.clone(), out)?;
                }
            }
        }
    }
    Ok(())
}

/// `xs:double` from its lexical form, as a cast from `xs:untypedAtomic` reads it.
pub fn parse_double(s: &str) -> Option<f64> {
    let t = s.trim_matches([' ', '\t', '\n', '\r']);
    match t {
        "INF" | "+INF" => return Some(f64::INFINITY),
        "-INF" => return Some(f64::NEG_INFINITY),
        "NaN" => return Some(f64::NAN),
        _ => {}
    }
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let mut digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    t.parse().ok()
}

fn cast_double(s: &str) -> Result<f64, EvalError> {
    parse_double(s).ok_or_else(|| err("FORG0001", format!("значение «{}» не является числом", clip(s))))
}

/// A value quoted in an error message, shortened (document values are not logged whole).
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(32).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// The general comparison: true if any pair compares true.
fn general(op: CompareOp, left: &[Atom], right: &[Atom]) -> Result<bool, EvalError> {
    for a in left {
        for b in right {
            let (a, b) = match (a, b) {
                (Atom::Untyped(x), Atom::Num(_)) => (Atom::Num(cast_double(x)?), b.clone()),
                (Atom::Num(_), Atom::Untyped(y)) => (a.clone(), Atom::Num(cast_double(y)?)),
                (Atom::Untyped(x), Atom::Bool(_)) => (Atom::Bool(cast_bool(x)?), b.clone()),
                (Atom::Bool(_), Atom::Untyped(y)) => (a.clone(), Atom::Bool(cast_bool(y)?)),
                _ => (a.clone(), b.clone()),
            };
            if compare_atoms(op, &a, &b)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A literal operand: a string, a number, or an array of them.
enum Literal<'e> {
    Str(&'e str),
    Num(f64),
}

fn literal(e: &Expr) -> Option<Literal<'_>> {
    match e {
        Expr::Str(s) => Some(Literal::Str(s)),
        Expr::Num(n) => Some(Literal::Num(*n)),
        _ => None,
    }
}

fn literals(e: &Expr) -> Option<Vec<Literal<'_>>> {
    let one = literal;
    match e {
        Expr::Array(members) => members.iter().map(one).collect(),
        other => one(other).map(|l| vec![l]),
    }
}

/// The general comparison of `left` with literals (the right operand), as [`general`] does
/// it, reading nodes' string values in place.
fn general_literals(env: &Env<'_>, op: CompareOp, left: Seq, right: &[Literal<'_>]) -> Result<bool, EvalError> {
    let ordered = |ord: Option<std::cmp::Ordering>| compare_ordering(op, ord);
    env.fuel.burn((left.len() as u64).saturating_mul(right.len() as u64))?;
    for item in left {
        match item {
            Item::Node(n) => {
                let value = env.value_of(n)?;
                for lit in right {
                    let holds = match lit {
                        Literal::Str(s) => ordered(Some(value.as_ref().cmp(s))),
                        Literal::Num(x) => ordered(cast_double(&value)?.partial_cmp(x)),
                    };
                    if holds {
                        return Ok(true);
                    }
                }
            }
            other => {
                let atoms = atomize(env, vec![other])?;
                let lits: Vec<Atom> = right
                    .iter()
                    .map(|l| match l {
                        Literal::Str(s) => Atom::Str((*s).to_owned()),
                        Literal::Num(x) => Atom::Num(*x),
                    })
                    .collect();
                if general(op, &atoms, &lits)? {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

fn cast_bool(s: &str) -> Result<bool, EvalError> {
    match s.trim_matches([' ', '\t', '\n', '\r']) {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(err("FORG0001", format!("значение «{}» не является логическим", clip(s)))),
    }
}

fn value_compare(op: CompareOp, left: &[Atom], right: &[Atom]) -> Result<Option<bool>, EvalError> {
    let one = |v: &[Atom]| -> Result<Option<Atom>, EvalError> {
        match v {
            [] => Ok(None),
            [Atom::Untyped(s)] => Ok(Some(Atom::Str(s.clone()))),
            [a] => Ok(Some(a.clone())),
            _ => Err(err("XPTY0004", "сравнение значений получило последовательность")),
        }
    };
    match (one(left)?, one(right)?) {
        (Some(a), Some(b)) => Ok(Some(compare_atoms(op, &a, &b)?)),
        _ => Ok(None),
    }
}

fn compare_atoms(op: CompareOp, a: &Atom, b: &Atom) -> Result<bool, EvalError> {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (a, b) {
        (Atom::Str(x) | Atom::Untyped(x), Atom::Str(y) | Atom::Untyped(y)) => Some(x.as_str().cmp(y.as_str())),
        (Atom::Num(x), Atom::Num(y)) => x.partial_cmp(y),
        (Atom::Bool(x), Atom::Bool(y)) => Some(x.cmp(y)),
        _ => return Err(err("XPTY0004", "сравнение значений несовместимых типов")),
    };
    Ok(compare_ordering(op, ord))
}

/// What `op` says of an ordering (`None`: NaN is in it, and only `ne` holds).
fn compare_ordering(op: CompareOp, ord: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering;
    match (op, ord) {
        (CompareOp::Ne, None) => true,
        (_, None) => false,
        (CompareOp::Eq, Some(o)) => o == Ordering::Equal,
        (CompareOp::Ne, Some(o)) => o != Ordering::Equal,
        (CompareOp::Lt, Some(o)) => o == Ordering::Less,
        (CompareOp::Le, Some(o)) => o != Ordering::Greater,
        (CompareOp::Gt, Some(o)) => o == Ordering::Greater,
        (CompareOp::Ge, Some(o)) => o != Ordering::Less,
    }
}

fn number_arg(env: &Env<'_>, seq: Seq) -> Result<Option<f64>, EvalError> {
    let atoms = atomize(env, seq)?;
    match atoms.as_slice() {
        [] => Ok(None),
        [Atom::Num(n)] => Ok(Some(*n)),
        [Atom::Untyped(s)] => Ok(Some(cast_double(s)?)),
        [_] => Err(err("XPTY0004", "ожидалось число")),
        _ => Err(err("XPTY0004", "ожидалось одно число, получена последовательность")),
    }
}

fn arith(op: char, x: f64, y: f64) -> Result<f64, EvalError> {
    Ok(match op {
        '+' => x + y,
        '-' => x - y,
        '*' => x * y,
        '/' => x / y,
        '\\' => {
            if y == 0.0 {
                return Err(err("FOAR0001", "деление на ноль"));
            }
            (x / y).trunc()
        }
        _ => x % y,
    })
}

/// A string argument (`xs:string?`): the empty sequence is `""` when `optional`.
fn string_arg(env: &Env<'_>, seq: Seq, optional: bool) -> Result<String, EvalError> {
    let atoms = atomize(env, seq)?;
    match atoms.into_iter().collect::<Vec<_>>().as_mut_slice() {
        [] if optional => Ok(String::new()),
        [] => Err(err("XPTY0004", "пустая последовательность там, где ожидалась строка")),
        [Atom::Str(s) | Atom::Untyped(s)] => Ok(std::mem::take(s)),
        [_] => Err(err("XPTY0004", "ожидалась строка")),
        _ => Err(err("XPTY0004", "ожидалась одна строка, получена последовательность из нескольких значений")),
    }
}

/// The string value of an item, as `string()` gives it.
pub fn string_of(env: &Env<'_>, item: &Item) -> Result<String, EvalError> {
    Ok(match item {
        Item::Node(n) => env.value_of(*n)?.into_owned(),
        Item::Atom(Atom::Str(s) | Atom::Untyped(s)) => s.clone(),
        Item::Atom(Atom::Num(n)) => format_number(*n),
        Item::Atom(Atom::Bool(b)) => b.to_string(),
        Item::Array(_) => return Err(err("FOTY0014", "строковое значение массива не определено")),
    })
}

fn format_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 { "INF".into() } else { "-INF".into() }
    } else if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn call(env: &Env<'_>, f: Func, args: &[Expr], focus: &Focus) -> Result<Seq, EvalError> {
    let arg = |i: usize| eval(env, &args[i], focus);
    let context_string = || string_of(env, &focus.item);
    Ok(match f {
        Func::Count => vec![Item::Atom(Atom::Num(arg(0)?.len() as f64))],
        Func::Not => bool_seq(!ebv(env, &arg(0)?)?),
        Func::Boolean => bool_seq(ebv(env, &arg(0)?)?),
        Func::True => bool_seq(true),
        Func::False => bool_seq(false),
        Func::Empty => bool_seq(arg(0)?.is_empty()),
        Func::Exists => bool_seq(!arg(0)?.is_empty()),
        Func::Last => vec![Item::Atom(Atom::Num(focus.size as f64))],
        Func::Position => vec![Item::Atom(Atom::Num(focus.position as f64))],
        Func::Current => vec![Item::Node(focus.current)],
        Func::Matches => {
            let input = string_arg(env, arg(0)?, true)?;
            let pattern = string_arg(env, arg(1)?, false)?;
            let flags = if args.len() == 3 { string_arg(env, arg(2)?, false)? } else { String::new() };
            env.fuel.burn(1 + input.len() as u64 / 16)?;
            let found = match env.regexes.get(&pattern, &flags) {
                Some(re) => re.is_match(&input),
                None => dynamic_regex(env, &pattern, &flags)?.is_match(&input),
            };
            bool_seq(found)
        }
        Func::Substring => {
            let s = string_arg(env, arg(0)?, true)?;
            let start = number_arg(env, arg(1)?)?.ok_or_else(|| err("XPTY0004", "substring: пустое начало"))?;
            let len = if args.len() == 3 {
                Some(number_arg(env, arg(2)?)?.ok_or_else(|| err("XPTY0004", "substring: пустая длина"))?)
            } else {
                None
            };
            vec![Item::Atom(Atom::Str(substring(&s, start, len)))]
        }
        Func::StringLength => {
            let s = if args.is_empty() { context_string()? } else { string_arg(env, arg(0)?, true)? };
            vec![Item::Atom(Atom::Num(s.chars().count() as f64))]
        }
        Func::NormalizeSpace => {
            let s = if args.is_empty() { context_string()? } else { string_arg(env, arg(0)?, true)? };
            vec![Item::Atom(Atom::Str(normalize_space(&s)))]
        }
        Func::String => {
            let s = if args.is_empty() {
                context_string()?
            } else {
                match arg(0)?.as_slice() {
                    [] => String::new(),
                    [item] => string_of(env, item)?,
                    _ => return Err(err("XPTY0004", "string(): последовательность из нескольких значений")),
                }
            };
            vec![Item::Atom(Atom::Str(s))]
        }
        Func::Contains | Func::StartsWith | Func::EndsWith => {
            let a = string_arg(env, arg(0)?, true)?;
            let b = string_arg(env, arg(1)?, true)?;
            bool_seq(match f {
                Func::Contains => a.contains(&b),
                Func::StartsWith => a.starts_with(&b),
                _ => a.ends_with(&b),
            })
        }
        Func::Number => {
            let atoms = if args.is_empty() { atomize(env, vec![focus.item.clone()])? } else { atomize(env, arg(0)?)? };
            let n = match atoms.as_slice() {
                [Atom::Num(n)] => *n,
                [Atom::Str(s) | Atom::Untyped(s)] => parse_double(s).unwrap_or(f64::NAN),
                [Atom::Bool(b)] => f64::from(u8::from(*b)),
                [] => f64::NAN,
                _ => return Err(err("XPTY0004", "number(): последовательность из нескольких значений")),
            };
            vec![Item::Atom(Atom::Num(n))]
        }
        Func::Concat => {
            let mut out = String::new();
            for i in 0..args.len() {
                match atomize(env, arg(i)?)?.as_slice() {
                    [] => {}
                    [a] => out.push_str(&string_of(env, &Item::Atom(a.clone()))?),
                    _ => return Err(err("XPTY0004", "concat(): последовательность из нескольких значений")),
                }
            }
            vec![Item::Atom(Atom::Str(out))]
        }
        Func::LowerCase => vec![Item::Atom(Atom::Str(string_arg(env, arg(0)?, true)?.to_lowercase()))],
        Func::UpperCase => vec![Item::Atom(Atom::Str(string_arg(env, arg(0)?, true)?.to_uppercase()))],
    })
}

/// A regular expression made of the document's own values, compiled once per run and
/// bounded like the package's.
fn dynamic_regex(env: &Env<'_>, pattern: &str, flags: &str) -> Result<Rc<::regex::Regex>, EvalError> {
    let key = (pattern.to_owned(), flags.to_owned());
    if let Some(found) = env.dynamic.borrow().get(&key) {
        return found.clone().map_err(|m| err("FORX0002", m));
    }
    // Compiling is charged as the work it is (up to the compiled size limit).
    env.fuel.burn(10_000 + 64 * pattern.len() as u64)?;
    let compiled = regex::compile(pattern, flags).map(Rc::new).map_err(|e| e.to_string());
    let mut cache = env.dynamic.borrow_mut();
    if cache.len() < MAX_DYNAMIC_REGEXES {
        cache.insert(key, compiled.clone());
    }
    compiled.map_err(|m| err("FORX0002", m))
}

/// `fn:substring` with XPath's rounding (half up) and positions counted in characters.
pub fn substring(s: &str, start: f64, len: Option<f64>) -> String {
    let round = |x: f64| (x + 0.5).floor();
    let first = round(start);
    let end = match len {
        Some(l) => first + round(l),
        None => f64::INFINITY,
    };
    if first.is_nan() || end.is_nan() {
        return String::new();
    }
    s.chars()
        .enumerate()
        .filter(|(i, _)| {
            let p = (*i + 1) as f64;
            p >= first && p < end
        })
        .map(|(_, c)| c)
        .collect()
}

pub fn normalize_space(s: &str) -> String {
    s.split([' ', '\t', '\n', '\r']).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Keeps the items for which `predicate` holds. `current` is what `current()` returns, or
/// `None` for each item itself (the last step of a pattern).
fn filter(env: &Env<'_>, items: Seq, predicate: &Expr, current: Option<NodeId>) -> Result<Seq, EvalError> {
    if let Expr::Num(k) = predicate {
        let k = *k;
        if k.fract() != 0.0 || k < 1.0 {
            return Ok(Vec::new());
        }
        return Ok(items.into_iter().nth(k as usize - 1).into_iter().collect());
    }
    let size = items.len();
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let current = match (current, &item) {
            (Some(c), _) => c,
            (None, Item::Node(n)) => *n,
            (None, _) => 0,
        };
        let focus = Focus { item: item.clone(), position: i + 1, size, current };
        let holds = match predicate_holds(env, predicate, &focus) {
            Err(EvalError::Dynamic { .. }) if env.in_pattern.get() => false,
            other => other?,
        };
        if holds {
            out.push(item);
        }
    }
    Ok(out)
}

fn predicate_holds(env: &Env<'_>, predicate: &Expr, focus: &Focus) -> Result<bool, EvalError> {
    // A predicate whose value is boolean by its form selects by its truth, not by position.
    if matches!(
        predicate,
        Expr::Or(..) | Expr::And(..) | Expr::General(..) | Expr::Value(..) | Expr::Path { .. } | Expr::Union(_)
    ) || matches!(predicate, Expr::Call(f, _) if f.is_boolean())
    {
        return eval_bool(env, predicate, focus);
    }
    let value = eval(env, predicate, focus)?;
    match value.as_slice() {
        [Item::Atom(Atom::Num(n))] => Ok(*n == focus.position as f64),
        _ => ebv(env, &value),
    }
}

fn matches_test(env: &Env<'_>, node: NodeId, test: &NodeTest, principal: Kind) -> bool {
    let n = env.doc.node(node);
    match test {
        NodeTest::AnyNode => true,
        NodeTest::Text => n.kind == Kind::Text,
        NodeTest::AnyElement => n.kind == Kind::Element,
        NodeTest::AnyAttribute => n.kind == Kind::Attribute,
        NodeTest::AnyName => n.kind == principal,
        NodeTest::Name(idx) => n.kind == principal && env.names[*idx as usize] == Some(n.name),
        NodeTest::Namespace(ns) => n.kind == principal && *env.doc.names[n.name as usize].0 == **ns,
        NodeTest::Local(local) => n.kind == principal && *env.doc.names[n.name as usize].1 == **local,
    }
}

/// The nodes a step selects from one node, in the axis' order (reverse axes: nearest first).
fn axis_nodes(env: &Env<'_>, from: NodeId, step: &Step) -> Result<Vec<NodeId>, EvalError> {
    let doc = env.doc;
    let principal = if step.axis == Axis::Attribute { Kind::Attribute } else { Kind::Element };
    let test = &step.test;
    let node = doc.node(from);
    let mut out = Vec::new();
    match step.axis {
        Axis::Child => {
            if matches!(node.kind, Kind::Element | Kind::Root) {
                for c in doc.children(from) {
                    env.fuel.burn(1)?;
                    if matches_test(env, c, test, principal) {
                        out.push(c);
                    }
                }
            }
        }
        Axis::Attribute => {
            if node.kind == Kind::Element {
                for a in doc.attributes(from) {
                    env.fuel.burn(1)?;
                    if matches_test(env, a, test, principal) {
                        out.push(a);
                    }
                }
            }
        }
        Axis::Descendant | Axis::DescendantOrSelf => {
            if step.axis == Axis::DescendantOrSelf && matches_test(env, from, test, principal) {
                out.push(from);
            }
            if matches!(node.kind, Kind::Element | Kind::Root) {
                let range = from + 1..node.end;
                if let NodeTest::Name(idx) = test {
                    if let Some(name) = env.names[*idx as usize] {
                        let all = &doc.by_name[name as usize];
                        let lo = all.partition_point(|&n| n < range.start);
                        let hi = all.partition_point(|&n| n < range.end);
                        env.fuel.burn((hi - lo) as u64 + 1)?;
                        out.extend_from_slice(&all[lo..hi]);
                    }
                } else {
                    env.fuel.burn(u64::from(range.end - range.start))?;
                    for d in range {
                        if doc.node(d).kind != Kind::Attribute && matches_test(env, d, test, principal) {
                            out.push(d);
                        }
                    }
                }
            }
        }
        Axis::SelfAxis => {
            if matches_test(env, from, test, if node.kind == Kind::Attribute { Kind::Attribute } else { Kind::Element })
            {
                out.push(from);
            }
        }
        Axis::Parent => {
            if node.kind != Kind::Root && matches_test(env, node.parent, test, principal) {
                out.push(node.parent);
            }
        }
        Axis::Ancestor | Axis::AncestorOrSelf => {
            if step.axis == Axis::AncestorOrSelf && matches_test(env, from, test, principal) {
                out.push(from);
            }
            let mut at = from;
            while doc.node(at).kind != Kind::Root {
                env.fuel.burn(1)?;
                at = doc.node(at).parent;
                if matches_test(env, at, test, principal) {
                    out.push(at);
                }
            }
        }
        Axis::FollowingSibling | Axis::PrecedingSibling => {
            if matches!(node.kind, Kind::Element | Kind::Text) {
                let siblings: Vec<NodeId> = doc.children(node.parent).collect();
                env.fuel.burn(siblings.len() as u64)?;
                if step.axis == Axis::FollowingSibling {
                    out.extend(siblings.into_iter().filter(|&s| s > from && matches_test(env, s, test, principal)));
                } else {
                    out.extend(
                        siblings.into_iter().rev().filter(|&s| s < from && matches_test(env, s, test, principal)),
                    );
                }
            }
        }
    }
    Ok(out)
}

fn apply_step(env: &Env<'_>, from: &[NodeId], step: &Step, current: NodeId) -> Result<Vec<NodeId>, EvalError> {
    let mut out = Vec::new();
    for &n in from {
        let mut selected = axis_nodes(env, n, step)?;
        for p in &step.predicates {
            let items: Seq = selected.into_iter().map(Item::Node).collect();
            selected = filter(env, items, p, if step.matched { None } else { Some(current) })?
                .into_iter()
                .map(|i| match i {
                    Item::Node(n) => n,
                    _ => unreachable!("a filter of nodes keeps nodes"),
                })
                .collect();
        }
        out.extend(selected);
    }
    let ordered =
        from.len() <= 1 && !matches!(step.axis, Axis::Ancestor | Axis::AncestorOrSelf | Axis::PrecedingSibling);
    if !ordered {
        out.sort_unstable();
        out.dedup();
    }
    Ok(out)
}
