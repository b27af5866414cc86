//! `ferry metrics`: the DORA keys of a stage's history, exactly as the docs define them.

use crate::support::TestRepo;

const CHECK: &str =
    r#"run: ["sh", "-c", "grep -rq 'image: acme/helloworld[:@]' \"$FERRY_MANIFESTS\""]"#;
const FAIL_143: &str = r#"run: ["sh", "-c", "! grep -rq 'helloworld:1.4.3' \"$FERRY_MANIFESTS\""]"#;

fn release(repo: &TestRepo, at: &str, tag: &str) -> String {
    let image = format!("acme/helloworld={tag}");
    let run = repo
        .ferry_at(
            at,
            "ci",
            &["release", "create", "--image", &image, "-o", "json"],
        )
        .expect_code(0);
    run.json()["id"].as_str().expect("id").to_string()
}

#[test]
fn deployments_failures_lead_time_and_restores_per_stage() {
    let repo = TestRepo::example();
    repo.edit("policies/dev.yaml", CHECK, FAIL_143);
    repo.commit("dev refuses 1.4.3");
    let r1 = release(&repo, "2026-11-30T09:00:00Z", "1.4.2");
    repo.promote("2026-11-30T09:00:00Z", "carol", &r1, "dev")
        .expect_code(0);
    let r2 = release(&repo, "2026-11-30T09:10:00Z", "1.4.3");
    repo.promote("2026-11-30T09:12:00Z", "carol", &r2, "dev")
        .expect_code(1);
    let back = repo
        .ferry_at(
            "2026-11-30T09:20:00Z",
            "carol",
            &["rollback", "dev", "-o", "json"],
        )
        .expect_code(0)
        .json();
    assert_eq!(back["revision"], r1.as_str());
    let r3 = release(&repo, "2026-11-30T09:30:00Z", "1.4.4");
    repo.promote("2026-11-30T09:35:00Z", "carol", &r3, "dev")
        .expect_code(0);
    repo.ferry_at("2026-11-30T09:40:00Z", "carol", &["rollback", "dev"])
        .expect_code(0);

    let report = repo
        .ferry_at(
            "2026-11-30T09:45:00Z",
            "carol",
            &["metrics", "--since", "1h", "-o", "json"],
        )
        .expect_code(0)
        .json();
    let dev = &report["stages"][0];
    assert_eq!(dev["stage"], "dev");
    // r1, the rollback to r1, r3, the rollback to r1.
    assert_eq!(dev["deployments"], 4);
    // r2 failed its gate; the second rollback replaced r3, which had passed its gates.
    assert_eq!(dev["change_failures"], 2);
    assert_eq!(dev["change_failure_rate"], 0.4);
    // r1: 0 s, r3: 5 min; rollbacks have no lead time.
    assert_eq!(dev["lead_time_median_seconds"], 150.0);
    // 09:12 → 09:20 and 09:40 → 09:40.
    assert_eq!(dev["restores"], 2);
    assert_eq!(dev["time_to_restore_median_seconds"], 240.0);
    assert_eq!(dev["deployments_per_day"], 96.0);
    assert_eq!(report["stages"][1]["stage"], "qa");
    assert_eq!(report["stages"][1]["deployments"], 0);
    assert_eq!(
        report["stages"][1]["change_failure_rate"],
        serde_json::Value::Null
    );

    let recent = repo
        .ferry_at(
            "2026-11-30T09:45:00Z",
            "carol",
            &["metrics", "--since", "10m", "-o", "json"],
        )
        .expect_code(0)
        .json();
    assert_eq!(recent["stages"][0]["deployments"], 2);
    assert_eq!(recent["stages"][0]["change_failures"], 1);
    assert_eq!(recent["stages"][0]["restores"], 1);

    let table = repo
        .ferry_at(
            "2026-11-30T09:45:00Z",
            "carol",
            &["metrics", "--since", "1h"],
        )
        .expect_code(0)
        .stdout;
    let dev_row = table
        .lines()
        .find(|l| l.starts_with("dev "))
        .expect("a dev row");
    let cells: Vec<&str> = dev_row.split_whitespace().collect();
    assert_eq!(cells, ["dev", "4", "96.00", "2", "40%", "2m", "4m"]);
    repo.ferry(&["metrics", "--since", "soon"]).expect_code(2);
}
