//! `policies/access.yaml`: who may do what through the service. The OIDC issuers whose ID
//! tokens are accepted (and how an identity is built from their claims), and the roles bound
//! to identities and groups, optionally per stage. The decisions over these types live in
//! `access`.

use std::fmt;

use serde_saphyr::Spanned;

use super::error::{FileLocation, PipelineError};
use super::policy::Groups;
use super::raw;
use super::stage::Pipeline;
use super::yaml::at;

/// The access file.
pub const ACCESS_FILE: &str = "policies/access.yaml";

/// A role of `policies/access.yaml`. Every role may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads status, history, releases, plans and the audit log.
    Viewer,
    /// Creates releases.
    Releaser,
    /// Promotes and rolls back its stages (all when none are named).
    Promoter,
    /// Everything, plus pause/resume and tokens.
    Admin,
}

impl Role {
    /// Every role, in the order of their power.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Releaser, Role::Promoter, Role::Admin];

    /// The name written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Releaser => "releaser",
            Role::Promoter => "promoter",
            Role::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text.trim())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a role binding applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `*`: every authenticated identity.
    Everyone,
    /// `group:NAME`: the members of a group of `policies/groups.yaml`.
    Group(String),
    /// An identity name, where `*` stands for any run of characters other than `:`.
    Identity(NamePattern),
}

impl Subject {
    /// Whether the identity `name` is this subject.
    pub fn includes(&self, name: &str, groups: &Groups) -> bool {
        match self {
            Subject::Everyone => true,
            Subject::Group(group) => groups
                .members(group)
                .is_some_and(|members| members.iter().any(|m| m == name)),
            Subject::Identity(pattern) => pattern.matches(name),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Everyone => f.write_str("*"),
            Subject::Group(group) => write!(f, "group:{group}"),
            Subject::Identity(pattern) => f.write_str(&pattern.text),
        }
    }
}

/// An identity name, possibly with `*` wildcards (each matches any run of characters except
/// `:`, so a wildcard never reaches across a claim boundary of an OIDC identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern {
    text: String,
}

impl NamePattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `name` matches the pattern.
    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.text.as_bytes(), name.as_bytes())
    }
}

/// `*` matches any run of bytes other than `:`; everything else matches itself.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => {
            let mut i = 0;
            loop {
                if glob_match(rest, &name[i..]) {
                    return true;
                }
                if i == name.len() || name[i] == b':' {
                    return false;
                }
                i += 1;
            }
        }
        Some((byte, rest)) => name
            .split_first()
            .is_some_and(|(first, tail)| first == byte && glob_match(rest, tail)),
    }
}

/// A role given to subjects, for some stages or all.
#[derive(Debug, Clone)]
pub struct RoleBinding {
    pub role: Role,
    pub subjects: Vec<Subject>,
    /// The stages a promoter binding covers; `None`: every stage.
    pub stages: Option<Vec<String>>,
    /// Where the binding is written.
    pub declared_at: FileLocation,
}

impl RoleBinding {
    /// Whether this binding covers `stage` (`None`: the whole pipeline, which only a binding
    /// without a stage list covers).
    pub fn covers(&self, stage: Option<&str>) -> bool {
        match (&self.stages, stage) {
            (None, _) => true,
            (Some(stages), Some(stage)) => stages.iter().any(|s| s == stage),
            (Some(_), None) => false,
        }
    }
}

/// One part of an identity template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplatePart {
    Literal(String),
    Claim(String),
}

/// How an identity is built from an ID token's claims: `oidc:{sub}`,
/// `oidc:repo:{repository}:ref:{ref}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityTemplate {
    text: String,
    parts: Vec<TemplatePart>,
}

