//! The frame every page shares (landmarks, navigation, the flash message, the stylesheet and
//! script), and small formatting helpers for times, durations and states.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::session::Flash;

/// Which entry of the navigation is the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Pipeline,
    Releases,
    Audit,
    None,
}

/// What the frame shows about the signed-in person.
pub struct Frame<'a> {
    pub title: &'a str,
    pub section: Section,
    /// The signed-in identity and the CSRF token of its session (for the logout form).
    pub user: Option<(&'a str, &'a str)>,
    pub flash: Option<Flash>,
}

/// A whole page: `body` goes inside `<main>`.
pub fn render(frame: Frame<'_>, body: Markup) -> Markup {
    let current = |s: Section| (frame.section == s).then_some("page");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (frame.title) " · ferry" }
                link rel="stylesheet" href="/ui/style.css";
                script src="/ui/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "ferry" }
                    @if let Some((user, csrf)) = frame.user {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/" aria-current=[current(Section::Pipeline)] { "Pipeline" } }
                                li { a href="/releases" aria-current=[current(Section::Releases)] { "Releases" } }
                                li { a href="/audit" aria-current=[current(Section::Audit)] { "Audit" } }
                            }
                        }
                        div.who {
                            span #live role="status" aria-live="polite" data-state="off" { "" }
                            span { "Signed in as " strong #user { (user) } }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" #logout { "Sign out" }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    @if let Some(flash) = &frame.flash {
                        p.flash.ok[flash.ok].error[!flash.ok] role=(if flash.ok { "status" } else { "alert" }) #flash {
                            (flash.text)
                        }
                    }
                    (body)
                }
            }
        }
    }
}

/// An HTML answer with the headers every page carries.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page saying why a request could not be served.
pub fn error_page(status: StatusCode, message: &str, user: Option<(&str, &str)>) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = html! {
        h1 { (title) }
        p.error #error role="alert" { (message) }
        p { a href="/" { "Back to the pipeline" } }
    };
    let frame = Frame {
        title,
        section: Section::None,
        user,
        flash: None,
    };
    respond(status, render(frame, body))
}

/// A time as UTC, to the second.
pub fn time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A `<time>` element.
pub fn time_tag(at: &DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (time(at)) } }
}

/// A duration in the largest two units: `1h 05m`, `3m 12s`, `850ms`.
pub fn duration(from: &DateTime<Utc>, to: &DateTime<Utc>) -> String {
    let ms = (*to - *from).num_milliseconds().max(0);
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {:02}h", s / 86400, (s % 86400) / 3600),
    }
}

/// The CSS class of a stage or promotion state.
pub fn state_class(state: &str) -> &'static str {
    match state {
        "succeeded" => "st-ok",
        "failed" | "aborted" => "st-bad",
        "blocked" => "st-blocked",
        "requested" | "checking" | "writing" | "syncing" | "verifying" => "st-busy",
        _ => "st-idle",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn durations_read_in_two_units() {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        let after = |ms: i64| at + chrono::Duration::milliseconds(ms);
        assert_eq!(duration(&at, &after(850)), "850ms");
        assert_eq!(duration(&at, &after(12_400)), "12s");
        assert_eq!(duration(&at, &after(192_000)), "3m 12s");
        assert_eq!(duration(&at, &after(3_900_000)), "1h 05m");
        assert_eq!(duration(&at, &after(90_000_000)), "1d 01h");
        assert_eq!(duration(&after(5), &at), "0ms");
    }
}
