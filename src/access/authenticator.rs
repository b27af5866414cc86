//! The entry point of the service: a bearer token in, an [`Identity`] out.

use std::sync::{Arc, RwLock};

use chrono::Utc;

use super::error::AuthError;
use super::identity::Identity;
use super::oidc::OidcVerifier;
use super::token::{TOKEN_PREFIX, verify_token};
use crate::pipeline::AccessPolicy;
use crate::state::StateStore;

/// Authenticates the bearer tokens of requests: ferry tokens against the state store, OIDC
/// ID tokens against their issuer's keys.
///
/// Tokens are looked up in the store on every call (one key read), so a token created or
/// revoked by `ferry token` in another process counts at the next request.
pub struct Authenticator {
    policy: RwLock<Arc<AccessPolicy>>,
    store: Arc<dyn StateStore>,
    oidc: OidcVerifier,
}

impl Authenticator {
    /// An authenticator for the issuers of `policy`, with tokens in `store`; `http` fetches the
    /// issuers' keys.
    pub fn new(
        policy: impl Into<Arc<AccessPolicy>>,
        store: Arc<dyn StateStore>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            policy: RwLock::new(policy.into()),
            store,
            oidc: OidcVerifier::new(http),
        }
    }

    /// The access policy in force.
    pub fn policy(&self) -> Arc<AccessPolicy> {
        self.policy
            .read()
            .expect("the policy lock is never poisoned: no code panics holding it")
            .clone()
    }

    /// Puts a new access policy in force (after `policies/access.yaml` changed).
    pub fn set_policy(&self, policy: impl Into<Arc<AccessPolicy>>) {
        *self
            .policy
            .write()
            .expect("the policy lock is never poisoned: no code panics holding it") = policy.into();
    }

    /// The identity `bearer` (the token after `Authorization: Bearer `) stands for.
    pub async fn authenticate(&self, bearer: &str) -> Result<Identity, AuthError> {
        let bearer = bearer.trim();
        if bearer.starts_with(TOKEN_PREFIX) {
            return verify_token(self.store.as_ref(), bearer, Utc::now());
        }
        if bearer.split('.').count() == 3 {
            let policy = self.policy();
            return self.oidc.verify(&policy, bearer).await;
        }
        Err(AuthError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::access::{AuthMethod, create_token, revoke_token};
    use crate::pipeline::{ACCESS_FILE, Groups, Pipeline};
    use crate::state::MemStore;

    /// A signing key and the JWK that publishes it.
    struct Key {
        alg: Algorithm,
        kid: String,
        encoding: EncodingKey,
        jwk: serde_json::Value,
    }

    fn es256(kid: &str) -> Key {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        let point = pair.public_key_raw();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        Key {
            alg: Algorithm::ES256,
            kid: kid.to_string(),
            encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("pem"),
            jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                        "x": b64url(&point[1..33]), "y": b64url(&point[33..])}),
        }
    }

    /// An RSA key made by the `openssl` command, when it is installed (rcgen cannot make one).
    fn rs256(kid: &str) -> Option<Key> {
        let dir = tempfile::tempdir().expect("tempdir");
        let pem = dir.path().join("key.pem");
        let made = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&pem)
            .output()
            .ok()?;
        assert!(made.status.success(), "openssl genpkey failed");
        let modulus = std::process::Command::new("openssl")
            .args(["rsa", "-noout", "-modulus", "-in"])
            .arg(&pem)
            .output()
            .expect("openssl rsa");
        let text = String::from_utf8(modulus.stdout).expect("utf-8");
        let hex = text.trim().strip_prefix("Modulus=").expect("modulus line");
        let n: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        let pem = std::fs::read(&pem).expect("key file");
        Some(Key {
            alg: Algorithm::RS256,
            kid: kid.to_string(),
            encoding: EncodingKey::from_rsa_pem(&pem).expect("rsa pem"),
            jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                        "n": b64url(&n), "e": b64url(&[1, 0, 1])}),
        })
    }

    fn b64url(bytes: &[u8]) -> String {
        const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }

    /// An issuer on 127.0.0.1 serving discovery and a key set; counts key set requests.
    struct Issuer {
        url: String,
        jwks_requests: Arc<AtomicUsize>,
    }

    async fn serve_issuer(jwks: serde_json::Value) -> Issuer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/keys")}).to_string();
        let jwks = jwks.to_string();
        let jwks_requests = Arc::new(AtomicUsize::new(0));
        let counter = jwks_requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let path = head.split_whitespace().nth(1).unwrap_or_default();
                let (status, body) = match path {
                    "/.well-known/openid-configuration" => ("200 OK", discovery.clone()),
                    "/keys" => {
                        counter.fetch_add(1, Ordering::SeqCst);
                        ("200 OK", jwks.clone())
                    }
                    _ => ("404 Not Found", "{}".to_string()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            }
        });
        Issuer { url, jwks_requests }
    }

    fn policy(issuer: &str) -> AccessPolicy {
        let pipeline = Pipeline::from_yaml(
            "apiVersion: ferry/v1\nkind: Pipeline\nmetadata: {name: p}\nspec:\n  stages:\n  - {name: dev, overlay: environments/dev}\n",
        )
        .expect("pipeline");
        let text = format!(
            "apiVersion: ferry/v1\nkind: Access\nmetadata: {{name: access}}\nspec:\n  oidc:\n  - {{issuer: \"{issuer}\", audience: ferry, identity: \"oidc:repo:{{repository}}:ref:{{ref}}\"}}\n  roles:\n  - {{role: viewer, subjects: [\"*\"]}}\n"
        );
        AccessPolicy::from_yaml(ACCESS_FILE, &text, &pipeline, &Groups::default()).expect("access")
    }

    fn id_token(key: &Key, issuer: &str, audience: &str, exp_offset: i64) -> String {
        let now = Utc::now().timestamp();
        let mut header = Header::new(key.alg);
        header.kid = Some(key.kid.clone());
        let claims = json!({"iss": issuer, "aud": audience, "sub": "repo:acme/web:ref:refs/heads/main",
                            "repository": "acme/web", "ref": "refs/heads/main",
                            "iat": now, "exp": now + exp_offset});
        jsonwebtoken::encode(&header, &claims, &key.encoding).expect("sign")
    }

    fn authenticator(issuer: &str) -> Authenticator {
        Authenticator::new(
            policy(issuer),
            Arc::new(MemStore::default()),
            reqwest::Client::new(),
        )
    }

    #[tokio::test]
    async fn an_id_token_from_a_listed_issuer_becomes_its_identity() {
        let mut keys = vec![es256("ec-1")];
        keys.extend(rs256("rsa-1"));
        let jwks = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
        let issuer = serve_issuer(jwks).await;
        let auth = authenticator(&issuer.url);
        for key in &keys {
            let identity = auth
                .authenticate(&id_token(key, &issuer.url, "ferry", 300))
                .await
                .unwrap_or_else(|err| panic!("{:?}: {err}", key.alg));
            assert_eq!(
                identity,
                Identity {
                    name: "oidc:repo:acme/web:ref:refs/heads/main".to_string(),
                    auth: AuthMethod::Oidc {
                        issuer: issuer.url.clone()
                    },
                }
            );
        }
        assert_eq!(
            issuer.jwks_requests.load(Ordering::SeqCst),
            1,
            "keys are cached"
        );
    }

    #[tokio::test]
    async fn bad_id_tokens_are_refused_with_the_reason() {
        let key = es256("ec-1");
        let issuer = serve_issuer(json!({"keys": [key.jwk.clone()]})).await;
        let auth = authenticator(&issuer.url);
        let impostor = es256("ec-1");
        let cases = [
            (
                id_token(&impostor, &issuer.url, "ferry", 300),
                "the signature does not match the issuer's key",
            ),
            (
                id_token(&key, &issuer.url, "other", 300),
                "its audience is not `ferry`",
            ),
            (
                id_token(&key, &issuer.url, "ferry", -3600),
                "it has expired",
            ),
        ];
        for (token, reason) in cases {
            let err = auth.authenticate(&token).await.expect_err("refused");
            assert_eq!(
                err.to_string(),
                format!("the ID token from `{}` is not valid: {reason}", issuer.url)
            );
            assert!(!err.is_unavailable());
        }
        let elsewhere = id_token(&key, "https://ci.example.com", "ferry", 300);
        let err = auth.authenticate(&elsewhere).await.expect_err("unlisted");
        assert!(
            matches!(&err, AuthError::UnknownIssuer { issuer } if issuer == "https://ci.example.com"),
            "{err}"
        );
        let unknown_kid = id_token(&es256("ec-2"), &issuer.url, "ferry", 300);
        for _ in 0..3 {
            let err = auth
                .authenticate(&unknown_kid)
                .await
                .expect_err("no such key");
            assert!(err.to_string().contains("no key with id `ec-2`"), "{err}");
        }
        assert_eq!(
            issuer.jwks_requests.load(Ordering::SeqCst),
            1,
            "unknown key ids fetch the keys again at most every few seconds"
        );
    }

    #[tokio::test]
    async fn an_unreachable_issuer_is_unavailable_not_unauthenticated() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        drop(listener);
        let auth = authenticator(&url);
        let err = auth
            .authenticate(&id_token(&es256("k"), &url, "ferry", 300))
            .await
            .expect_err("nobody answers");
        assert!(err.is_unavailable(), "{err}");
    }

    #[tokio::test]
    async fn ferry_tokens_are_checked_against_the_store_on_every_call() {
        let store: Arc<dyn StateStore> = Arc::new(MemStore::default());
        let auth = Authenticator::new(
            AccessPolicy::default(),
            store.clone(),
            reqwest::Client::new(),
        );
        let new = create_token(store.as_ref(), "alice", None, None, Utc::now()).expect("token");
        let identity = auth.authenticate(new.token.expose()).await.expect("valid");
        assert_eq!(identity.name, "alice");
        revoke_token(store.as_ref(), &new.record.id, Utc::now()).expect("revoked");
        let err = auth
            .authenticate(new.token.expose())
            .await
            .expect_err("revoked");
        assert!(matches!(err, AuthError::Revoked { .. }), "{err}");
        assert!(!err.to_string().contains(new.token.expose()));
        for garbage in ["", "garbage", "a.b", "Bearer x"] {
            assert!(
                matches!(auth.authenticate(garbage).await, Err(AuthError::Malformed)),
                "{garbage:?}"
            );
        }
    }
}
