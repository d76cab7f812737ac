//! Authentication: a presented API key checked against the stored clients
//! ([`crate::clients`]), in constant time, with a short memory of recent answers.

use std::collections::BTreeSet;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use uuid::Uuid;

pub use crate::clients::{ClientRecord, IssuedKey, NewClient, Role, Scope, issue};
use crate::clients::{hash_key, key_id_of};
use crate::memo::Memo;
use crate::store::{Store, StoreError};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub client_id: Uuid,
    pub name: String,
    pub roles: BTreeSet<Role>,
    pub scope: Scope,
}

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no API key")]
    Missing,
    #[error("API key not recognised")]
    Invalid,
    #[error("API key revoked")]
    Revoked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks presented keys against the store.
///
/// A key that authenticated is remembered in process for `remember_for` (the `api.key_cache_for`
/// setting), so the hot path does not read the database on every request; a revoked key
/// therefore stops working within that time on instances that used it recently.
#[derive(Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    memo: Arc<Memo<String, (Vec<u8>, Principal)>>,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, remember_for: std::time::Duration) -> Self {
        Self { store, memo: Arc::new(Memo::new(remember_for, 10_000)) }
    }

    /// Authenticates the value of an `Authorization` header.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let key =
            header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).ok_or(AuthError::Invalid)?.trim();
        self.authenticate_key(key).await
    }

    pub async fn authenticate_key(&self, key: &str) -> Result<Principal, AuthError> {
        let key_id = key_id_of(key).ok_or(AuthError::Invalid)?;
        let presented = hash_key(key);
        if let Some((hash, principal)) = self.memo.get(&key_id.to_owned())
            && bool::from(presented.as_slice().ct_eq(hash.as_slice()))
        {
            return Ok(principal);
        }
        let record = self.store.client_by_key_id(key_id).await?.ok_or(AuthError::Invalid)?;
        if !bool::from(presented.as_slice().ct_eq(record.key_hash.as_slice())) {
            return Err(AuthError::Invalid);
        }
        if record.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        let principal = Principal { client_id: record.id, name: record.name, roles: record.roles, scope: record.scope };
        self.memo.insert(record.key_id, (record.key_hash, principal.clone()));
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn keys_have_a_recognisable_shape() {
        let issued = issue("x", BTreeSet::from([Role::Verifier]), Scope::All, Utc::now());
        assert_eq!(key_id_of(&issued.key), Some(issued.client.key_id.as_str()));
        assert_eq!(issued.client.key_hash, hash_key(&issued.key));
        assert!(!format!("{issued:?}").contains(&issued.key));
        for bad in ["", "egk_", "egk_zz_yy", "abc_0123456789abcdef_00", &issued.key[..issued.key.len() - 1]] {
            assert_eq!(key_id_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn two_keys_differ() {
        let a = issue("a", BTreeSet::new(), Scope::All, Utc::now());
        let b = issue("b", BTreeSet::new(), Scope::All, Utc::now());
        assert_ne!(a.key, b.key);
        assert_ne!(a.client.key_id, b.client.key_id);
    }

    #[test]
    fn roles_parse() {
        assert_eq!("ops".parse::<Role>(), Ok(Role::Ops));
        assert!("admin".parse::<Role>().is_err());
    }
}