impl IdentityTemplate {
    /// Parses a template. It must start with a namespace (`oidc:`), so that no ID token can
    /// produce the name of a token user or a group.
    pub fn parse(text: &str) -> Result<IdentityTemplate, String> {
        let text = text.trim();
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let (literal, tail) = rest.split_at(open);
            if literal.contains('}') {
                return Err(format!("`{text}` has a `}}` without `{{`"));
            }
            let close = tail
                .find('}')
                .ok_or_else(|| format!("`{text}` has a `{{` without `}}`"))?;
            let claim = &tail[1..close];
            if claim.is_empty()
                || !claim
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(format!(
                    "`{{{claim}}}` in `{text}` is not a claim name (letters, digits, `_`, `-`, `.`)"
                ));
            }
            if !literal.is_empty() {
                parts.push(TemplatePart::Literal(literal.to_string()));
            }
            parts.push(TemplatePart::Claim(claim.to_string()));
            rest = &tail[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("`{text}` has a `}}` without `{{`"));
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Literal(rest.to_string()));
        }
        if text.contains(char::is_whitespace) || text.contains('*') {
            return Err(format!(
                "`{text}` may not contain whitespace or `*` (subjects match identities, not templates)"
            ));
        }
        let template = IdentityTemplate {
            text: text.to_string(),
            parts,
        };
        match template.namespace() {
            Some(ns) if !matches!(ns, "group" | "user") => Ok(template),
            Some(ns) => Err(format!(
                "`{text}`: the namespace `{ns}:` is reserved; start the identity with e.g. `oidc:`"
            )),
            None => Err(format!(
                "`{text}` must start with a namespace such as `oidc:` (e.g. `oidc:{{sub}}`), \
                 so that an ID token cannot take the name of a token user"
            )),
        }
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The literal text before the template's first `:`, when it comes before any claim.
    pub fn namespace(&self) -> Option<&str> {
        match self.parts.first() {
            Some(TemplatePart::Literal(lit)) => lit.split_once(':').map(|(ns, _)| ns),
            _ => None,
        }
        .filter(|ns| !ns.is_empty())
    }

    /// The claims the template uses.
    pub fn claims(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Claim(name) => Some(name.as_str()),
            TemplatePart::Literal(_) => None,
        })
    }

    /// The identity for the claims `claim` returns; `Err(name)` for the first claim it lacks.
    pub fn render(&self, claim: impl Fn(&str) -> Option<String>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Literal(lit) => out.push_str(lit),
                TemplatePart::Claim(name) => out.push_str(&claim(name).ok_or(name.clone())?),
            }
        }
        Ok(out)
    }
}

/// An OIDC issuer whose ID tokens are accepted.
#[derive(Debug, Clone)]
pub struct OidcIssuer {
    /// The issuer URL, exactly as the tokens' `iss` claim carries it.
    pub issuer: String,
    /// The `aud` the tokens must carry.
    pub audience: String,
    pub identity: IdentityTemplate,
}

/// The validated `policies/access.yaml`. The default (no file) accepts no ID tokens and grants
/// no role.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    /// The file it was read from; `None` when the repository has none.
    pub path: Option<String>,
    pub oidc: Vec<OidcIssuer>,
    pub roles: Vec<RoleBinding>,
}

impl AccessPolicy {
    /// Parses and validates `text`, the content of `path`, against the pipeline's stages and
    /// the groups.
    pub fn from_yaml(
        path: &str,
        text: &str,
        pipeline: &Pipeline,
        groups: &Groups,
    ) -> Result<AccessPolicy, PipelineError> {
        validate(
            path,
            super::yaml::parse(path, text.as_bytes())?,
            pipeline,
            groups,
        )
    }

    /// The issuer `iss`, if it is listed.
    pub fn issuer(&self, iss: &str) -> Option<&OidcIssuer> {
        self.oidc.iter().find(|i| i.issuer == iss)
    }
}

/// Converts the raw access file of `path` into an [`AccessPolicy`].
pub(crate) fn validate(
    path: &str,
    doc: raw::Document<raw::AccessSpec>,
    pipeline: &Pipeline,
    groups: &Groups,
) -> Result<AccessPolicy, PipelineError> {
    super::check_header(path, &doc.api_version, &doc.kind, "Access")?;
    let mut oidc: Vec<OidcIssuer> = Vec::new();
    for (i, entry) in doc.spec.oidc.iter().enumerate() {
        let issuer = validate_issuer(path, i, &entry.value)?;
        if oidc.iter().any(|o| o.issuer == issuer.issuer) {
            return Err(PipelineError::invalid(
                at(path, &entry.value.issuer),
                format!("spec.oidc[{i}].issuer"),
                format!("issuer `{}` is listed twice", issuer.issuer),
            ));
        }
        oidc.push(issuer);
    }
    let namespaces: Vec<&str> = oidc.iter().filter_map(|o| o.identity.namespace()).collect();
    let roles = doc
        .spec
        .roles
        .iter()
        .enumerate()
        .map(|(i, b)| validate_binding(path, i, b, pipeline, groups, &namespaces))
        .collect::<Result<_, _>>()?;
    Ok(AccessPolicy {
        path: Some(path.to_string()),
        oidc,
        roles,
    })
}

