//! API clients: who may call the internal API, in which roles, for which organisations,
//! and their keys. The records the store keeps; [`crate::auth`] checks a presented key
//! against them.
//!
//! A key looks like `egk_<key id: 16 hex>_<secret: 64 hex>`. The key id is stored in clear
//! to find the client; only the SHA-256 of the whole key is stored, and it is compared in
//! constant time. Keys are random 256-bit secrets, so a fast hash is the right one (there
//! is nothing to brute-force that a slow hash would protect).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use egisz_contract::Oid;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What a client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Submits documents for registration in REMD.
    Submitter,
    /// Checks medical workers against FRMR.
    Verifier,
    /// Reviews and re-runs failed submissions; reads reports.
    Ops,
    /// Reads submissions and their status.
    Reader,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Submitter, Role::Verifier, Role::Ops, Role::Reader];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Submitter => "submitter",
            Role::Verifier => "verifier",
            Role::Ops => "ops",
            Role::Reader => "reader",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}; roles: submitter, verifier, ops, reader"))
    }
}

/// The organisations a client may act for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Only(BTreeSet<Oid>),
}

impl Scope {
    pub fn allows(&self, organization: &Oid) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(set) => set.contains(organization),
        }
    }

    /// The organisations as a list for a store's filter; `None`: every one.
    pub fn organizations(&self) -> Option<Vec<Oid>> {
        match self {
            Scope::All => None,
            Scope::Only(set) => Some(set.iter().cloned().collect()),
        }
    }
}

/// A client as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub id: Uuid,
    pub name: String,
    pub key_id: String,
    pub key_hash: Vec<u8>,
    pub roles: BTreeSet<Role>,
    pub scope: Scope,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A client to be stored (the same fields; kept apart so a record always comes from the store).
pub type NewClient = ClientRecord;

/// A freshly generated key: shown to the admin once, never stored.
pub struct IssuedKey {
    pub client: ClientRecord,
    pub key: String,
}

impl fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedKey").field("client", &self.client).field("key", &"***").finish()
    }
}

const KEY_PREFIX: &str = "egk_";

pub(crate) fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Splits a presented key into its key id, or `None` when it does not have the key's shape.
pub(crate) fn key_id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, 16) && hex(secret, 64)).then_some(id)
}

/// Generates a client with a new key.
pub fn issue(name: &str, roles: BTreeSet<Role>, scope: Scope, now: DateTime<Utc>) -> IssuedKey {
    let mut rng = rand::rng();
    let mut id_bytes = [0u8; 8];
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut id_bytes);
    rng.fill_bytes(&mut secret);
    let key_id = hex::encode(id_bytes);
    let key = format!("{KEY_PREFIX}{key_id}_{}", hex::encode(secret));
    IssuedKey {
        client: ClientRecord {
            id: Uuid::now_v7(),
            name: name.to_owned(),
            key_id,
            key_hash: hash_key(&key),
            roles,
            scope,
            created_at: now,
            revoked_at: None,
        },
        key,
    }
}
