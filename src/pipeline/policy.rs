//! Validated policies: soak, approvals, windows, schedules, gates; and approver groups.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde_saphyr::Spanned;

use super::error::{FileLocation, PipelineError};
use super::gate::{self, GateSpec};
use super::raw;
use super::yaml::at;

/// The default of `catchUp`: how old a schedule occurrence may be and still be acted on.
pub const DEFAULT_CATCH_UP: Duration = Duration::from_secs(15 * 60);

/// A user or a group that may approve or override.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum Principal {
    User(String),
    Group(String),
}

impl Principal {
    /// Parses `group:NAME`, `user:NAME` or a bare user name.
    pub fn parse(text: &str) -> Option<Principal> {
        let text = text.trim();
        let (ctor, name): (fn(String) -> Principal, &str) = match text.split_once(':') {
            Some(("group", name)) => (Principal::Group, name),
            Some(("user", name)) => (Principal::User, name),
            Some(_) => return None,
            None => (Principal::User, text),
        };
        let name = name.trim();
        (!name.is_empty() && !name.contains(char::is_whitespace)).then(|| ctor(name.to_string()))
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::User(name) => f.write_str(name),
            Principal::Group(name) => write!(f, "group:{name}"),
        }
    }
}

/// Approver groups from `policies/groups.yaml`.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    groups: BTreeMap<String, Vec<String>>,
}

impl Groups {
    /// Groups from a name → members map.
    pub fn new(groups: BTreeMap<String, Vec<String>>) -> Self {
        Self { groups }
    }

    /// The members of `group`, if it exists.
    pub fn members(&self, group: &str) -> Option<&[String]> {
        self.groups.get(group).map(Vec::as_slice)
    }

    /// Whether `user` is `principal` or a member of it.
    pub fn includes(&self, principal: &Principal, user: &str) -> bool {
        match principal {
            Principal::User(name) => name == user,
            Principal::Group(group) => self
                .members(group)
                .is_some_and(|m| m.iter().any(|u| u == user)),
        }
    }
}

/// A cron expression (five fields: minute hour day-of-month month day-of-week).
#[derive(Debug, Clone)]
pub struct CronSpec {
    pub text: String,
    pub cron: Cron,
}

impl CronSpec {
    /// Parses a five-field cron expression.
    pub fn parse(text: &str) -> Result<CronSpec, String> {
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let fields = text.split_whitespace().count();
        if fields != 5 && !text.trim_start().starts_with('@') {
            return Err(format!(
                "invalid cron expression `{text}`: expected 5 fields (minute hour day-of-month month day-of-week), found {fields}"
            ));
        }
        parser
            .parse(text)
            .map(|cron| CronSpec {
                text: text.trim().to_string(),
                cron,
            })
            .map_err(|err| format!("invalid cron expression `{text}`: {err}"))
    }
}

/// What approvals a stage requires.
#[derive(Debug, Clone)]
pub struct ApprovalRule {
    pub required: u32,
    pub from: Vec<Principal>,
    pub self_approval: bool,
    pub expires: Option<Duration>,
}

/// A deny window: an absolute period or a recurring cron-matched one.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant, reason = "policies are few and built once")]
pub enum DenyWindow {
    Period {
        from: DateTime<FixedOffset>,
        until: DateTime<FixedOffset>,
        reason: String,
    },
    Recurring {
        cron: CronSpec,
        reason: String,
    },
}

/// When a stage may be entered.
#[derive(Debug, Clone)]
pub struct Windows {
    /// Minutes matching any allow expression are open; none means always open.
    pub allow: Vec<CronSpec>,
    pub deny: Vec<DenyWindow>,
}

/// A scheduled promotion.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub cron: CronSpec,
    pub catch_up: Duration,
}

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    /// Repository-relative path of the policy file.
    pub path: String,
    /// The time zone windows and schedules are evaluated in.
    pub timezone: Tz,
    pub soak: Option<Duration>,
    pub approvals: Option<ApprovalRule>,
    pub windows: Option<Windows>,
    pub schedules: Vec<Schedule>,
    pub gates: Vec<GateSpec>,
    pub override_by: Vec<Principal>,
    pub rollback_skips_approvals: bool,
}

