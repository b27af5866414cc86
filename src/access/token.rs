//! Bearer tokens: created for a user, shown once, kept only as a SHA-256 in the state store
//! (under `tokens/<id>`), checked in constant time, expired or revoked.
//!
//! A token reads `ferry_<12 hex: id>_<64 hex: secret>`. The id part finds the record with one
//! key lookup, so checking a token on every request costs one read of the store; the whole
//! token's SHA-256 is then compared with the stored one in constant time.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{AccessError, AuthError};
use super::identity::{AuthMethod, Identity};
use crate::state::{StateStore, StateStoreExt, get_json, scan_json, txn_get_json, txn_put_json};

/// How every ferry token starts, so that scanners and people recognize one.
pub const TOKEN_PREFIX: &str = "ferry_";
/// Where token records live in the state store.
pub const TOKEN_KEY_PREFIX: &str = "tokens/";

const ID_HEX: usize = 12;
const SECRET_HEX: usize = 64;

/// A token as stored: who it is for, when it ends, and the SHA-256 of the token (never the
/// token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// `t-` and 12 hex digits.
    pub id: String,
    pub user: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `None`: never expires.
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    sha256: String,
}

/// Whether a token may still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Active,
    Expired,
    Revoked,
}

impl TokenState {
    /// The name shown in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Expired => "expired",
            TokenState::Revoked => "revoked",
        }
    }
}

impl TokenRecord {
    /// The state of the token at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> TokenState {
        if self.revoked_at.is_some() {
            TokenState::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            TokenState::Expired
        } else {
            TokenState::Active
        }
    }
}

/// The text of a token. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// The token, to hand to its user once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(…)")
    }
}

/// A token just created: its record, and the token itself, which exists nowhere else.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub record: TokenRecord,
    pub token: TokenSecret,
}

/// Checks a name a token may be created for: not empty, no whitespace, and no `:` (names with
/// a namespace, like `group:` or `oidc:`, are not token users).
pub fn check_user(user: &str) -> Result<(), AccessError> {
    let bad = |reason| AccessError::BadUser {
        user: user.to_string(),
        reason,
    };
    if user.is_empty() {
        return Err(bad("it is empty"));
    }
    if user.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains whitespace"));
    }
    if user.contains(':') || user.contains('*') {
        return Err(bad(
            "`:` and `*` are reserved (group:NAME, oidc:… identities, wildcards)",
        ));
    }
    Ok(())
}

/// Creates a token for `user`, valid for `expires` from `now` (`None`: until revoked).
pub fn create_token(
    store: &dyn StateStore,
    user: &str,
    description: Option<&str>,
    expires: Option<Duration>,
    now: DateTime<Utc>,
) -> Result<NewToken, AccessError> {
    check_user(user)?;
    let expires_at = expires
        .map(|d| {
            chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
        })
        .map(|at| at.unwrap_or(DateTime::<Utc>::MAX_UTC));
    loop {
        let id_hex = random_hex(ID_HEX / 2)?;
        let token = format!("{TOKEN_PREFIX}{id_hex}_{}", random_hex(SECRET_HEX / 2)?);
        let record = TokenRecord {
            id: format!("t-{id_hex}"),
            user: user.to_string(),
            description: description.map(str::to_string),
            created_at: now,
            expires_at,
            revoked_at: None,
            sha256: sha256_hex(&token),
        };
        let key = key(&record.id);
        let created = store.transaction(|txn| {
            if txn.get(key.as_bytes())?.is_some() {
                return Ok(false);
            }
            txn_put_json(txn, key.as_bytes(), &record)?;
            Ok(true)
        })?;
        if created {
            return Ok(NewToken {
                record,
                token: TokenSecret(token),
            });
        }
    }
}

/// Every token, ordered by id.
pub fn list_tokens(store: &dyn StateStore) -> Result<Vec<TokenRecord>, AccessError> {
    Ok(scan_json(store, TOKEN_KEY_PREFIX.as_bytes())?
        .into_iter()
        .map(|(_, record)| record)
        .collect())
}

/// Revokes the token `id` at `now`; revoking a revoked token keeps its first revocation time.
pub fn revoke_token(
    store: &dyn StateStore,
    id: &str,
    now: DateTime<Utc>,
) -> Result<TokenRecord, AccessError> {
    let key = key(id);
    store.try_transaction(|txn| {
        let mut record: TokenRecord = txn_get_json(txn, key.as_bytes())?
            .ok_or_else(|| AccessError::UnknownToken { id: id.to_string() })?;
        if record.revoked_at.is_none() {
            record.revoked_at = Some(now);
            txn_put_json(txn, key.as_bytes(), &record)?;
        }
        Ok(record)
    })
}

