//! The XPath 3.1 subset of the ministry's schematrons, parsed into [`Expr`].
//!
//! What is accepted: paths on the child, descendant(-or-self), attribute, self, parent,
//! ancestor(-or-self) and sibling axes (`//`, `@`, `.`, `..` included) with name, wildcard,
//! `text()` and `node()` tests and predicates; `|`; general (`=`, `!=`, `<`, …) and value
//! (`eq`, `ne`, …) comparisons; `and`, `or`; arithmetic; string and numeric literals;
//! parentheses and `,` sequences; square-bracket arrays (`@code=['5','85']`);
//! `if … then … else`; and the functions of [`Func`]. Anything else (variables, `for`,
//! `let`, maps, casts, a function not listed) is a compile error naming it, so that a
//! package that needs more is refused whole, not half-run.
//!
//! Bounded: an expression longer than [`MAX_EXPR_BYTES`] or nested deeper than
//! [`MAX_NESTING`] is refused.

use super::{Axis, CompareOp, Expr, Func, NodeTest, Step};

/// The longest expression accepted, in bytes (the ministry's longest is under 2 KB).
pub const MAX_EXPR_BYTES: usize = 64 * 1024;
/// The deepest nesting accepted: parentheses, predicates, calls, and each operator of a
/// chain (`a or b or c` nests as deep as it is long, and is evaluated, optimised and dropped
/// by recursion). The ministry's deepest expression is far below it.
pub const MAX_NESTING: usize = 128;

/// A name as written: an optional prefix and a local part (`*` for a wildcard).
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(Option<String>, String),
    Str(String),
    Num(f64),
    Sym(&'static str),
}

/// An expression could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub String);

/// How names in the expression become expanded names: the caller interns them.
pub trait Names {
    /// The namespace URI of a prefix, if declared.
    fn namespace(&self, prefix: &str) -> Option<String>;
    /// The namespace unprefixed element names are in (the document's default).
    fn default_element_namespace(&self) -> &str;
    /// An index for the expanded name.
    fn intern(&mut self, ns: &str, local: &str) -> u32;
}

fn lex(src: &str) -> Result<Vec<Tok>, SyntaxError> {
    if src.len() > MAX_EXPR_BYTES {
        return Err(SyntaxError(format!("выражение длиннее {MAX_EXPR_BYTES} байт")));
    }
    let chars: Vec<char> = src.chars().collect();
    let mut out: Vec<Tok> = Vec::new();
    let mut i = 0;
    // Whether the previous token ends an operand: then `*` multiplies and `and`, `div`, …
    // are operators (XPath 3.1, A.2.1 "terminal symbols"). Recomputed after every token.
    let ends_operand = |out: &Vec<Tok>, last_op: bool| match out.last() {
        None => false,
        Some(Tok::Sym(s)) => matches!(*s, ")" | "]" | "." | ".."),
        Some(Tok::Name(..)) => !last_op,
        Some(_) => true,
    };
    // Whether the last token is an operator word.
    let mut last_op = false;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '(' && chars.get(i + 1) == Some(&':') {
            // A comment, possibly nested.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '(' && chars.get(i + 1) == Some(&':') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == ':' && chars.get(i + 1) == Some(&')') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            if depth != 0 {
                return Err(SyntaxError("незакрытый комментарий".into()));
            }
            continue;
        }
        if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(SyntaxError("незакрытая строка".into())),
                    Some(&q) if q == c => {
                        if chars.get(i + 1) == Some(&c) {
                            s.push(c);
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            last_op = false;
            out.push(Tok::Str(s));
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let text: String = chars[start..i].iter().collect();
            let n = text.parse::<f64>().map_err(|_| SyntaxError(format!("неверное число {text}")))?;
            last_op = false;
            out.push(Tok::Num(n));
            continue;
        }
        if c == '*' {
            if ends_operand(&out, last_op) {
                last_op = false;
                out.push(Tok::Sym("*"));
                i += 1;
            } else if chars.get(i + 1) == Some(&':') && chars.get(i + 2).is_some_and(|&d| is_name_start(d)) {
                i += 2;
                let start = i;
                while i < chars.len() && is_name_char(chars[i]) {
                    i += 1;
                }
                last_op = false;
                out.push(Tok::Name(Some("*".into()), chars[start..i].iter().collect()));
            } else {
                last_op = false;
                out.push(Tok::Name(None, "*".into()));
                i += 1;
            }
            continue;
        }
        if is_name_start(c) {
            let start = i;
            while i < chars.len() && is_name_char(chars[i]) {
                i += 1;
            }
            let first: String = chars[start..i].iter().collect();
            if chars.get(i) == Some(&':') && chars.get(i + 1) != Some(&':') {
                if chars.get(i + 1) == Some(&'*') {
                    i += 2;
                    last_op = false;
                    out.push(Tok::Name(Some(first), "*".into()));
                    continue;
                }
                if chars.get(i + 1).is_some_and(|&d| is_name_start(d)) {
                    i += 1;
                    let start = i;
                    while i < chars.len() && is_name_char(chars[i]) {
                        i += 1;
                    }
                    last_op = false;
                    out.push(Tok::Name(Some(first), chars[start..i].iter().collect()));
                    continue;
                }
            }
            let operator = is_operator_word(&first) && ends_operand(&out, last_op);
            out.push(Tok::Name(None, first));
            last_op = operator;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let sym = match two.as_str() {
            "!=" => Some("!="),
            "<=" => Some("<="),
            ">=" => Some(">="),
            "//" => Some("//"),
            "::" => Some("::"),
            ".." => Some(".."),
            _ => None,
        };
        if let Some(s) = sym {
            last_op = false;
            out.push(Tok::Sym(s));
            i += 2;
            continue;
        }
        let sym = match c {
            '(' => "(",
            ')' => ")",
            '[' => "[",
            ']' => "]",
            ',' => ",",
            '/' => "/",
            '@' => "@",
            '.' => ".",
            '=' => "=",
            '<' => "<",
            '>' => ">",
            '|' => "|",
            '+' => "+",
            '-' => "-",
            '$' => return Err(SyntaxError("переменные не поддерживаются".into())),
            other => return Err(SyntaxError(format!("неожиданный символ «{other}»"))),
        };
        last_op = false;
        out.push(Tok::Sym(sym));
        i += 1;
    }
    Ok(out)
}

