//! OIDC ID tokens: the issuer's signing keys (discovered through
//! `{issuer}/.well-known/openid-configuration` and cached), the signature and the `iss`,
//! `aud`, `exp` and `nbf` checks, and the identity built from the claims.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Map, Value};

use super::error::AuthError;
use super::identity::{AuthMethod, Identity};
use crate::pipeline::{AccessPolicy, OidcIssuer};

/// The algorithms ferry accepts ID tokens signed with.
const ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];
/// Keys are fetched again after this long, so that a key an issuer withdrew stops working.
const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
/// An unknown key id fetches the keys again, at most this often per issuer.
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// How long one discovery or key request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How much clock difference between ferry and an issuer `exp` and `nbf` tolerate.
const LEEWAY_SECS: u64 = 30;

/// One issuer's keys and when they were fetched.
struct CachedKeys {
    keys: JwkSet,
    fetched_at: Instant,
}

/// Verifies ID tokens, caching each issuer's keys.
pub(crate) struct OidcVerifier {
    http: reqwest::Client,
    keys: Mutex<HashMap<String, CachedKeys>>,
    /// When each issuer's keys were last asked for, whether that worked or not.
    attempts: Mutex<HashMap<String, Instant>>,
}

impl OidcVerifier {
    pub(crate) fn new(http: reqwest::Client) -> Self {
        Self {
            http,
            keys: Mutex::new(HashMap::new()),
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// The identity an ID token from an issuer of `policy` stands for.
    pub(crate) async fn verify(
        &self,
        policy: &AccessPolicy,
        token: &str,
    ) -> Result<Identity, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let iss = unverified_issuer(token, header.alg)?;
        let issuer = policy
            .issuer(&iss)
            .ok_or_else(|| AuthError::UnknownIssuer {
                issuer: shorten(&iss),
            })?;
        let invalid = |reason: String| AuthError::InvalidIdToken {
            issuer: issuer.issuer.clone(),
            reason,
        };
        if !ALGORITHMS.contains(&header.alg) {
            return Err(invalid(format!(
                "it is signed with {:?}; ferry accepts RS256 and ES256",
                header.alg
            )));
        }
        let jwk = self.key_for(issuer, &header).await?;
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|err| invalid(format!("the issuer's key cannot be used: {err}")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&issuer.issuer]);
        validation.set_audience(&[&issuer.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|err| invalid(describe(&err, issuer)))?
            .claims;
        let name = issuer
            .identity
            .render(|name| claim_text(&claims, name))
            .map_err(|claim| AuthError::MissingClaim {
                issuer: issuer.issuer.clone(),
                claim,
            })?;
        Ok(Identity {
            name,
            auth: AuthMethod::Oidc {
                issuer: issuer.issuer.clone(),
            },
        })
    }

    /// The key the token's header names, from the cache or fetched: keys older than
    /// [`KEYS_MAX_AGE`] are fetched again, and so are keys that lack the token's `kid`, at
    /// most every [`REFETCH_INTERVAL`].
    async fn key_for(&self, issuer: &OidcIssuer, header: &Header) -> Result<Jwk, AuthError> {
        let cached = self.cached(&issuer.issuer, header);
        if let Some((Some(jwk), fresh)) = &cached
            && *fresh
        {
            return Ok(jwk.clone());
        }
        if !self.may_fetch(&issuer.issuer) {
            return match cached {
                Some((Some(jwk), _)) => Ok(jwk),
                _ => Err(no_key(issuer, header)),
            };
        }
        let keys = self.fetch(issuer).await?;
        let jwk = find(&keys, header).cloned();
        self.keys
            .lock()
            .expect("the key cache is never poisoned: no code panics holding it")
            .insert(
                issuer.issuer.clone(),
                CachedKeys {
                    keys,
                    fetched_at: Instant::now(),
                },
            );
        jwk.ok_or_else(|| no_key(issuer, header))
    }

    /// The cached key for the header (if the issuer's keys are cached at all), and whether
    /// the cache is younger than [`KEYS_MAX_AGE`].
    fn cached(&self, issuer: &str, header: &Header) -> Option<(Option<Jwk>, bool)> {
        let cache = self
            .keys
            .lock()
            .expect("the key cache is never poisoned: no code panics holding it");
        let entry = cache.get(issuer)?;
        Some((
            find(&entry.keys, header).cloned(),
            entry.fetched_at.elapsed() < KEYS_MAX_AGE,
        ))
    }

    /// Records an attempt to fetch `issuer`'s keys, unless one was made less than
    /// [`REFETCH_INTERVAL`] ago.
    fn may_fetch(&self, issuer: &str) -> bool {
        let mut attempts = self
            .attempts
            .lock()
            .expect("the attempt log is never poisoned: no code panics holding it");
        let now = Instant::now();
        match attempts.get(issuer) {
            Some(at) if now.duration_since(*at) < REFETCH_INTERVAL => false,
            _ => {
                attempts.insert(issuer.to_string(), now);
                true
            }
        }
    }

    /// Discovery, then the JWKS.
    async fn fetch(&self, issuer: &OidcIssuer) -> Result<JwkSet, AuthError> {
        let failed = |reason: String| AuthError::Keys {
            issuer: issuer.issuer.clone(),
            reason,
        };
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.issuer.trim_end_matches('/')
        );
        let discovery: Value = self.get_json(&url).await.map_err(&failed)?;
        if discovery.get("issuer").and_then(Value::as_str) != Some(issuer.issuer.as_str()) {
            return Err(failed(format!(
                "{url} names a different issuer ({})",
                discovery.get("issuer").unwrap_or(&Value::Null)
            )));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| failed(format!("{url} has no jwks_uri")))?;
        let keys: Value = self.get_json(jwks_uri).await.map_err(&failed)?;
        serde_json::from_value(keys)
            .map_err(|err| failed(format!("{jwks_uri} is not a JSON Web Key Set: {err}")))
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let response = self
            .http
            .get(url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|err| format!("GET {url}: {err}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {url}: status {status}"));
        }
        response
            .json()
            .await
            .map_err(|err| format!("GET {url}: not JSON: {err}"))
    }
}