/// The identity a ferry token stands for at `now`.
pub fn verify_token(
    store: &dyn StateStore,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Identity, AuthError> {
    let id_hex = parse(token).ok_or(AuthError::InvalidToken)?;
    let record: TokenRecord = get_json(store, key(&format!("t-{id_hex}")).as_bytes())
        .map_err(AuthError::Store)?
        .ok_or(AuthError::InvalidToken)?;
    let presented = sha256_hex(token);
    if !bool::from(presented.as_bytes().ct_eq(record.sha256.as_bytes())) {
        return Err(AuthError::InvalidToken);
    }
    match record.state(now) {
        TokenState::Active => Ok(Identity {
            name: record.user,
            auth: AuthMethod::Token { id: record.id },
        }),
        TokenState::Expired => Err(AuthError::Expired {
            at: rfc3339(record.expires_at),
            id: record.id,
        }),
        TokenState::Revoked => Err(AuthError::Revoked {
            at: rfc3339(record.revoked_at),
            id: record.id,
        }),
    }
}

/// The id part of a well-formed token.
fn parse(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let is_hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    (is_hex(id, ID_HEX) && is_hex(secret, SECRET_HEX)).then_some(id)
}

fn key(id: &str) -> String {
    format!("{TOKEN_KEY_PREFIX}{id}")
}

fn rfc3339(at: Option<DateTime<Utc>>) -> String {
    at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn random_hex(bytes: usize) -> Result<String, AccessError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|err| AccessError::Random {
        reason: err.to_string(),
    })?;
    Ok(hex(&buf))
}

fn sha256_hex(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemStore;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .expect("timestamp")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_token_stands_for_its_user_until_it_expires() {
        let store = MemStore::default();
        let new = create_token(
            &store,
            "alice",
            Some("laptop"),
            Some(Duration::from_secs(3600)),
            now(),
        )
        .expect("created");
        let token = new.token.expose();
        assert!(token.starts_with("ferry_"), "{token}");
        assert_eq!(token.len(), TOKEN_PREFIX.len() + ID_HEX + 1 + SECRET_HEX);
        let identity = verify_token(&store, token, now()).expect("valid");
        assert_eq!(identity.name, "alice");
        assert_eq!(
            identity.auth,
            AuthMethod::Token {
                id: new.record.id.clone()
            }
        );
        let later = now() + chrono::Duration::hours(1);
        let err = verify_token(&store, token, later).expect_err("expired");
        assert_eq!(
            err.to_string(),
            format!("token {} expired at 2026-12-01T11:00:00Z", new.record.id)
        );
    }

    #[test]
    fn only_the_hash_is_stored() {
        let store = MemStore::default();
        let new = create_token(&store, "alice", None, None, now()).expect("created");
        let secret = &new.token.expose()[TOKEN_PREFIX.len() + ID_HEX + 1..];
        for (_, value) in store.scan_prefix(b"").expect("scan") {
            let text = String::from_utf8(value).expect("json");
            assert!(!text.contains(secret), "{text}");
            assert!(text.contains(&sha256_hex(new.token.expose())), "{text}");
        }
        assert!(!format!("{new:?}").contains(secret));
    }

    #[test]
    fn a_wrong_secret_or_a_garbled_token_is_refused() {
        let store = MemStore::default();
        let new = create_token(&store, "alice", None, None, now()).expect("created");
        let token = new.token.expose();
        let last = token.chars().last().expect("non-empty");
        let flipped = format!(
            "{}{}",
            &token[..token.len() - 1],
            if last == '0' { '1' } else { '0' }
        );
        for bad in [
            flipped.as_str(),
            "ferry_",
            "ferry_abc_def",
            &token[..token.len() - 1],
            &token.to_uppercase(),
        ] {
            assert!(
                matches!(
                    verify_token(&store, bad, now()),
                    Err(AuthError::InvalidToken)
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_revoked_token_is_refused_and_listed_as_revoked() {
        let store = MemStore::default();
        let keep = create_token(&store, "bob", None, None, now()).expect("created");
        let gone = create_token(&store, "alice", None, None, now()).expect("created");
        let revoked = revoke_token(&store, &gone.record.id, now()).expect("revoked");
        assert_eq!(revoked.state(now()), TokenState::Revoked);
        let again = revoke_token(&store, &gone.record.id, now() + chrono::Duration::hours(1))
            .expect("idempotent");
        assert_eq!(again.revoked_at, Some(now()));
        assert!(matches!(
            verify_token(&store, gone.token.expose(), now()),
            Err(AuthError::Revoked { .. })
        ));
        assert_eq!(
            verify_token(&store, keep.token.expose(), now())
                .expect("still valid")
                .name,
            "bob"
        );
        let states: Vec<(String, TokenState)> = list_tokens(&store)
            .expect("list")
            .into_iter()
            .map(|r| (r.user.clone(), r.state(now())))
            .collect();
        let mut expected = vec![
            ("bob".to_string(), TokenState::Active),
            ("alice".to_string(), TokenState::Revoked),
        ];
        expected.sort_by_key(|(user, _)| {
            if *user == "bob" {
                keep.record.id.clone()
            } else {
                gone.record.id.clone()
            }
        });
        assert_eq!(states, expected);
        assert!(matches!(
            revoke_token(&store, "t-000000000000", now()),
            Err(AccessError::UnknownToken { .. })
        ));
    }

    #[test]
    fn user_names_with_namespaces_are_refused() {
        for bad in ["", "group:x", "oidc:x", "a b", "*"] {
            assert!(check_user(bad).is_err(), "{bad:?}");
        }
        check_user("ci-bot").expect("plain name");
    }
}
