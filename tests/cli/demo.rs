//! `ferry demo`, the README's first command.

use crate::support::TestRepo;

#[test]
fn the_demo_promotes_through_prod_and_ends_with_status_and_history() {
    let repo = TestRepo::empty();
    let run = repo
        .ferry_at("2026-11-30T09:00:00Z", "carol", &["demo"])
        .expect_code(0);
    let out = &run.stdout;
    for expected in [
        "→ dev (auto): succeeded",
        "→ qa (auto): succeeded",
        "alice approved",
        "bob approved",
        "verified in prod",
        "$ ferry status",
        "$ ferry history",
        "chain intact: true",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let prod = out
        .lines()
        .find(|l| l.starts_with("prod "))
        .expect("a prod status row");
    assert!(prod.contains("yes") && prod.contains("succeeded"), "{prod}");
}

#[test]
fn the_demo_waits_out_a_weekend_in_the_year_end_freeze() {
    let repo = TestRepo::empty();
    // Saturday 26 December 2026: closed for the weekend and frozen until 4 January.
    let run = repo
        .ferry_at("2026-12-26T10:00:00Z", "carol", &["demo"])
        .expect_code(0);
    assert!(
        run.stdout.contains("⏩ later:") && run.stdout.contains("2027-01-04"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("verified in prod"), "{}", run.stdout);
}