/// The key for the header: by `kid`, or the only key of the set when the token names none.
fn find<'a>(keys: &'a JwkSet, header: &Header) -> Option<&'a Jwk> {
    match &header.kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
}

fn no_key(issuer: &OidcIssuer, header: &Header) -> AuthError {
    AuthError::InvalidIdToken {
        issuer: issuer.issuer.clone(),
        reason: match &header.kid {
            Some(kid) => format!("the issuer publishes no key with id `{}`", shorten(kid)),
            None => "it names no key id (kid) and the issuer has several keys".to_string(),
        },
    }
}

/// The `iss` claim, read before the signature is checked: it says which issuer's keys to
/// check the signature with. Nothing else is trusted from an unverified token.
fn unverified_issuer(token: &str, alg: Algorithm) -> Result<String, AuthError> {
    let mut validation = Validation::new(alg);
    validation.insecure_disable_signature_validation();
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Map<String, Value>>(
        token,
        &DecodingKey::from_secret(&[]),
        &validation,
    )
    .map_err(|_| AuthError::Malformed)?;
    match data.claims.get("iss") {
        Some(Value::String(iss)) => Ok(iss.clone()),
        _ => Err(AuthError::Malformed),
    }
}

/// A claim as identity text: strings as they are, numbers and booleans written out.
fn claim_text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(text) if !text.is_empty() && !text.contains(char::is_whitespace) => {
            Some(text.clone())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What a failed check means, in words.
fn describe(err: &jsonwebtoken::errors::Error, issuer: &OidcIssuer) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::InvalidSignature => "the signature does not match the issuer's key".into(),
        ErrorKind::ExpiredSignature => "it has expired".into(),
        ErrorKind::ImmatureSignature => "it is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => format!("its audience is not `{}`", issuer.audience),
        ErrorKind::InvalidIssuer => "its issuer does not match".into(),
        ErrorKind::InvalidAlgorithm => "its algorithm does not match the issuer's key".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("it has no `{claim}` claim"),
        _ => format!("it cannot be decoded: {err}"),
    }
}

/// Text from an unverified token, cut to a length fit for an error message.
fn shorten(text: &str) -> String {
    const MAX: usize = 120;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}
