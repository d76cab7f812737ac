//! ISO object identifiers: organisations, departments, dictionaries.

use std::fmt;

/// A syntactically valid OID: dot-separated decimal arcs, no leading zeros, at least two arcs.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(String);

/// Why a string is not an OID, or not the kind of OID expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidError {
    #[error("OID должен состоять из чисел, разделённых точками (например 1.2.643.5.1.13.13.12.2.42.2917)")]
    Syntax,
    #[error("OID {0} не относится к реестру медицинских организаций (ФРМО, 1.2.643.5.1.13.13.12)")]
    NotMedicalOrganization(String),
    #[error("OID {0} — это подразделение (<OID МО>.0.<n>); укажите OID самой медицинской организации")]
    Department(String),
}

/// The arc under which FRMO registers medical organisations.
pub const FRMO_ARC: &str = "1.2.643.5.1.13.13.12";

impl Oid {
    pub fn parse(input: &str) -> Result<Self, OidError> {
        let s = input.trim();
        if s.len() > 256 {
            return Err(OidError::Syntax);
        }
        let mut arcs = 0;
        for arc in s.split('.') {
            let ok = !arc.is_empty()
                && arc.len() <= 20
                && arc.bytes().all(|b| b.is_ascii_digit())
                && !(arc.len() > 1 && arc.starts_with('0'));
            if !ok {
                return Err(OidError::Syntax);
            }
            arcs += 1;
        }
        if arcs < 2 {
            return Err(OidError::Syntax);
        }
        Ok(Self(s.to_owned()))
    }

    /// An OID of a medical organisation (or one of its departments) in FRMO.
    pub fn parse_organization(input: &str) -> Result<Self, OidError> {
        let oid = Self::parse(input)?;
        if !oid.is_under(FRMO_ARC) || oid.0.len() == FRMO_ARC.len() {
            return Err(OidError::NotMedicalOrganization(oid.0));
        }
        // FRMO numbers departments `<MO OID>.0.<n>`.
        let below: Vec<&str> = oid.0[FRMO_ARC.len() + 1..].split('.').collect();
        if below.len() > 3 && below[3] == "0" {
            return Err(OidError::Department(oid.0));
        }
        Ok(oid)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The medical organisation a department's OID (`<MO OID>.0.<n>`) belongs to; `None` for
    /// any other OID.
    pub fn organization_of_department(&self) -> Option<Oid> {
        let below: Vec<&str> = self.0.strip_prefix(FRMO_ARC)?.strip_prefix('.')?.split('.').collect();
        (below.len() > 4 && below[3] == "0").then(|| Oid(format!("{FRMO_ARC}.{}", below[..3].join("."))))
    }

    /// True when `self` equals `prefix` or lies below it in the tree.
    pub fn is_under(&self, prefix: &str) -> bool {
        self.0 == prefix || (self.0.starts_with(prefix) && self.0.as_bytes().get(prefix.len()) == Some(&b'.'))
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({})", self.0)
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Oid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Oid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Oid::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax() {
        assert!(Oid::parse("1.2.643.5.1.13.13.12.2.42.2917").is_ok());
        for bad in ["", "1", "1..2", "1.2.", ".1.2", "1.02", "1.2.a", "1.2 .3"] {
            assert_eq!(Oid::parse(bad), Err(OidError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn organizations_live_under_frmo() {
        assert!(Oid::parse_organization("1.2.643.5.1.13.13.12.2.42.2917").is_ok());
        assert!(matches!(
            Oid::parse_organization("1.2.643.5.1.13.13.11.1002"),
            Err(OidError::NotMedicalOrganization(_))
        ));
        assert!(Oid::parse_organization(FRMO_ARC).is_err());
        assert!(Oid::parse_organization("1.2.643.5.1.13.13.120.1").is_err());
        assert!(matches!(
            Oid::parse_organization("1.2.643.5.1.13.13.12.2.42.2917.0.4411"),
            Err(OidError::Department(_))
        ));
        let department = Oid::parse("1.2.643.5.1.13.13.12.2.42.2917.0.4411").unwrap();
        assert_eq!(department.organization_of_department().unwrap().as_str(), "1.2.643.5.1.13.13.12.2.42.2917");
        for other in
            ["1.2.643.5.1.13.13.12.2.42.2917", "1.2.643.5.1.13.13.12.2.42.2917.0", "1.2.643.5.1.13.13.11.1.2.3.0.4"]
        {
            assert_eq!(Oid::parse(other).unwrap().organization_of_department(), None, "{other}");
        }
    }
}
