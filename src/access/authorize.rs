//! The authorization decision: may this identity take this action (in this stage)? Pure:
//! the access policy, the groups and the identity in, a yes or a reason out.

use std::fmt;

use super::identity::Identity;
use crate::pipeline::{AccessPolicy, Groups, Role, RoleBinding};

/// What a caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read status, history, releases, plans, promotions, events and the audit log.
    Read,
    /// Create a release.
    CreateRelease,
    /// Promote a revision into a stage.
    Promote,
    /// Roll a stage back.
    Rollback,
    /// Stop the line in a stage (or all).
    Pause,
    /// Let the line go again.
    Resume,
    /// Manage tokens and everything else reserved to admins.
    Admin,
}

impl Action {
    /// The roles that grant this action (admin grants every action).
    fn granted_by(self) -> &'static [Role] {
        match self {
            Action::Read => &Role::ALL,
            Action::CreateRelease => &[Role::Releaser, Role::Admin],
            Action::Promote | Action::Rollback => &[Role::Promoter, Role::Admin],
            Action::Pause | Action::Resume | Action::Admin => &[Role::Admin],
        }
    }

    /// Whether the action is taken in one stage, so that per-stage bindings apply.
    fn is_per_stage(self) -> bool {
        matches!(self, Action::Promote | Action::Rollback)
    }

    fn describe(self, stage: Option<&str>) -> String {
        let in_stage = |verb: &str| match stage {
            Some(stage) => format!("{verb} {stage}"),
            None => format!("{verb} every stage"),
        };
        match self {
            Action::Read => "read".to_string(),
            Action::CreateRelease => "create releases".to_string(),
            Action::Promote => in_stage("promote"),
            Action::Rollback => in_stage("roll back"),
            Action::Pause => in_stage("pause"),
            Action::Resume => in_stage("resume"),
            Action::Admin => "administer ferry (tokens)".to_string(),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(None))
    }
}

/// A refused action, with a reason a person can act on: who holds the role that would allow
/// it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{identity} may not {}: {reason}", action.describe(stage.as_deref()))]
pub struct Denied {
    /// The identity's name.
    pub identity: String,
    pub action: Action,
    pub stage: Option<String>,
    /// Who would be allowed, or why nobody is.
    pub reason: String,
}

/// Whether `identity` may take `action`, in `stage` for the per-stage actions (promote,
/// rollback; `None` means every stage). Every role may read; admins may do everything.
pub fn may(
    policy: &AccessPolicy,
    identity: &Identity,
    groups: &Groups,
    action: Action,
    stage: Option<&str>,
) -> Result<(), Denied> {
    let stage = stage.filter(|_| action.is_per_stage());
    let grants = |b: &&RoleBinding| {
        action.granted_by().contains(&b.role) && (b.role == Role::Admin || b.covers(stage))
    };
    let allowed = policy.roles.iter().filter(grants).any(|b| {
        b.subjects
            .iter()
            .any(|s| s.includes(&identity.name, groups))
    });
    if allowed {
        return Ok(());
    }
    Err(Denied {
        identity: identity.name.clone(),
        action,
        stage: stage.map(str::to_string),
        reason: reason(policy, &identity.name, action, stage, grants),
    })
}

