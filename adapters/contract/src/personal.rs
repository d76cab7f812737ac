//! Personal data that must never reach a log.

use std::fmt;

/// A value that is personal data (a name, a birth date). `Debug` and `Display` print
/// `***`; serialisation is transparent, because the API and the cache need the value.
#[derive(Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Personal<T>(pub T);

impl<T> Personal<T> {
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Personal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T> fmt::Display for Personal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Masks every run of nine or more digits (SNILS, policy and passport numbers, with or
/// without `-`/space separators) in text that came from outside — an error message of a
/// federal service, say — before it is logged or stored as a failure reason.
pub fn scrub_personal(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let mut j = i;
            let mut digits = 0;
            while j < chars.len()
                && (chars[j].is_ascii_digit()
                    || ((chars[j] == '-' || chars[j] == ' ') && chars.get(j + 1).is_some_and(char::is_ascii_digit)))
            {
                if chars[j].is_ascii_digit() {
                    digits += 1;
                }
                j += 1;
            }
            if digits >= 9 {
                out.push_str("***");
            } else {
                out.extend(&chars[i..j]);
            }
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_in_logs_not_on_the_wire() {
        let name = Personal("Колпинская".to_owned());
        assert_eq!(format!("{name} {name:?}"), "*** ***");
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"Колпинская\"");
    }

    #[test]
    fn scrubs_long_digit_runs_only() {
        assert_eq!(scrub_personal("person 20311784514 not found, code 404"), "person *** not found, code 404");
        assert_eq!(scrub_personal("snils 112-233-445 95."), "snils ***.");
        assert_eq!(scrub_personal("OID 1.2.643.5.1.13.13.12.2.42.2917"), "OID 1.2.643.5.1.13.13.12.2.42.2917");
        assert_eq!(scrub_personal("date 2023-08-18"), "date 2023-08-18");
    }
}