fn validate_issuer(
    path: &str,
    i: usize,
    raw: &raw::OidcIssuer,
) -> Result<OidcIssuer, PipelineError> {
    let issuer = raw.issuer.value.trim();
    let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|prefix| {
            issuer
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        });
    let host = issuer
        .strip_prefix("https://")
        .map(|rest| rest.split('/').next().unwrap_or_default());
    let valid = (local || host.is_some_and(|h| !h.is_empty()))
        && !issuer.contains(['?', '#'])
        && !issuer.contains(char::is_whitespace);
    if !valid {
        return Err(PipelineError::invalid(
            at(path, &raw.issuer),
            format!("spec.oidc[{i}].issuer"),
            format!(
                "`{issuer}` is not an issuer URL: expected https://HOST[/PATH] \
                 (plain http only on 127.0.0.1 or localhost), without query or fragment"
            ),
        ));
    }
    let audience = raw.audience.value.trim();
    if audience.is_empty() {
        return Err(PipelineError::invalid(
            at(path, &raw.audience),
            format!("spec.oidc[{i}].audience"),
            "name the audience (`aud`) the ID tokens are issued for, e.g. ferry",
        ));
    }
    let identity = IdentityTemplate::parse(&raw.identity.value).map_err(|m| {
        PipelineError::invalid(
            at(path, &raw.identity),
            format!("spec.oidc[{i}].identity"),
            m,
        )
    })?;
    Ok(OidcIssuer {
        issuer: issuer.to_string(),
        audience: audience.to_string(),
        identity,
    })
}

fn validate_binding(
    path: &str,
    i: usize,
    raw: &Spanned<raw::RoleBinding>,
    pipeline: &Pipeline,
    groups: &Groups,
    namespaces: &[&str],
) -> Result<RoleBinding, PipelineError> {
    let b = &raw.value;
    let role = Role::parse(&b.role.value).ok_or_else(|| {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        PipelineError::invalid(
            at(path, &b.role),
            format!("spec.roles[{i}].role"),
            format!(
                "unknown role `{}`: expected one of {}",
                b.role.value,
                known.join(", ")
            ),
        )
    })?;
    if b.subjects.is_empty() {
        return Err(PipelineError::invalid(
            at(path, raw),
            format!("spec.roles[{i}].subjects"),
            "list who has the role: identity names, group:NAME, or `*` for everyone",
        ));
    }
    let subjects = b
        .subjects
        .iter()
        .enumerate()
        .map(|(j, s)| {
            parse_subject(&s.value, groups, namespaces).map_err(|m| {
                PipelineError::invalid(at(path, s), format!("spec.roles[{i}].subjects[{j}]"), m)
            })
        })
        .collect::<Result<_, _>>()?;
    let stages = b
        .stages
        .as_ref()
        .map(|stages| validate_stages(path, i, raw, role, stages, pipeline))
        .transpose()?;
    Ok(RoleBinding {
        role,
        subjects,
        stages,
        declared_at: at(path, raw),
    })
}

fn validate_stages(
    path: &str,
    i: usize,
    raw: &Spanned<raw::RoleBinding>,
    role: Role,
    stages: &[Spanned<String>],
    pipeline: &Pipeline,
) -> Result<Vec<String>, PipelineError> {
    let field = format!("spec.roles[{i}].stages");
    if role != Role::Promoter {
        return Err(PipelineError::invalid(
            at(path, raw),
            field,
            format!("only the promoter role is given per stage; {role} covers the whole pipeline"),
        ));
    }
    if stages.is_empty() {
        return Err(PipelineError::invalid(
            at(path, raw),
            field,
            "name at least one stage, or leave `stages` out for every stage",
        ));
    }
    let mut out = Vec::new();
    for (j, stage) in stages.iter().enumerate() {
        let name = stage.value.trim();
        if pipeline.stage(name).is_none() {
            let known: Vec<&str> = pipeline.stages().iter().map(|s| s.name.as_str()).collect();
            return Err(PipelineError::invalid(
                at(path, stage),
                format!("{field}[{j}]"),
                format!("unknown stage `{name}`; known: {}", known.join(", ")),
            ));
        }
        out.push(name.to_string());
    }
    Ok(out)
}