/// Who holds the roles that would allow the action: "promoter of prod is
/// group:release-managers; admin is alice".
fn reason(
    policy: &AccessPolicy,
    name: &str,
    action: Action,
    stage: Option<&str>,
    grants: impl Fn(&&RoleBinding) -> bool,
) -> String {
    let Some(path) = &policy.path else {
        return "the repository has no policies/access.yaml, so no role is granted to anyone"
            .to_string();
    };
    if action == Action::Read {
        return format!("{path} gives {name} no role (every role may read)");
    }
    let mut parts: Vec<String> = Vec::new();
    for role in action.granted_by() {
        let subjects: Vec<String> = policy
            .roles
            .iter()
            .filter(|b| b.role == *role)
            .filter(&grants)
            .flat_map(|b| b.subjects.iter().map(ToString::to_string))
            .collect();
        if subjects.is_empty() {
            continue;
        }
        let (plural, verb) = if subjects.len() == 1 {
            ("", "is")
        } else {
            ("s", "are")
        };
        let holder = match (role, stage) {
            (Role::Promoter, Some(stage)) => format!("promoter{plural} of {stage}"),
            (Role::Promoter, None) => format!("promoter{plural} of every stage"),
            (role, _) => format!("{role}{plural}"),
        };
        parts.push(format!("{holder} {verb} {}", subjects.join(", ")));
    }
    if parts.is_empty() {
        let roles: Vec<&str> = action.granted_by().iter().map(|r| r.as_str()).collect();
        return format!(
            "{path} gives nobody the role for it ({})",
            roles.join(" or ")
        );
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::AuthMethod;
    use crate::pipeline::{ACCESS_FILE, Pipeline};

    const PIPELINE: &str = "apiVersion: ferry/v1\nkind: Pipeline\nmetadata: {name: p}\nspec:\n  images: [acme/web]\n  stages:\n  - {name: dev, overlay: environments/dev}\n  - {name: qa, overlay: environments/qa, upstream: [dev]}\n  - {name: prod, overlay: environments/prod, upstream: [qa]}\n";

    const ACCESS: &str = r#"apiVersion: ferry/v1
kind: Access
metadata: {name: access}
spec:
  oidc:
  - {issuer: "https://ci.example.com", audience: ferry, identity: "oidc:{sub}"}
  roles:
  - {role: viewer, subjects: ["*"]}
  - {role: releaser, subjects: [ci-bot, "oidc:repo:acme/web:ref:refs/heads/main"]}
  - {role: promoter, subjects: [group:developers], stages: [dev, qa]}
  - {role: promoter, subjects: [group:release-managers], stages: [prod]}
  - {role: admin, subjects: [dana]}
"#;

    fn setup() -> (AccessPolicy, Groups) {
        let groups = Groups::from_yaml(
            "policies/groups.yaml",
            "apiVersion: ferry/v1\nkind: Groups\nmetadata: {name: groups}\nspec:\n  developers: [erin]\n  release-managers: [alice, bob]\n",
        )
        .expect("groups");
        let pipeline = Pipeline::from_yaml(PIPELINE).expect("pipeline");
        let policy =
            AccessPolicy::from_yaml(ACCESS_FILE, ACCESS, &pipeline, &groups).expect("access");
        (policy, groups)
    }

    fn who(name: &str) -> Identity {
        Identity {
            name: name.to_string(),
            auth: AuthMethod::Token {
                id: "t-000000000000".to_string(),
            },
        }
    }

    #[test]
    fn each_role_may_do_what_it_grants_and_nothing_more() {
        let (policy, groups) = setup();
        use Action::*;
        let table: &[(&str, Action, Option<&str>, bool)] = &[
            ("mallory", Read, None, true),
            ("mallory", CreateRelease, None, false),
            ("mallory", Promote, Some("dev"), false),
            ("ci-bot", CreateRelease, None, true),
            ("ci-bot", Promote, Some("dev"), false),
            (
                "oidc:repo:acme/web:ref:refs/heads/main",
                CreateRelease,
                None,
                true,
            ),
            (
                "oidc:repo:acme/web:ref:refs/heads/dev",
                CreateRelease,
                None,
                false,
            ),
            ("erin", Promote, Some("dev"), true),
            ("erin", Rollback, Some("qa"), true),
            ("erin", Promote, Some("prod"), false),
            ("erin", Promote, None, false),
            ("erin", CreateRelease, None, false),
            ("alice", Promote, Some("prod"), true),
            ("alice", Promote, Some("dev"), false),
            ("alice", Pause, None, false),
            ("dana", Promote, Some("prod"), true),
            ("dana", Promote, None, true),
            ("dana", Pause, Some("prod"), true),
            ("dana", Resume, None, true),
            ("dana", Admin, None, true),
            ("dana", CreateRelease, None, true),
            ("erin", Admin, None, false),
        ];
        for (name, action, stage, expected) in table {
            let outcome = may(&policy, &who(name), &groups, *action, *stage);
            assert_eq!(
                outcome.is_ok(),
                *expected,
                "{name} {action:?} {stage:?}: {outcome:?}"
            );
        }
    }

    #[test]
    fn a_refusal_names_who_would_be_allowed() {
        let (policy, groups) = setup();
        let denied = |name: &str, action, stage| {
            may(&policy, &who(name), &groups, action, stage)
                .expect_err("denied")
                .to_string()
        };
        assert_eq!(
            denied("erin", Action::Promote, Some("prod")),
            "erin may not promote prod: promoter of prod is group:release-managers; admin is dana"
        );
        assert_eq!(
            denied("alice", Action::Rollback, Some("qa")),
            "alice may not roll back qa: promoter of qa is group:developers; admin is dana"
        );
        assert_eq!(
            denied("erin", Action::CreateRelease, None),
            "erin may not create releases: releasers are ci-bot, oidc:repo:acme/web:ref:refs/heads/main; admin is dana"
        );
        assert_eq!(
            denied("alice", Action::Pause, None),
            "alice may not pause every stage: admin is dana"
        );
    }

    #[test]
    fn without_an_access_file_nobody_may_do_anything() {
        let (_, groups) = setup();
        let denied = may(
            &AccessPolicy::default(),
            &who("alice"),
            &groups,
            Action::Read,
            None,
        )
        .expect_err("denied");
        assert_eq!(
            denied.to_string(),
            "alice may not read: the repository has no policies/access.yaml, so no role is granted to anyone"
        );
    }

    #[test]
    fn an_identity_without_a_role_may_not_read() {
        let groups = Groups::default();
        let pipeline = Pipeline::from_yaml(PIPELINE).expect("pipeline");
        let policy = AccessPolicy::from_yaml(
            ACCESS_FILE,
            "apiVersion: ferry/v1\nkind: Access\nmetadata: {name: access}\nspec:\n  roles:\n  - {role: releaser, subjects: [ci-bot]}\n",
            &pipeline,
            &groups,
        )
        .expect("access");
        assert_eq!(
            may(&policy, &who("ci-bot"), &groups, Action::Read, None),
            Ok(())
        );
        assert_eq!(
            may(&policy, &who("eve"), &groups, Action::Read, None)
                .expect_err("no role")
                .to_string(),
            "eve may not read: policies/access.yaml gives eve no role (every role may read)"
        );
    }
}