impl Policy {
    /// Parses and validates `text`, the content of the policy file `path`
    /// (`policies/NAME.yaml`), resolving `group:` entries through `groups`.
    pub fn from_yaml(path: &str, text: &str, groups: &Groups) -> Result<Policy, PipelineError> {
        validate(path, super::yaml::parse(path, text.as_bytes())?, groups)
    }
}

/// Converts a raw policy document of `path` into a validated [`Policy`].
pub(crate) fn validate(
    path: &str,
    doc: raw::Document<raw::PolicySpec>,
    groups: &Groups,
) -> Result<Policy, PipelineError> {
    super::check_header(path, &doc.api_version, &doc.kind, "Policy")?;
    let name = doc.metadata.name.value.trim().to_string();
    let stem = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .trim_end_matches(".yaml")
        .trim_end_matches(".yml");
    if name != stem {
        return Err(PipelineError::invalid(
            at(path, &doc.metadata.name),
            "metadata.name",
            format!("policy `{name}` must live in policies/{name}.yaml (or be named `{stem}`)"),
        ));
    }
    let spec = doc.spec;
    let windows_raw = spec.windows.as_ref();
    let timezone = match windows_raw.and_then(|w| w.timezone.as_ref()) {
        Some(tz) => parse_timezone(path, tz)?,
        None => Tz::UTC,
    };
    let approvals = spec
        .approvals
        .as_ref()
        .map(|a| validate_approvals(path, a, groups))
        .transpose()?;
    let windows = windows_raw.map(|w| validate_windows(path, w)).transpose()?;
    let schedules = spec
        .schedule
        .iter()
        .enumerate()
        .map(|(i, s)| validate_schedule(path, i, s))
        .collect::<Result<_, _>>()?;
    let gates = gate::validate_all(path, &spec.gates)?;
    let override_by = principals(path, "spec.overrideBy", &spec.override_by, groups)?;
    Ok(Policy {
        name,
        path: path.to_string(),
        timezone,
        soak: spec.soak.map(|s| s.get()),
        approvals,
        windows,
        schedules,
        gates,
        override_by,
        rollback_skips_approvals: spec.rollback.is_some_and(|r| r.skip_approvals),
    })
}

fn parse_timezone(path: &str, tz: &Spanned<String>) -> Result<Tz, PipelineError> {
    tz.value.trim().parse::<Tz>().map_err(|_| {
        PipelineError::invalid(
            at(path, tz),
            "spec.windows.timezone",
            format!(
                "unknown time zone `{}`: expected an IANA name like Europe/Berlin or UTC",
                tz.value
            ),
        )
    })
}

fn validate_approvals(
    path: &str,
    raw: &raw::Approvals,
    groups: &Groups,
) -> Result<ApprovalRule, PipelineError> {
    let from = principals(path, "spec.approvals.from", &raw.from, groups)?;
    if raw.required.value == 0 {
        return Err(PipelineError::invalid(
            at(path, &raw.required),
            "spec.approvals.required",
            "must be at least 1 (leave approvals out to need none)",
        ));
    }
    if from.is_empty() {
        return Err(PipelineError::invalid(
            at(path, &raw.required),
            "spec.approvals.from",
            "list who may approve: user names or group:NAME entries",
        ));
    }
    Ok(ApprovalRule {
        required: raw.required.value,
        from,
        self_approval: raw.self_approval,
        expires: raw.expires.map(|e| e.get()),
    })
}

fn principals(
    path: &str,
    field: &str,
    raw: &[Spanned<String>],
    groups: &Groups,
) -> Result<Vec<Principal>, PipelineError> {
    let mut out = Vec::new();
    for (i, entry) in raw.iter().enumerate() {
        let field = format!("{field}[{i}]");
        let principal = Principal::parse(&entry.value).ok_or_else(|| {
            PipelineError::invalid(
                at(path, entry),
                &field,
                format!("`{}` is not a user name or group:NAME", entry.value),
            )
        })?;
        if let Principal::Group(group) = &principal
            && groups.members(group).is_none()
        {
            return Err(PipelineError::invalid(
                at(path, entry),
                &field,
                format!("unknown group `{group}`: define it in policies/groups.yaml"),
            ));
        }
        out.push(principal);
    }
    Ok(out)
}

