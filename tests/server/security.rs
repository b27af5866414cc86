//! Who may call the API: tokens, roles, approvals bound to the authenticated identity, and
//! secrets that never leave the caller.

use serde_json::json;

use super::{Service, token};

#[test]
fn a_missing_garbage_expired_or_revoked_token_is_unauthenticated() {
    let service = Service::start();
    let api = &service.api;
    let none = api
        .get("/api/v1/status", None)
        .expect_error(401, "unauthenticated");
    assert!(none.message().contains("Bearer"), "{}", none.text);
    api.get("/api/v1/status", Some("garbage"))
        .expect_error(401, "unauthenticated");
    let last = if service.bob.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &service.bob[..service.bob.len() - 1]);
    api.get("/api/v1/status", Some(&forged))
        .expect_error(401, "unauthenticated");
    let expiring = service
        .repo
        .ferry(&[
            "token",
            "create",
            "--user",
            "eve",
            "--expires",
            "1s",
            "-o",
            "json",
        ])
        .expect_code(0)
        .json();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let expired = api
        .get("/api/v1/status", expiring["token"].as_str())
        .expect_error(401, "unauthenticated");
    assert!(expired.message().contains("expired"), "{}", expired.text);
    let doomed = service
        .repo
        .ferry(&["token", "create", "--user", "mallory", "-o", "json"])
        .expect_code(0)
        .json();
    let secret = doomed["token"].as_str().expect("token");
    api.get("/api/v1/status", Some(secret)).expect(200);
    let id = doomed["id"].as_str().expect("id");
    service.repo.ferry(&["token", "revoke", id]).expect_code(0);
    crate::support::server::wait_for("the revoked token to be refused", || {
        api.get("/api/v1/status", Some(secret)).status == 401
    });
    for path in ["/healthz", "/readyz"] {
        api.get(path, None).expect(200);
    }
}

#[test]
fn each_role_is_refused_what_it_may_not_do_with_the_reason() {
    let service = Service::start();
    let api = &service.api;
    let viewer = Some(service.victor.as_str());
    let release = api
        .post(
            "/api/v1/releases",
            viewer,
            &json!({"images": {"acme/helloworld": "1.4.2"}}),
        )
        .expect_error(403, "forbidden");
    assert!(
        release.message().contains("victor may not create releases"),
        "{}",
        release.text
    );
    let rev = service.release("1.4.2");
    service.wait_verified("dev", &rev);
    let promote = api
        .post(
            "/api/v1/promotions",
            Some(&service.ci),
            &json!({"revision": rev, "stage": "prod"}),
        )
        .expect_error(403, "forbidden");
    assert!(
        promote.message().contains("ci-bot may not promote prod"),
        "{}",
        promote.text
    );
    api.post("/api/v1/stages/dev/rollback", viewer, &json!({}))
        .expect_error(403, "forbidden");
    api.post("/api/v1/pause", Some(&service.ci), &json!({"reason": "no"}))
        .expect_error(403, "forbidden");
    api.post("/api/v1/resume", viewer, &json!({}))
        .expect_error(403, "forbidden");
    let approve = api
        .post(
            "/api/v1/stages/prod/approvals",
            Some(&service.ci),
            &json!({"revision": rev}),
        )
        .expect_error(403, "forbidden");
    assert!(approve.message().contains("ci-bot"), "{}", approve.text);
}

#[test]
fn a_token_approves_only_as_its_own_user() {
    let service = Service::start();
    let rev = service.release("1.4.2");
    service.wait_verified("qa", &rev);
    service
        .api
        .post(
            "/api/v1/stages/prod/approvals",
            Some(&service.bob),
            &json!({"revision": rev, "user": "carol"}),
        )
        .expect_error(400, "bad_request");
    service
        .api
        .post(
            "/api/v1/stages/prod/approvals",
            Some(&service.bob),
            &json!({"revision": rev}),
        )
        .expect(200);
    let audit = service
        .api
        .get("/api/v1/audit?stage=prod", Some(&service.victor))
        .expect(200);
    let reviewers: Vec<&str> = audit
        .body
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.contains("approv")))
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert_eq!(reviewers, ["bob"]);
}

#[test]
fn plain_tokens_never_reach_the_state_the_logs_or_the_audit_log() {
    let service = Service::start();
    let rev = service.release("1.4.2");
    service.wait_verified("qa", &rev);
    service
        .api
        .post(
            "/api/v1/stages/prod/approvals",
            Some(&service.bob),
            &json!({"revision": rev}),
        )
        .expect(200);
    service
        .api
        .get("/api/v1/status", Some("ferry_not_a_real_token"))
        .expect(401);
    let extra = token(&service.repo, "zoe");
    let audit = service
        .api
        .get("/api/v1/audit", Some(&service.victor))
        .expect(200)
        .text;
    let logs = service.served.logs();
    for secret in [
        &service.ci,
        &service.alice,
        &service.bob,
        &service.carol,
        &service.victor,
        &extra,
    ] {
        assert!(
            !audit.contains(secret.as_str()),
            "a token is in the audit log"
        );
        assert!(
            !logs.contains(secret.as_str()),
            "a token is in the server's log"
        );
        assert_no_file_contains(&service.repo.path().join(".ferry"), secret);
    }
}

fn assert_no_file_contains(dir: &std::path::Path, needle: &str) {
    for entry in std::fs::read_dir(dir).expect("read state dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            assert_no_file_contains(&path, needle);
        } else {
            let bytes = std::fs::read(&path).unwrap_or_default();
            let found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
            assert!(!found, "a plain token is stored in {}", path.display());
        }
    }
}

