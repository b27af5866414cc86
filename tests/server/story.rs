//! The service as a newcomer meets it in the README: `ferry serve` on the bundled example,
//! tokens made with `ferry token create`, a release created with an HTTP POST by the
//! releaser, dev and qa moving on their own, prod approved by two release managers from two
//! other processes with `ferry --server … approve`, and every refusal on the way a 401 or
//! 403 that says why.

use serde_json::json;

use super::{timeless_example, token};
use crate::support::server::{Events, Served, remote, remote_command, wait_for};

#[test]
fn a_release_reaches_prod_through_the_service_with_two_approvals() {
    let repo = timeless_example();
    let ci = token(&repo, "ci-bot");
    let carol = token(&repo, "carol");
    let alice = token(&repo, "alice");
    let bob = token(&repo, "bob");
    let served = Served::start(&repo, &[], &[]);
    let url = served.url.as_str();
    let api = served.api();
    let mut events = Events::open(url, &alice);

    let anonymous = api
        .post(
            "/api/v1/releases",
            None,
            &json!({"images": {"acme/helloworld": "1.4.2"}}),
        )
        .expect_error(401, "unauthenticated");
    assert_eq!(
        anonymous.message(),
        "this request needs `Authorization: Bearer TOKEN`"
    );
    let not_releaser = api
        .post(
            "/api/v1/releases",
            Some(&alice),
            &json!({"images": {"acme/helloworld": "1.4.2"}}),
        )
        .expect_error(403, "forbidden");
    assert!(
        not_releaser
            .message()
            .starts_with("alice may not create releases"),
        "{}",
        not_releaser.text
    );

    let created = api
        .post(
            "/api/v1/releases",
            Some(&ci),
            &json!({"images": {"acme/helloworld": "1.4.2"}, "message": "from CI"}),
        )
        .expect(201);
    let rev = created.body["id"].as_str().expect("id").to_string();
    for stage in ["dev", "qa"] {
        loop {
            let event = events.wait_for("promotion.succeeded");
            if event["stage"] == stage {
                assert_eq!(event["revision"], rev.as_str());
                break;
            }
        }
    }

    let ci_promotes = remote(url, &ci, &["promote", &rev, "--to", "prod"]).expect_code(2);
    assert!(
        ci_promotes.stderr.contains("ci-bot may not promote prod"),
        "{}",
        ci_promotes.stderr
    );
    let requested = remote(url, &carol, &["promote", &rev, "--to", "prod"]).expect_code(3);
    assert!(
        requested
            .stderr
            .contains("needs 2 more approvals from group:release-managers"),
        "{}",
        requested.stderr
    );
    let own = remote(url, &carol, &["approve", "prod"]).expect_code(2);
    assert!(own.stderr.contains("carol"), "{}", own.stderr);
    assert!(own.stderr.contains("requested"), "{}", own.stderr);
    let ci_approves = remote(url, &ci, &["approve", "prod"]).expect_code(2);
    assert!(
        ci_approves.stderr.contains("ci-bot"),
        "{}",
        ci_approves.stderr
    );
    let garbage = remote(url, "garbage", &["approve", "prod"]).expect_code(2);
    assert!(
        garbage.stderr.contains("the server refused the token"),
        "{}",
        garbage.stderr
    );

    let shells: Vec<_> = [&alice, &bob]
        .into_iter()
        .map(|token| {
            remote_command(
                url,
                token,
                &["approve", "prod", "--comment", "load test ok"],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start ferry approve")
        })
        .collect();
    let mut said: Vec<String> = shells
        .into_iter()
        .map(|shell| {
            let output = shell.wait_with_output().expect("ferry approve");
            let run = crate::support::Run::from_command_output(output).expect_code(0);
            run.stdout.lines().next().unwrap_or_default().to_string()
        })
        .collect();
    said.sort();
    assert_eq!(
        said,
        [
            format!("alice approved {rev} in prod"),
            format!("bob approved {rev} in prod")
        ]
    );

    wait_for("prod verified", || {
        let status = remote(url, &carol, &["status", "-o", "json"]).expect_code(0);
        let prod = status.json()["stages"][2].clone();
        prod["name"] == "prod" && prod["revision"] == rev.as_str() && prod["verified"] == true
    });
    let history = remote(url, &carol, &["history", "prod", "-o", "json"])
        .expect_code(0)
        .json();
    let promotions = history.as_array().expect("history");
    assert_eq!(promotions.len(), 1, "{history}");
    assert_eq!(promotions[0]["state"], "succeeded");
    assert_eq!(promotions[0]["requested_by"], "carol");
    let mut approved_by: Vec<&str> = promotions[0]["approved_by"]
        .as_array()
        .expect("approved_by")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    approved_by.sort_unstable();
    assert_eq!(approved_by, ["alice", "bob"]);
    assert_eq!(repo.log("env/prod").len(), 1);

    let audit = api
        .get("/api/v1/audit?stage=prod", Some(&ci))
        .expect(200)
        .body;
    let approvals: Vec<(String, String)> = audit
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "approval")
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or_default().to_string(),
                e["auth"]["kind"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let mut approvals = approvals;
    approvals.sort();
    assert_eq!(
        approvals,
        [
            ("alice".to_string(), "token".to_string()),
            ("bob".to_string(), "token".to_string())
        ]
    );
}