fn validate_windows(path: &str, raw: &raw::Windows) -> Result<Windows, PipelineError> {
    let mut allow = Vec::new();
    for (i, expr) in raw.allow.iter().enumerate() {
        allow.push(CronSpec::parse(&expr.value).map_err(|m| {
            PipelineError::invalid(at(path, expr), format!("spec.windows.allow[{i}]"), m)
        })?);
    }
    let deny = raw
        .deny
        .iter()
        .enumerate()
        .map(|(i, d)| validate_deny(path, i, d))
        .collect::<Result<_, _>>()?;
    Ok(Windows { allow, deny })
}

fn validate_deny(
    path: &str,
    i: usize,
    raw: &Spanned<raw::Deny>,
) -> Result<DenyWindow, PipelineError> {
    let field = format!("spec.windows.deny[{i}]");
    let invalid = |m: String| PipelineError::invalid(at(path, raw), &field, m);
    let d = &raw.value;
    let reason = d
        .reason
        .clone()
        .unwrap_or_else(|| "deny window".to_string());
    match (&d.from, &d.until, &d.cron) {
        (Some(from), Some(until), None) => {
            let from = parse_timestamp(from).map_err(|m| invalid(format!("from: {m}")))?;
            let until = parse_timestamp(until).map_err(|m| invalid(format!("until: {m}")))?;
            if until <= from {
                return Err(invalid(format!(
                    "until ({until}) must be after from ({from})"
                )));
            }
            Ok(DenyWindow::Period {
                from,
                until,
                reason,
            })
        }
        (None, None, Some(cron)) => Ok(DenyWindow::Recurring {
            cron: CronSpec::parse(cron).map_err(invalid)?,
            reason,
        }),
        _ => Err(invalid(
            "give either `from` and `until` (RFC 3339 timestamps) or `cron`".to_string(),
        )),
    }
}

fn parse_timestamp(text: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(text.trim()).map_err(|_| {
        format!("`{text}` is not an RFC 3339 timestamp with offset, like 2026-12-20T00:00:00+01:00")
    })
}

fn validate_schedule(
    path: &str,
    i: usize,
    raw: &Spanned<raw::Schedule>,
) -> Result<Schedule, PipelineError> {
    let field = format!("spec.schedule[{i}]");
    let s = &raw.value;
    let cron = CronSpec::parse(&s.cron)
        .map_err(|m| PipelineError::invalid(at(path, raw), format!("{field}.cron"), m))?;
    match s.promote.as_deref().map(str::trim) {
        None | Some("latest-verified") => {}
        Some(other) => {
            return Err(PipelineError::invalid(
                at(path, raw),
                format!("{field}.promote"),
                format!("unknown value `{other}`, expected `latest-verified`"),
            ));
        }
    }
    Ok(Schedule {
        cron,
        catch_up: s.catch_up.map(|c| c.get()).unwrap_or(DEFAULT_CATCH_UP),
    })
}

impl Groups {
    /// Parses and validates `text`, the content of the groups file `path`
    /// (`policies/groups.yaml`).
    pub fn from_yaml(path: &str, text: &str) -> Result<Groups, PipelineError> {
        validate_groups(path, super::yaml::parse(path, text.as_bytes())?)
    }
}

/// Validates `policies/groups.yaml`.
pub(crate) fn validate_groups(
    path: &str,
    doc: raw::Document<raw::GroupsSpec>,
) -> Result<Groups, PipelineError> {
    super::check_header(path, &doc.api_version, &doc.kind, "Groups")?;
    for (name, members) in &doc.spec {
        let field = format!("spec.{name}");
        if !super::stage::is_stage_name(name) {
            return Err(PipelineError::invalid(
                FileLocation::file(path),
                &field,
                format!(
                    "`{name}` is not a valid group name: use lower-case letters, digits and `-`"
                ),
            ));
        }
        if let Some(bad) = members
            .iter()
            .find(|m| m.trim().is_empty() || m.contains(char::is_whitespace) || m.contains(':'))
        {
            return Err(PipelineError::invalid(
                FileLocation::file(path),
                &field,
                format!("`{bad}` is not a user name"),
            ));
        }
    }
    Ok(Groups::new(doc.spec))
}
