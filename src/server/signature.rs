//! Push webhook signatures: GitHub (`X-Hub-Signature-256`), GitLab (`X-Gitlab-Token`) and
//! Gitea (`X-Gitea-Signature`), checked in constant time against the shared secret.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Which forge signed a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    GitHub,
    GitLab,
    Gitea,
}

impl Forge {
    pub fn name(self) -> &'static str {
        match self {
            Forge::GitHub => "github",
            Forge::GitLab => "gitlab",
            Forge::Gitea => "gitea",
        }
    }
}

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "the delivery carries no signature (X-Hub-Signature-256, X-Gitlab-Token or X-Gitea-Signature)"
    )]
    Unsigned,
    #[error("the {} signature does not match the configured secret", .0.name())]
    Mismatch(Forge),
    #[error(
        "no webhook secret is configured (FERRY_WEBHOOK_SECRET_FILE), so no delivery is accepted"
    )]
    NoSecret,
}

/// Checks the signature of `body` in `headers` against `secret` and says which forge sent it.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&[u8]>,
) -> Result<Forge, SignatureError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (forge, given) = if let Some(v) = header("x-hub-signature-256") {
        (Forge::GitHub, v)
    } else if let Some(v) = header("x-gitea-signature") {
        (Forge::Gitea, v)
    } else if let Some(v) = header("x-gitlab-token") {
        (Forge::GitLab, v)
    } else {
        return Err(SignatureError::Unsigned);
    };
    let secret = secret.ok_or(SignatureError::NoSecret)?;
    let valid = match forge {
        Forge::GitHub => given
            .strip_prefix("sha256=")
            .is_some_and(|hex| hmac_matches(secret, body, hex)),
        Forge::Gitea => hmac_matches(secret, body, given),
        Forge::GitLab => bool::from(given.as_bytes().ct_eq(secret)),
    };
    if valid {
        Ok(forge)
    } else {
        Err(SignatureError::Mismatch(forge))
    }
}

fn hmac_matches(secret: &[u8], body: &[u8], hex: &str) -> bool {
    let Some(expected) = decode_hex(hex.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The hex HMAC-SHA256 of `body` under `secret` (what GitHub and Gitea send).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    const SECRET: &[u8] = b"s3cret";
    const BODY: &[u8] = br#"{"ref":"refs/heads/main"}"#;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).expect("header"));
        map
    }

    #[test]
    fn each_forge_is_recognised_by_its_signature() {
        let github = headers(
            "x-hub-signature-256",
            &format!("sha256={}", sign(SECRET, BODY)),
        );
        assert_eq!(verify(&github, BODY, Some(SECRET)), Ok(Forge::GitHub));
        let gitea = headers("x-gitea-signature", &sign(SECRET, BODY));
        assert_eq!(verify(&gitea, BODY, Some(SECRET)), Ok(Forge::Gitea));
        let gitlab = headers("x-gitlab-token", "s3cret");
        assert_eq!(verify(&gitlab, BODY, Some(SECRET)), Ok(Forge::GitLab));
    }

    #[test]
    fn a_wrong_or_missing_signature_is_refused() {
        let other = sign(b"other", BODY);
        let cases = [
            (
                headers("x-hub-signature-256", &format!("sha256={other}")),
                SignatureError::Mismatch(Forge::GitHub),
            ),
            (
                headers("x-hub-signature-256", &sign(SECRET, BODY)),
                SignatureError::Mismatch(Forge::GitHub),
            ),
            (
                headers("x-gitea-signature", "zz"),
                SignatureError::Mismatch(Forge::Gitea),
            ),
            (
                headers("x-gitlab-token", "s3cre"),
                SignatureError::Mismatch(Forge::GitLab),
            ),
            (HeaderMap::new(), SignatureError::Unsigned),
        ];
        for (headers, expected) in cases {
            assert_eq!(verify(&headers, BODY, Some(SECRET)), Err(expected));
        }
    }

    #[test]
    fn a_signature_of_another_body_is_refused() {
        let github = headers(
            "x-hub-signature-256",
            &format!("sha256={}", sign(SECRET, b"{}")),
        );
        assert_eq!(
            verify(&github, BODY, Some(SECRET)),
            Err(SignatureError::Mismatch(Forge::GitHub))
        );
    }

    #[test]
    fn without_a_secret_nothing_is_accepted() {
        let gitlab = headers("x-gitlab-token", "");
        assert_eq!(verify(&gitlab, BODY, None), Err(SignatureError::NoSecret));
    }
}
