//! XPath regular expressions (`fn:matches`, the XML Schema dialect with XPath's additions)
//! translated to the `regex` crate's syntax, which runs in time linear in the input: a
//! package or a document can make a pattern large, never slow.
//!
//! The differences handled: `.` excludes `\r` as well as `\n`; `\s`, `\w`, `\d`, `\i`, `\c`
//! and their negations keep their XML Schema meaning; `\p{IsCyrillic}`-style block escapes
//! become ranges; class subtraction `[a-z-[aeiou]]` becomes `[a-z--[aeiou]]`; the flags
//! `s`, `m`, `i`, `x` and `q`. Back-references have no linear-time implementation and are
//! refused; so is any `(?` other than `(?:`.

use std::collections::HashMap;

/// Compiled size bounds for one expression (bytes of the compiled program).
const SIZE_LIMIT: usize = 1 << 20;
const DFA_SIZE_LIMIT: usize = 2 << 20;
const NEST_LIMIT: u32 = 64;
/// The longest pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 4096;

/// A pattern could not be translated or compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("регулярное выражение «{pattern}»: {reason}")]
pub struct RegexError {
    pub pattern: String,
    pub reason: String,
}

/// The package's own patterns, compiled once when the package is: flags → pattern → the
/// expression (looked up without allocating; a `Regex` keeps its matching caches, so it is
/// lent, never cloned).
#[derive(Debug, Default)]
pub struct Cache {
    compiled: HashMap<String, HashMap<String, ::regex::Regex>>,
}

impl Cache {
    /// Compiles and keeps `pattern` with `flags`.
    pub fn add(&mut self, pattern: &str, flags: &str) -> Result<(), RegexError> {
        let by_pattern = self.compiled.entry(flags.to_owned()).or_default();
        if !by_pattern.contains_key(pattern) {
            by_pattern.insert(pattern.to_owned(), compile(pattern, flags)?);
        }
        Ok(())
    }

    pub fn get(&self, pattern: &str, flags: &str) -> Option<&::regex::Regex> {
        self.compiled.get(flags)?.get(pattern)
    }

    pub fn len(&self) -> usize {
        self.compiled.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.compiled.is_empty()
    }
}

/// Translates and compiles an XPath pattern with its flags.
pub fn compile(pattern: &str, flags: &str) -> Result<::regex::Regex, RegexError> {
    let fail = |reason: String| RegexError { pattern: pattern.chars().take(200).collect(), reason };
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(fail(format!("длиннее {MAX_PATTERN_BYTES} байт")));
    }
    let mut dot_all = false;
    let mut multi_line = false;
    let mut case_insensitive = false;
    let mut extended = false;
    let mut literal = false;
    for f in flags.chars() {
        match f {
            's' => dot_all = true,
            'm' => multi_line = true,
            'i' => case_insensitive = true,
            'x' => extended = true,
            'q' => literal = true,
            other => return Err(fail(format!("неизвестный флаг «{other}»"))),
        }
    }
    let body = if literal { ::regex::escape(pattern) } else { translate(pattern, dot_all, extended).map_err(fail)? };
    ::regex::RegexBuilder::new(&body)
        .multi_line(multi_line)
        .case_insensitive(case_insensitive)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(DFA_SIZE_LIMIT)
        .nest_limit(NEST_LIMIT)
        .build()
        .map_err(|e| fail(e.to_string().lines().last().unwrap_or("не компилируется").trim().to_owned()))
}

/// The XML Schema ranges of the block names the ministry's region may use; others are
/// refused rather than guessed.
fn block(name: &str) -> Option<&'static str> {
    Some(match name {
        "BasicLatin" => r"\x{0}-\x{7F}",
        "Latin-1Supplement" => r"\x{80}-\x{FF}",
        "LatinExtended-A" => r"\x{100}-\x{17F}",
        "LatinExtended-B" => r"\x{180}-\x{24F}",
        "GreekandCoptic" | "Greek" => r"\x{370}-\x{3FF}",
        "Cyrillic" => r"\x{400}-\x{4FF}",
        "CyrillicSupplement" | "CyrillicSupplementary" => r"\x{500}-\x{52F}",
        "GeneralPunctuation" => r"\x{2000}-\x{206F}",
        "CurrencySymbols" => r"\x{20A0}-\x{20CF}",
        "LetterlikeSymbols" => r"\x{2100}-\x{214F}",
        "NumberForms" => r"\x{2150}-\x{218F}",
        "Arrows" => r"\x{2190}-\x{21FF}",
        "MathematicalOperators" => r"\x{2200}-\x{22FF}",
        _ => return None,
    })
}

const SPACE: &str = r"[\x20\t\n\r]";
const NOT_SPACE: &str = r"[^\x20\t\n\r]";
const WORD: &str = r"[^\p{P}\p{Z}\p{C}]";
const NOT_WORD: &str = r"[\p{P}\p{Z}\p{C}]";
const NAME_START: &str = r"[\p{L}_:]";
const NOT_NAME_START: &str = r"[^\p{L}_:]";
const NAME_CHAR: &str = r"[\p{L}\p{Nd}\p{Mn}\p{Mc}._:\-\x{B7}]";
const NOT_NAME_CHAR: &str = r"[^\p{L}\p{Nd}\p{Mn}\p{Mc}._:\-\x{B7}]";

