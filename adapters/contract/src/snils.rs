//! SNILS, the insurance number that identifies a person in FRMR and REMD.

use std::fmt;

/// A SNILS whose format and control number have been checked.
///
/// The wire form is 11 digits without separators ([`Snils::as_str`]). `Debug` and
/// `Display` never print the number, so a `Snils` can go into a log field safely.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Snils(String);

/// Why a string is not a SNILS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnilsError {
    /// Not 11 digits (separators `-` and spaces are allowed in the `NNN-NNN-NNN CC` form).
    #[error("СНИЛС должен состоять из 11 цифр (формат NNN-NNN-NNN CC)")]
    Format,
    /// 11 digits, but the control number does not match the first nine.
    #[error("контрольное число СНИЛС не совпадает")]
    Checksum,
}

impl Snils {
    /// Accepts `11223344595` or `112-233-445 95`; checks the control number.
    ///
    /// Numbers up to `001-001-998` were issued before control numbers existed and are not
    /// checked.
    pub fn parse(input: &str) -> Result<Self, SnilsError> {
        let s = input.trim().as_bytes();
        let digit = |i: usize| s[i].is_ascii_digit();
        let digits: String = match s.len() {
            11 if (0..11).all(digit) => input.trim().to_owned(),
            // NNN-NNN-NNN CC or NNN-NNN-NNN-CC
            14 if [0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13].into_iter().all(digit)
                && s[3] == b'-'
                && s[7] == b'-'
                && (s[11] == b' ' || s[11] == b'-') =>
            {
                s.iter().filter(|b| b.is_ascii_digit()).map(|&b| char::from(b)).collect()
            }
            _ => return Err(SnilsError::Format),
        };
        if digits.bytes().all(|b| b == b'0') {
            return Err(SnilsError::Format);
        }
        let bytes = digits.as_bytes();
        let number: u32 = digits[..9].parse().map_err(|_| SnilsError::Format)?;
        if number > 1_001_998 {
            let sum: u32 = bytes[..9].iter().enumerate().map(|(i, b)| u32::from(b - b'0') * (9 - i as u32)).sum();
            let expected = control_number(sum);
            let given = u32::from(bytes[9] - b'0') * 10 + u32::from(bytes[10] - b'0');
            if expected != given {
                return Err(SnilsError::Checksum);
            }
        }
        Ok(Self(digits))
    }

    /// The 11 digits, for the wire and the database. Never log this.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn control_number(sum: u32) -> u32 {
    match sum {
        0..=99 => sum,
        100 | 101 => 0,
        _ => {
            let rest = sum % 101;
            if rest == 100 { 0 } else { rest }
        }
    }
}

impl fmt::Debug for Snils {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Snils(***)")
    }
}

impl fmt::Display for Snils {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***-***-*** **")
    }
}

impl serde::Serialize for Snils {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Snils {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Snils::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_from_frmr_md() {
        for valid in ["112-233-445 95", "137-199-816 00", "999-999-999 01", "001-019-998 00"] {
            assert!(Snils::parse(valid).is_ok(), "{valid} must be valid");
        }
        assert_eq!(Snils::parse("001-001-999 00"), Err(SnilsError::Checksum));
        assert_eq!(Snils::parse("112-233-445 96"), Err(SnilsError::Checksum));
    }

    #[test]
    fn wire_form_has_no_separators() {
        assert_eq!(Snils::parse("112-233-445 95").unwrap().as_str(), "11223344595");
        assert_eq!(Snils::parse("11223344595").unwrap().as_str(), "11223344595");
    }

    #[test]
    fn old_numbers_are_not_checked() {
        assert!(Snils::parse("001-001-998 77").is_ok());
        assert!(Snils::parse("000-000-001 99").is_ok());
    }

    #[test]
    fn bad_formats() {
        for bad in ["", "1122334459", "112233445950", "11223344a95", "112.233.445 95", "１１２２３３４４５９５"]
        {
            assert_eq!(Snils::parse(bad), Err(SnilsError::Format), "{bad:?}");
        }
    }

    #[test]
    fn samples_of_the_project_are_valid() {
        assert!(Snils::parse("20311784514").is_ok());
        assert!(Snils::parse("17450296372").is_ok());
        assert!(Snils::parse("15643219866").is_ok());
    }

    #[test]
    fn never_printed() {
        let s = Snils::parse("20311784514").unwrap();
        assert!(!format!("{s} {s:?}").contains("203"));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"20311784514\"");
    }
}
