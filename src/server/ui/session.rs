//! Browser sessions: a token given once on the login form becomes a random session id in an
//! HttpOnly, SameSite=Strict cookie. The sessions live in this process's memory (a restart
//! signs everyone out); each keeps the bearer token it was opened with, so every request is
//! authenticated again exactly as an API request is (a revoked or expired token ends the
//! session), and a CSRF token that every state-changing form must carry.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The cookie holding the session id.
pub const SESSION_COOKIE: &str = "ferry_session";
/// The cookie the login form's CSRF token is bound to (there is no session yet).
pub const LOGIN_COOKIE: &str = "ferry_login";
/// How long a session lasts after it was opened.
pub const SESSION_LIFETIME: Duration = Duration::hours(8);
/// The most sessions kept at once; the oldest goes first beyond it.
const MAX_SESSIONS: usize = 10_000;

/// A one-line message shown once on the next page: what an action did, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer token it signed in with (kept only in memory).
    pub token: String,
    pub csrf: String,
    pub expires: DateTime<Utc>,
    pub flash: Option<Flash>,
}

/// Every open session, by the SHA-256 of its id (so a lookup's timing tells nothing of ids).
pub struct Sessions {
    open: Mutex<HashMap<[u8; 32], Session>>,
    /// Whether cookies get `Secure` (the service speaks HTTPS).
    secure: bool,
}

impl Sessions {
    pub fn new(secure: bool) -> Sessions {
        Sessions {
            open: Mutex::new(HashMap::new()),
            secure,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session for `token`; answers its id.
    pub fn open(&self, token: &str, now: DateTime<Utc>) -> Result<String, getrandom::Error> {
        let id = random_hex()?;
        let session = Session {
            token: token.to_string(),
            csrf: random_hex()?,
            expires: now + SESSION_LIFETIME,
            flash: None,
        };
        let mut open = self.lock();
        open.retain(|_, s| s.expires > now);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            open.remove(&oldest);
        }
        open.insert(key(&id), session);
        Ok(id)
    }

    /// The session with this id, unless it expired; takes its flash message.
    pub fn take(&self, id: &str, now: DateTime<Utc>) -> Option<Session> {
        let mut open = self.lock();
        let key = key(id);
        let session = open.get_mut(&key)?;
        if session.expires <= now {
            open.remove(&key);
            return None;
        }
        let shown = session.clone();
        session.flash = None;
        Some(shown)
    }

    /// The session's bearer token, unless it expired (the flash message stays).
    pub fn token(&self, id: &str, now: DateTime<Utc>) -> Option<String> {
        let open = self.lock();
        open.get(&key(id))
            .filter(|s| s.expires > now)
            .map(|s| s.token.clone())
    }

    /// Leaves a message for the session's next page.
    pub fn flash(&self, id: &str, flash: Flash) {
        if let Some(session) = self.lock().get_mut(&key(id)) {
            session.flash = Some(flash);
        }
    }

    /// Ends the session.
    pub fn close(&self, id: &str) {
        self.lock().remove(&key(id));
    }

    /// The `Set-Cookie` value that hands the browser `value` under `name` for `max_age`
    /// seconds (0 removes it).
    pub fn cookie(&self, name: &str, value: &str, max_age: i64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
    }

    /// The cookie of a freshly opened session.
    pub fn session_cookie(&self, id: &str) -> String {
        self.cookie(SESSION_COOKIE, id, SESSION_LIFETIME.num_seconds())
    }
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// 32 random bytes as hex.
pub fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether a submitted CSRF token is the expected one (in constant time).
pub fn same_token(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_expires_and_its_flash_is_shown_once() {
        let sessions = Sessions::new(false);
        let now = Utc::now();
        let id = sessions.open("fy_token", now).expect("random");
        assert_eq!(id.len(), 64);
        sessions.flash(
            &id,
            Flash {
                ok: true,
                text: "approved".into(),
            },
        );
        let first = sessions.take(&id, now).expect("open");
        assert_eq!(first.token, "fy_token");
        assert_eq!(first.flash.map(|f| f.text), Some("approved".to_string()));
        assert_eq!(sessions.take(&id, now).expect("open").flash, None);
        assert!(sessions.take("not-a-session", now).is_none());
        let later = now + SESSION_LIFETIME + Duration::seconds(1);
        assert!(sessions.token(&id, later).is_none());
        assert!(sessions.take(&id, later).is_none());
        sessions.close(&id);
    }

    #[test]
    fn closing_ends_a_session() {
        let sessions = Sessions::new(true);
        let now = Utc::now();
        let id = sessions.open("fy_token", now).expect("random");
        sessions.close(&id);
        assert!(sessions.token(&id, now).is_none());
        assert_eq!(
            sessions.cookie(SESSION_COOKIE, "x", 0),
            "ferry_session=x; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure"
        );
    }

    #[test]
    fn tokens_compare_exactly_and_cookies_are_found() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", ""));
        assert!(!same_token("", ""));
        let header = "theme=dark; ferry_session=0123; other=1";
        assert_eq!(cookie_value(header, SESSION_COOKIE), Some("0123"));
        assert_eq!(cookie_value(header, LOGIN_COOKIE), None);
    }
}