fn is_operator_word(n: &str) -> bool {
    matches!(
        n,
        "and"
            | "or"
            | "div"
            | "idiv"
            | "mod"
            | "eq"
            | "ne"
            | "lt"
            | "le"
            | "gt"
            | "ge"
            | "union"
            | "intersect"
            | "except"
    ) || matches!(n, "then" | "else" | "return" | "satisfies" | "in" | "to" | "is" | "instance" | "cast" | "castable")
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '\u{B7}')
}

/// Parses `src` into an expression, interning its names through `names`.
pub fn parse(src: &str, names: &mut dyn Names) -> Result<Expr, SyntaxError> {
    let toks = lex(src)?;
    let mut p = Parser { toks, at: 0, names, depth: 0 };
    let e = p.expr()?;
    if p.at != p.toks.len() {
        return Err(SyntaxError(format!("лишнее в конце выражения: {:?}", p.toks[p.at])));
    }
    Ok(e)
}

struct Parser<'n> {
    toks: Vec<Tok>,
    at: usize,
    names: &'n mut dyn Names,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.at + k)
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(t)) if *t == s)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Name(None, n)) if n == w)
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if self.is_sym(s) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, s: &str) -> Result<(), SyntaxError> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(SyntaxError(format!("ожидалось «{s}», найдено {:?}", self.peek())))
        }
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(SyntaxError(format!("вложенность выражения больше {MAX_NESTING}")));
        }
        Ok(())
    }

    /// Expr ::= ExprSingle ("," ExprSingle)*
    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        let first = self.single()?;
        if !self.is_sym(",") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_sym(",") {
            items.push(self.single()?);
        }
        Ok(Expr::Sequence(items))
    }

    fn single(&mut self) -> Result<Expr, SyntaxError> {
        self.enter()?;
        let e = if self.is_word("if") && matches!(self.peek_at(1), Some(Tok::Sym("("))) {
            self.at += 2;
            let cond = self.expr()?;
            self.expect(")")?;
            if !self.is_word("then") {
                return Err(SyntaxError("ожидалось then".into()));
            }
            self.at += 1;
            let then = self.single()?;
            if !self.is_word("else") {
                return Err(SyntaxError("ожидалось else".into()));
            }
            self.at += 1;
            let otherwise = self.single()?;
            Expr::If(Box::new(cond), Box::new(then), Box::new(otherwise))
        } else {
            self.or()?
        };
        self.depth -= 1;
        Ok(e)
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        self.chain(Self::and, |p| p.is_word("or").then_some(()), |(), a, b| Expr::Or(a, b))
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        self.chain(Self::comparison, |p| p.is_word("and").then_some(()), |(), a, b| Expr::And(a, b))
    }

    /// `next (op next)*`, nested to the left; each link counts towards the nesting limit.
    fn chain<O>(
        &mut self,
        next: fn(&mut Self) -> Result<Expr, SyntaxError>,
        op: fn(&Self) -> Option<O>,
        make: fn(O, Box<Expr>, Box<Expr>) -> Expr,
    ) -> Result<Expr, SyntaxError> {
        let depth = self.depth;
        let mut e = next(self)?;
        while let Some(o) = op(self) {
            self.at += 1;
            self.enter()?;
            e = make(o, Box::new(e), Box::new(next(self)?));
        }
        self.depth = depth;
        Ok(e)
    }

    fn comparison(&mut self) -> Result<Expr, SyntaxError> {
        let left = self.additive()?;
        let general = match self.peek() {
            Some(Tok::Sym("=")) => Some(CompareOp::Eq),
            Some(Tok::Sym("!=")) => Some(CompareOp::Ne),
            Some(Tok::Sym("<")) => Some(CompareOp::Lt),
            Some(Tok::Sym("<=")) => Some(CompareOp::Le),
            Some(Tok::Sym(">")) => Some(CompareOp::Gt),
            Some(Tok::Sym(">=")) => Some(CompareOp::Ge),
            _ => None,
        };
        if let Some(op) = general {
            self.at += 1;
            return Ok(Expr::General(op, Box::new(left), Box::new(self.additive()?)));
        }
        let value = match self.peek() {
            Some(Tok::Name(None, n)) => match n.as_str() {
                "eq" => Some(CompareOp::Eq),
                "ne" => Some(CompareOp::Ne),
                "lt" => Some(CompareOp::Lt),
                "le" => Some(CompareOp::Le),
                "gt" => Some(CompareOp::Gt),
                "ge" => Some(CompareOp::Ge),
                _ => None,
            },
            _ => None,
        };
        if let Some(op) = value {
            self.at += 1;
            return Ok(Expr::Value(op, Box::new(left), Box::new(self.additive()?)));
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr, SyntaxError> {
        let op = |p: &Self| {
            if p.is_sym("+") {
                Some('+')
            } else if p.is_sym("-") {
                Some('-')
            } else {
                None
            }
        };
        self.chain(Self::multiplicative, op, Expr::Arith)
    }

    fn multiplicative(&mut self) -> Result<Expr, SyntaxError> {
        let op = |p: &Self| {
            if p.is_sym("*") {
                Some('*')
            } else if p.is_word("div") {
                Some('/')
            } else if p.is_word("idiv") {
                Some('\\')
            } else if p.is_word("mod") {
                Some('%')
            } else {
                None
            }
        };
        self.chain(Self::union, op, Expr::Arith)
    }

    fn union(&mut self) -> Result<Expr, SyntaxError> {
        let first = self.unary()?;
        if !(self.is_sym("|") || self.is_word("union")) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_sym("|")
            || (self.is_word("union") && {
                self.at += 1;
                true
            })
        {
            items.push(self.unary()?);
        }
        Ok(Expr::Union(items))
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        if self.eat_sym("-") {
            self.enter()?;
            let e = Expr::Negate(Box::new(self.unary()?));
            self.depth -= 1;
            return Ok(e);
        }
        if self.eat_sym("+") {
            return self.unary();
        }
        self.path()
    }

    /// PathExpr: `/`, `/rel`, `//rel` or `rel`.
    fn path(&mut self) -> Result<Expr, SyntaxError> {
        if self.eat_sym("/") {
            if self.starts_step() || self.starts_primary() {
                return self.steps(Expr::Root, Vec::new());
            }
            return Ok(Expr::Root);
        }
        if self.eat_sym("//") {
            return self.steps(Expr::Root, vec![Step::descendant_or_self()]);
        }
        // A relative path starts with a step, or with a primary expression (a filter).
        if self.starts_primary() {
            let primary = self.postfix()?;
            if self.is_sym("/") || self.is_sym("//") {
                return self.more(primary, Vec::new());
            }
            return Ok(primary);
        }
        if !self.starts_step() {
            return Err(SyntaxError(format!("ожидался шаг пути, найдено {:?}", self.peek())));
        }
        let e = self.steps(Expr::ContextItem, Vec::new())?;
        // `.` alone is the context item, which may be a value.
        if let Expr::Path { base, steps } = &e
            && **base == Expr::ContextItem
            && steps.len() == 1
            && steps[0].axis == Axis::SelfAxis
            && steps[0].test == NodeTest::AnyNode
            && steps[0].predicates.is_empty()
        {
            return Ok(Expr::ContextItem);
        }
        Ok(e)
    }

    /// One step (an axis step or a primary expression), then whatever `/` and `//` follow.
    fn steps(&mut self, base: Expr, mut steps: Vec<Step>) -> Result<Expr, SyntaxError> {
        if self.starts_primary() {
            let path = if steps.is_empty() && base == Expr::ContextItem {
                base
            } else {
                Expr::Path { base: Box::new(base), steps }
            };
            let primary = self.postfix()?;
            self.enter()?;
            let e = self.more(Expr::Map(Box::new(path), Box::new(primary)), Vec::new());
            self.depth -= 1;
            return e;
        }
        steps.push(self.step()?);
        self.more(base, steps)
    }

    /// Continues a path after its first step: `/step`, `//step`, `/f(...)`.
    fn more(&mut self, base: Expr, mut steps: Vec<Step>) -> Result<Expr, SyntaxError> {
        loop {
            let descend = if self.eat_sym("/") {
                false
            } else if self.eat_sym("//") {
                true
            } else {
                return Ok(if steps.is_empty() { base } else { Expr::Path { base: Box::new(base), steps } });
            };
            if descend {
                steps.push(Step::descendant_or_self());
            }
            if self.starts_primary() {
                let path = if steps.is_empty() { base } else { Expr::Path { base: Box::new(base), steps } };
                let primary = self.postfix()?;
                // Each `/f()` nests the path so far one level deeper.
                self.enter()?;
                let e = self.more(Expr::Map(Box::new(path), Box::new(primary)), Vec::new());
                self.depth -= 1;
                return e;
            }
            steps.push(self.step()?);
        }
    }

    fn starts_step(&self) -> bool {
        match self.peek() {
            Some(Tok::Sym(s)) => matches!(*s, "@" | "." | ".."),
            Some(Tok::Name(..)) => true,
            _ => false,
        }
    }

    /// A primary expression: a literal, `(`, `[`, a function call (not a node test such as
    /// `text()`), `if (`, or `.` followed by nothing a step would take.
    fn starts_primary(&self) -> bool {
        match self.peek() {
            Some(Tok::Str(_) | Tok::Num(_)) => true,
            Some(Tok::Sym("(" | "[")) => true,
            Some(Tok::Name(prefix, n)) => {
                matches!(self.peek_at(1), Some(Tok::Sym("(")))
                    && !(prefix.is_none() && matches!(n.as_str(), "text" | "node" | "element" | "attribute"))
                    && !matches!(self.peek_at(1), Some(Tok::Sym("::")))
            }
            _ => false,
        }
    }

    fn step(&mut self) -> Result<Step, SyntaxError> {
        if self.eat_sym("..") {
            return Ok(Step {
                axis: Axis::Parent,
                test: NodeTest::AnyNode,
                predicates: self.predicates()?,
                matched: false,
            });
        }
        if self.eat_sym(".") {
            return Ok(Step {
                axis: Axis::SelfAxis,
                test: NodeTest::AnyNode,
                predicates: self.predicates()?,
                matched: false,
            });
        }
        let axis = if self.eat_sym("@") {
            Axis::Attribute
        } else if let (Some(Tok::Name(None, a)), Some(Tok::Sym("::"))) = (self.peek(), self.peek_at(1)) {
            let axis = match a.as_str() {
                "child" => Axis::Child,
                "descendant" => Axis::Descendant,
                "descendant-or-self" => Axis::DescendantOrSelf,
                "attribute" => Axis::Attribute,
                "self" => Axis::SelfAxis,
                "parent" => Axis::Parent,
                "ancestor" => Axis::Ancestor,
                "ancestor-or-self" => Axis::AncestorOrSelf,
                "following-sibling" => Axis::FollowingSibling,
                "preceding-sibling" => Axis::PrecedingSibling,
                other => return Err(SyntaxError(format!("ось {other}:: не поддерживается"))),
            };
            self.at += 2;
            axis
        } else {
            Axis::Child
        };
        let test = self.node_test(axis)?;
        Ok(Step { axis, test, predicates: self.predicates()?, matched: false })
    }

    fn node_test(&mut self, axis: Axis) -> Result<NodeTest, SyntaxError> {
        let Some(Tok::Name(prefix, local)) = self.peek().cloned() else {
            return Err(SyntaxError(format!("ожидалось имя, найдено {:?}", self.peek())));
        };
        self.at += 1;
        if prefix.is_none() && matches!(self.peek(), Some(Tok::Sym("("))) {
            let kind = match local.as_str() {
                "text" => NodeTest::Text,
                "node" => NodeTest::AnyNode,
                "element" => NodeTest::AnyElement,
                "attribute" => NodeTest::AnyAttribute,
                other => return Err(SyntaxError(format!("проверка узла {other}() не поддерживается"))),
            };
            self.at += 1;
            self.expect(")")?;
            return Ok(kind);
        }
        let attribute = axis == Axis::Attribute;
        Ok(match (prefix.as_deref(), local.as_str()) {
            (None, "*") => NodeTest::AnyName,
            (Some("*"), local) => NodeTest::Local(local.to_owned()),
            (Some(p), "*") => {
                let ns = self.names.namespace(p).ok_or_else(|| SyntaxError(format!("не объявлен префикс {p}")))?;
                NodeTest::Namespace(ns)
            }
            (Some(p), local) => {
                let ns = self.names.namespace(p).ok_or_else(|| SyntaxError(format!("не объявлен префикс {p}")))?;
                NodeTest::Name(self.names.intern(&ns, local))
            }
            (None, local) => {
                let ns = if attribute { String::new() } else { self.names.default_element_namespace().to_owned() };
                NodeTest::Name(self.names.intern(&ns, local))
            }
        })
    }

    fn predicates(&mut self) -> Result<Vec<Expr>, SyntaxError> {
        let mut out = Vec::new();
        while self.eat_sym("[") {
            self.enter()?;
            out.push(self.expr()?);
            self.expect("]")?;
            self.depth -= 1;
        }
        Ok(out)
    }

    fn postfix(&mut self) -> Result<Expr, SyntaxError> {
        let primary = self.primary()?;
        let predicates = self.predicates()?;
        if predicates.is_empty() { Ok(primary) } else { Ok(Expr::Filter(Box::new(primary), predicates)) }
    }

    fn primary(&mut self) -> Result<Expr, SyntaxError> {
        self.enter()?;
        let e = match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.at += 1;
                Expr::Str(s)
            }
            Some(Tok::Num(n)) => {
                self.at += 1;
                Expr::Num(n)
            }
            Some(Tok::Sym("(")) => {
                self.at += 1;
                if self.eat_sym(")") {
                    Expr::Sequence(Vec::new())
                } else {
                    let e = self.expr()?;
                    self.expect(")")?;
                    Expr::Paren(Box::new(e))
                }
            }
            Some(Tok::Sym("[")) => {
                self.at += 1;
                let mut members = Vec::new();
                if !self.eat_sym("]") {
                    loop {
                        members.push(self.single()?);
                        if self.eat_sym("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Expr::Array(members)
            }
            Some(Tok::Name(None, w)) if w == "if" => self.single()?,
            Some(Tok::Name(prefix, name)) => {
                if let Some(p) = prefix.as_deref()
                    && p != "fn"
                {
                    return Err(SyntaxError(format!("функция {p}:{name}() не поддерживается")));
                }
                self.at += 1;
                self.expect("(")?;
                let mut args = Vec::new();
                if !self.eat_sym(")") {
                    loop {
                        args.push(self.single()?);
                        if self.eat_sym(")") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                let func = Func::by_name(&name, args.len())?;
                Expr::Call(func, args)
            }
            other => return Err(SyntaxError(format!("неожиданное {other:?}"))),
        };
        self.depth -= 1;
        Ok(e)
    }
}