fn translate(pattern: &str, dot_all: bool, extended: bool) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut i = 0;
    // Depth of character classes (subtraction nests them).
    let mut class_depth = 0usize;
    while i < chars.len() {
        let c = chars[i];
        if extended && class_depth == 0 && matches!(c, ' ' | '\t' | '\n' | '\r') {
            i += 1;
            continue;
        }
        match c {
            '\\' => {
                let Some(&e) = chars.get(i + 1) else {
                    return Err("оканчивается обратной косой чертой".into());
                };
                i += 2;
                match e {
                    's' => out.push_str(SPACE),
                    'S' => out.push_str(NOT_SPACE),
                    'w' => out.push_str(WORD),
                    'W' => out.push_str(NOT_WORD),
                    'd' => out.push_str(r"\p{Nd}"),
                    'D' => out.push_str(r"\P{Nd}"),
                    'i' => out.push_str(NAME_START),
                    'I' => out.push_str(NOT_NAME_START),
                    'c' => out.push_str(NAME_CHAR),
                    'C' => out.push_str(NOT_NAME_CHAR),
                    'p' | 'P' => {
                        if chars.get(i) != Some(&'{') {
                            return Err(format!("\\{e} без {{"));
                        }
                        let close = chars[i..].iter().position(|&x| x == '}').ok_or("незакрытое \\p{")?;
                        let name: String = chars[i + 1..i + close].iter().collect();
                        i += close + 1;
                        if let Some(block_name) = name.strip_prefix("Is") {
                            let range =
                                block(block_name).ok_or_else(|| format!("блок Unicode {name} не поддерживается"))?;
                            let neg = if e == 'P' { "^" } else { "" };
                            out.push_str(&format!("[{neg}{range}]"));
                        } else {
                            out.push('\\');
                            out.push(e);
                            out.push('{');
                            out.push_str(&name);
                            out.push('}');
                        }
                    }
                    'n' | 'r' | 't' => {
                        out.push('\\');
                        out.push(e);
                    }
                    '\\' | '|' | '.' | '?' | '*' | '+' | '(' | ')' | '{' | '}' | '-' | '[' | ']' | '^' | '$' => {
                        out.push('\\');
                        out.push(e);
                    }
                    '1'..='9' => return Err("обратные ссылки не поддерживаются".into()),
                    other => return Err(format!("неизвестная escape-последовательность \\{other}")),
                }
            }
            '.' if class_depth == 0 => {
                out.push_str(if dot_all { r"(?s:.)" } else { r"[^\n\r]" });
                i += 1;
            }
            '(' if class_depth == 0 => {
                if chars.get(i + 1) == Some(&'?') {
                    if chars.get(i + 2) == Some(&':') {
                        out.push_str("(?:");
                        i += 3;
                        continue;
                    }
                    return Err("конструкция (? не поддерживается".into());
                }
                out.push('(');
                i += 1;
            }
            '[' => {
                class_depth += 1;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(']');
                i += 1;
            }
            '-' if class_depth > 0 && chars.get(i + 1) == Some(&'[') => {
                // Subtraction: `[a-z-[aeiou]]`.
                out.push_str("--");
                i += 1;
            }
            '&' | '~' | '-' | '#' | ' ' if class_depth > 0 => {
                // Operators of the `regex` crate inside a class; literal in XML Schema.
                if c == '-' {
                    // A range dash between two members stays a dash; one at an edge is literal.
                    let prev_is_open = out.ends_with('[') || out.ends_with("[^");
                    let next_closes = chars.get(i + 1) == Some(&']');
                    if prev_is_open || next_closes {
                        out.push_str(r"\-");
                    } else {
                        out.push('-');
                    }
                } else {
                    out.push('\\');
                    out.push(c);
                }
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    if class_depth != 0 {
        return Err("незакрытый класс символов".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::compile;

    #[test]
    fn xml_schema_meanings_are_kept() {
        let re = compile(r"^tel:\+?[-0-9().]+$|^([^t].+|t[^e].*|te[^l].*)$", "").unwrap();
        assert!(re.is_match("tel:+7(384)2-00-00"));
        assert!(re.is_match("mailto:a@b"));
        assert!(!re.is_match("tel:abc"));
        // `.` does not match a carriage return.
        assert!(!compile("^a.b$", "").unwrap().is_match("a\rb"));
        assert!(compile("^a.b$", "s").unwrap().is_match("a\rb"));
        // `\s` is the four XML spaces only.
        assert!(!compile(r"^\s$", "").unwrap().is_match("\u{a0}"));
        assert!(compile(r"^[-\s]{0,1}$", "").unwrap().is_match(" "));
        assert!(compile(r"^\p{IsCyrillic}+$", "").unwrap().is_match("Кемерово"));
        assert!(!compile(r"^[а-я-[аеиоу]]+$", "").unwrap().is_match("а"));
        assert!(compile(r"^[а-я-[аеиоу]]+$", "").unwrap().is_match("бв"));
        assert!(compile("^Отдельные лабораторные тесты$", "i").unwrap().is_match("ОТДЕЛЬНЫЕ лабораторные ТЕСТЫ"));
        assert!(compile("a.b", "q").unwrap().is_match("xa.by"));
        assert!(!compile("a.b", "q").unwrap().is_match("axb"));
        assert!(compile("^[1|2]{1}[0-9]{8}$", "").unwrap().is_match("|12345678"));
    }

    #[test]
    fn what_cannot_run_in_linear_time_is_refused() {
        assert!(compile(r"(a)\1", "").is_err());
        assert!(compile("(?=a)", "").is_err());
        assert!(compile("[a", "").is_err());
        assert!(compile("a", "z").is_err());
        // A catastrophic pattern for a backtracking engine is fast here.
        let re = compile("^(a+)+$", "").unwrap();
        let input = "a".repeat(100_000) + "b";
        assert!(!re.is_match(&input));
        // A pattern whose compiled form is too large is refused, not built.
        assert!(compile("(a{1000}){1000}", "").is_err());
    }
}