/// An OIDC issuer on 127.0.0.1: discovery and a key set with one ES256 key, which it signs ID
/// tokens with.
struct Issuer {
    url: String,
    key: rcgen::KeyPair,
}

const KID: &str = "key-1";

impl Issuer {
    fn start() -> Issuer {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        let point = key.public_key_raw().to_vec();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/keys")}).to_string();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": KID, "use": "sig",
            "alg": "ES256", "x": b64url(&point[1..33]), "y": b64url(&point[33..])}]})
        .to_string();
        std::thread::spawn(move || {
            use std::io::{BufRead, BufReader, Write};
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = first.split_whitespace().nth(1).unwrap_or_default();
                let (status, body) = match path {
                    "/.well-known/openid-configuration" => ("200 OK", discovery.as_str()),
                    "/keys" => ("200 OK", jwks.as_str()),
                    _ => ("404 Not Found", "{}"),
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Issuer { url, key }
    }

    /// An ID token of a CI run on `git_ref`, signed with `key`, from `issuer`, for `audience`,
    /// expiring `expires_in` seconds from now.
    fn id_token(
        key: &rcgen::KeyPair,
        issuer: &str,
        audience: &str,
        git_ref: &str,
        expires_in: i64,
    ) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(KID.to_string());
        let claims = json!({"iss": issuer, "aud": audience, "sub": format!("repo:acme/helloworld:ref:{git_ref}"),
            "repository": "acme/helloworld", "ref": git_ref, "iat": now, "exp": now + expires_in});
        let signing =
            jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("pem");
        jsonwebtoken::encode(&header, &claims, &signing).expect("sign")
    }

    fn token(&self, audience: &str, git_ref: &str, expires_in: i64) -> String {
        Issuer::id_token(&self.key, &self.url, audience, git_ref, expires_in)
    }
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

#[test]
fn oidc_id_tokens_are_checked_and_a_good_one_is_audited_with_its_issuer() {
    let issuer = Issuer::start();
    let repo = super::service_repo();
    repo.write(
        "policies/access.yaml",
        &format!(
            "apiVersion: ferry/v1
kind: Access
metadata: {{name: access}}
spec:
  oidc:
  - {{issuer: \"{}\", audience: ferry, identity: \"oidc:repo:{{repository}}:ref:{{ref}}\"}}
  roles:
  - {{role: viewer, subjects: [\"*\"]}}
  - {{role: releaser, subjects: [\"oidc:repo:acme/helloworld:ref:refs/heads/main\"]}}
",
            issuer.url
        ),
    );
    repo.commit("CI releases with its ID token");
    let viewer = token(&repo, "victor");
    let served = crate::support::server::Served::start(&repo, &[], &[]);
    let api = served.api();
    let release = json!({"images": {"acme/helloworld": "1.4.2"}});
    let main = "refs/heads/main";

    let impostor = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
    let refused = [
        (
            Issuer::id_token(&impostor, &issuer.url, "ferry", main, 300),
            "the signature does not match the issuer's key",
        ),
        (
            issuer.token("someone-else", main, 300),
            "its audience is not `ferry`",
        ),
        (issuer.token("ferry", main, -3600), "it has expired"),
    ];
    for (id_token, reason) in refused {
        let reply = api
            .post("/api/v1/releases", Some(&id_token), &release)
            .expect_error(401, "unauthenticated");
        assert_eq!(
            reply.message(),
            format!("the ID token from `{}` is not valid: {reason}", issuer.url)
        );
    }
    let unlisted = Issuer::id_token(&issuer.key, "https://ci.example.com", "ferry", main, 300);
    let reply = api
        .post("/api/v1/releases", Some(&unlisted), &release)
        .expect_error(401, "unauthenticated");
    assert!(
        reply.message().contains("https://ci.example.com"),
        "{}",
        reply.text
    );
    let branch = issuer.token("ferry", "refs/heads/feature", 300);
    let reply = api
        .post("/api/v1/releases", Some(&branch), &release)
        .expect_error(403, "forbidden");
    assert!(
        reply.message().starts_with(
            "oidc:repo:acme/helloworld:ref:refs/heads/feature may not create releases"
        ),
        "{}",
        reply.text
    );

    let good = issuer.token("ferry", main, 300);
    let created = api
        .post("/api/v1/releases", Some(&good), &release)
        .expect(201);
    assert_eq!(
        created.body["created_by"],
        "oidc:repo:acme/helloworld:ref:refs/heads/main"
    );
    let audit = api.get("/api/v1/audit", Some(&viewer)).expect(200);
    let entry = audit
        .body
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == "release.create")
        .cloned()
        .expect("the release is audited");
    assert_eq!(
        entry["actor"],
        "oidc:repo:acme/helloworld:ref:refs/heads/main"
    );
    assert_eq!(entry["auth"], json!({"kind": "oidc", "issuer": issuer.url}));
    assert!(
        !audit.text.contains(&good),
        "an ID token is in the audit log"
    );
    assert!(!served.logs().contains(&good), "an ID token is in the log");
    assert_no_file_contains(&repo.path().join(".ferry"), &good);
}

#[test]
fn bodies_over_a_mebibyte_are_refused_everywhere() {
    let service = Service::start();
    let huge = vec![b' '; 1024 * 1024 + 1];
    for path in [
        "/api/v1/promotions",
        "/api/v1/stages/prod/approvals",
        "/api/v1/pause",
        "/api/v1/hooks/git",
    ] {
        service
            .api
            .post_raw(
                path,
                &[
                    ("authorization", &format!("Bearer {}", service.alice)),
                    ("content-type", "application/json"),
                    ("x-gitlab-token", "whatever"),
                ],
                huge.clone(),
            )
            .expect_error(413, "payload_too_large");
    }
}