/// Parses a subject: `*`, `group:NAME` (an existing group), `user:NAME`, or an identity name
/// (`*` wildcards allowed) whose namespace, if any, is one an OIDC issuer produces.
fn parse_subject(text: &str, groups: &Groups, namespaces: &[&str]) -> Result<Subject, String> {
    let text = text.trim();
    if text == "*" {
        return Ok(Subject::Everyone);
    }
    if let Some(group) = text.strip_prefix("group:") {
        return match groups.members(group) {
            Some(_) => Ok(Subject::Group(group.to_string())),
            None => Err(format!(
                "unknown group `{group}`: define it in policies/groups.yaml"
            )),
        };
    }
    let name = text.strip_prefix("user:").unwrap_or(text);
    if name.is_empty()
        || name.contains(char::is_whitespace)
        || name.contains(['{', '}'])
        || name.contains("**")
    {
        return Err(format!(
            "`{text}` is not a subject: expected a name (`*` matches any characters but `:`), \
             group:NAME, or `*`"
        ));
    }
    if let Some((ns, _)) = name.split_once(':')
        && !namespaces.contains(&ns)
    {
        let known = if namespaces.is_empty() {
            "no spec.oidc issuer is listed".to_string()
        } else {
            format!(
                "the issuers' identities start with {}",
                namespaces
                    .iter()
                    .map(|n| format!("`{n}:`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(format!(
            "`{text}` can match no identity: token users have no `:` in their names, and {known}"
        ));
    }
    Ok(Subject::Identity(NamePattern {
        text: name.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = "apiVersion: ferry/v1\nkind: Pipeline\nmetadata: {name: p}\nspec:\n  images: [acme/web]\n  stages:\n  - {name: dev, overlay: environments/dev}\n  - {name: prod, overlay: environments/prod, upstream: [dev]}\n";

    fn pipeline() -> Pipeline {
        Pipeline::from_yaml(PIPELINE).expect("valid pipeline")
    }

    fn groups() -> Groups {
        Groups::from_yaml(
            "policies/groups.yaml",
            "apiVersion: ferry/v1\nkind: Groups\nmetadata: {name: groups}\nspec:\n  release-managers: [alice, bob]\n",
        )
        .expect("groups")
    }

    fn load(spec: &str) -> Result<AccessPolicy, PipelineError> {
        let text = format!(
            "apiVersion: ferry/v1\nkind: Access\nmetadata: {{name: access}}\nspec:\n{spec}"
        );
        AccessPolicy::from_yaml(ACCESS_FILE, &text, &pipeline(), &groups())
    }

    fn error(spec: &str) -> String {
        load(spec).expect_err("invalid").to_string()
    }

    #[test]
    fn a_full_file_is_read() {
        let policy = load(
            "  oidc:\n  - {issuer: \"https://token.actions.githubusercontent.com\", audience: ferry, identity: \"oidc:{sub}\"}\n  roles:\n  - {role: viewer, subjects: [\"*\"]}\n  - {role: promoter, subjects: [group:release-managers, \"oidc:repo:acme/*:ref:refs/heads/main\"], stages: [prod]}\n",
        )
        .expect("valid");
        assert_eq!(
            policy.oidc[0].identity.claims().collect::<Vec<_>>(),
            ["sub"]
        );
        assert_eq!(policy.roles[1].role, Role::Promoter);
        assert_eq!(policy.roles[1].stages, Some(vec!["prod".to_string()]));
        assert_eq!(
            policy.roles[1].declared_at.to_string(),
            "policies/access.yaml:9:5"
        );
        assert_eq!(
            policy.roles[1].subjects[0],
            Subject::Group("release-managers".into())
        );
    }

    #[test]
    fn bad_files_name_the_line_and_field() {
        let cases = [
            (
                "  roles:\n  - {role: owner, subjects: [alice]}\n",
                "policies/access.yaml:6:12: spec.roles[0].role: unknown role `owner`: expected one of viewer, releaser, promoter, admin",
            ),
            (
                "  roles:\n  - {role: viewer, subjects: [alice], extra: 1}\n",
                "policies/access.yaml:6:",
            ),
            (
                "  roles:\n  - {role: viewer, subjects: [group:devs]}\n",
                "policies/access.yaml:6:31: spec.roles[0].subjects[0]: unknown group `devs`: define it in policies/groups.yaml",
            ),
            (
                "  roles:\n  - {role: promoter, subjects: [alice], stages: [staging]}\n",
                "policies/access.yaml:6:50: spec.roles[0].stages[0]: unknown stage `staging`; known: dev, prod",
            ),
            (
                "  roles:\n  - {role: viewer, subjects: [alice], stages: [dev]}\n",
                "spec.roles[0].stages: only the promoter role is given per stage",
            ),
            (
                "  roles:\n  - {role: viewer, subjects: [\"gruop:dev\"]}\n",
                "`gruop:dev` can match no identity: token users have no `:` in their names, and no spec.oidc issuer is listed",
            ),
            (
                "  roles:\n  - {role: viewer, subjects: [\"a**\"]}\n",
                "`a**` is not a subject",
            ),
            (
                "  roles:\n  - {role: viewer, subjects: []}\n",
                "spec.roles[0].subjects: list who has the role",
            ),
            (
                "  oidc:\n  - {issuer: \"http://ci.example.com\", audience: ferry, identity: \"oidc:{sub}\"}\n",
                "spec.oidc[0].issuer: `http://ci.example.com` is not an issuer URL",
            ),
            (
                "  oidc:\n  - {issuer: \"https://ci.example.com\", audience: ferry, identity: \"{sub}\"}\n",
                "spec.oidc[0].identity: `{sub}` must start with a namespace",
            ),
            (
                "  oidc:\n  - {issuer: \"https://ci.example.com\", audience: ferry, identity: \"oidc:{sub\"}\n",
                "has a `{` without `}`",
            ),
            (
                "  oidc:\n  - {issuer: \"https://ci.example.com\", audience: ferry, identity: \"group:{sub}\"}\n",
                "the namespace `group:` is reserved",
            ),
        ];
        for (spec, expected) in cases {
            let err = error(spec);
            assert!(
                err.contains(expected),
                "{spec}\n→ {err}\nexpected {expected}"
            );
        }
    }

    #[test]
    fn the_kind_is_checked() {
        let err = AccessPolicy::from_yaml(
            ACCESS_FILE,
            "apiVersion: ferry/v1\nkind: Policy\nmetadata: {name: access}\nspec: {}\n",
            &pipeline(),
            &groups(),
        )
        .expect_err("wrong kind");
        assert_eq!(
            err.to_string(),
            "policies/access.yaml:2:7: kind: `Policy` found, expected `Access`"
        );
    }

    #[test]
    fn wildcards_stop_at_colons() {
        let pattern = |text: &str| NamePattern { text: text.into() };
        let table = [
            ("ci-*", "ci-bot", true),
            ("ci-*", "ci-", true),
            ("ci-*", "cd-bot", false),
            (
                "oidc:repo:acme/*:ref:refs/heads/main",
                "oidc:repo:acme/web:ref:refs/heads/main",
                true,
            ),
            (
                "oidc:repo:acme/*:ref:refs/heads/main",
                "oidc:repo:acme/web:ref:refs/heads/dev",
                false,
            ),
            (
                "oidc:repo:acme/*",
                "oidc:repo:acme/web:ref:refs/heads/main",
                false,
            ),
            ("oidc:*:*", "oidc:a:b", true),
            ("alice", "alice", true),
            ("alice", "alice2", false),
        ];
        for (p, name, expected) in table {
            assert_eq!(pattern(p).matches(name), expected, "{p} ~ {name}");
        }
    }

    #[test]
    fn templates_render_from_claims() {
        let template = IdentityTemplate::parse("oidc:repo:{repository}:ref:{ref}").expect("valid");
        assert_eq!(template.namespace(), Some("oidc"));
        let claims = |name: &str| match name {
            "repository" => Some("acme/web".to_string()),
            "ref" => Some("refs/heads/main".to_string()),
            _ => None,
        };
        assert_eq!(
            template.render(claims).expect("renders"),
            "oidc:repo:acme/web:ref:refs/heads/main"
        );
        let missing = IdentityTemplate::parse("oidc:{email}").expect("valid");
        assert_eq!(missing.render(claims), Err("email".to_string()));
    }
}
