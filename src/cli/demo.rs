//! `ferry demo`: the bundled example, promoted dev → qa → prod in a temporary repository.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use clap::Args;

use super::engine::engine_error;
use super::{CliError, Context};
use crate::policy::{Verdict, WindowState, window_at};
use crate::promotion::{Actor, Engine, EngineOptions, PromoteRequest, PromotionState};

/// Promote a release of the bundled hello-world example through dev → qa → prod
///
/// Works on a temporary copy of the example repository with a simulated clock (soak times and
/// the prod window pass in an instant), runs the real engine, renderer and gates, and ends
/// with `status` and `history`. Needs git; no cluster.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the temporary repository and print where it is
    #[arg(long)]
    pub keep: bool,
}

/// The example config repository, embedded so the demo runs anywhere.
pub(crate) const EXAMPLE: &[(&str, &str)] = &[
    (
        "environments/base/deployment.yaml",
        include_str!("../../environments/base/deployment.yaml"),
    ),
    (
        "environments/base/kustomization.yaml",
        include_str!("../../environments/base/kustomization.yaml"),
    ),
    (
        "environments/base/service.yaml",
        include_str!("../../environments/base/service.yaml"),
    ),
    (
        "environments/dev/kustomization.yaml",
        include_str!("../../environments/dev/kustomization.yaml"),
    ),
    (
        "environments/dev/namespace.yaml",
        include_str!("../../environments/dev/namespace.yaml"),
    ),
    (
        "environments/pipeline.yaml",
        include_str!("../../environments/pipeline.yaml"),
    ),
    (
        "environments/prod/kustomization.yaml",
        include_str!("../../environments/prod/kustomization.yaml"),
    ),
    (
        "environments/prod/namespace.yaml",
        include_str!("../../environments/prod/namespace.yaml"),
    ),
    (
        "environments/prod/resources.yaml",
        include_str!("../../environments/prod/resources.yaml"),
    ),
    (
        "environments/qa/kustomization.yaml",
        include_str!("../../environments/qa/kustomization.yaml"),
    ),
    (
        "environments/qa/namespace.yaml",
        include_str!("../../environments/qa/namespace.yaml"),
    ),
    (
        "policies/access.yaml",
        include_str!("../../policies/access.yaml"),
    ),
    ("policies/dev.yaml", include_str!("../../policies/dev.yaml")),
    (
        "policies/groups.yaml",
        include_str!("../../policies/groups.yaml"),
    ),
    (
        "policies/prod.yaml",
        include_str!("../../policies/prod.yaml"),
    ),
    ("policies/qa.yaml", include_str!("../../policies/qa.yaml")),
];

const REQUESTER: &str = "carol";
const APPROVERS: [&str; 2] = ["alice", "bob"];

/// A clock the demo moves forward by hand.
#[derive(Clone)]
struct SimClock(Arc<Mutex<DateTime<Utc>>>);

impl SimClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
}

struct Demo {
    dir: std::path::PathBuf,
    clock: SimClock,
    options: EngineOptions,
}

pub fn run(ctx: &Context, args: DemoArgs) -> Result<(), CliError> {
    let temp = tempfile::Builder::new()
        .prefix("ferry-demo-")
        .tempdir()
        .map_err(|e| CliError::failed(format!("failed to create a temporary directory: {e}")))?;
    let dir = temp.path().to_path_buf();
    seed_repository(&dir)?;
    let mut options = ctx.engine_options();
    let start = options
        .clock
        .as_ref()
        .map_or_else(Utc::now, |clock| clock());
    let clock = SimClock(Arc::new(Mutex::new(start)));
    let tick = clock.clone();
    options.clock = Some(Arc::new(move || tick.now()));
    options.progress = None;
    let demo = Demo {
        dir,
        clock,
        options,
    };
    println!("ferry demo: one release of acme/helloworld through dev → qa → prod");
    println!(
        "(a temporary copy of the example repository; the clock is simulated, the rest is real)\n"
    );
    demo.story()?;
    if args.keep {
        let kept = temp.keep();
        println!(
            "\nthe repository is kept at {}: try `ferry --repo {0} status`",
            kept.display()
        );
    }
    Ok(())
}

fn seed_repository(dir: &Path) -> Result<(), CliError> {
    for (path, content) in EXAMPLE {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                CliError::failed(format!("failed to create {}: {e}", parent.display()))
            })?;
        }
        std::fs::write(&full, content)
            .map_err(|e| CliError::failed(format!("failed to write {}: {e}", full.display())))?;
    }
    git(dir, &["init", "-q", "-b", "main"])?;
    git(dir, &["add", "-A"])?;
    git(
        dir,
        &[
            "-c",
            "user.name=ferry demo",
            "-c",
            "user.email=demo@ferry.invalid",
            "commit",
            "-q",
            "-m",
            "Add the hello-world pipeline",
        ],
    )?;
    git(dir, &["config", "user.name", "ferry demo"])?;
    git(dir, &["config", "user.email", "demo@ferry.invalid"])
}

fn git(dir: &Path, args: &[&str]) -> Result<(), CliError> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| CliError::failed(format!("failed to run git (is it installed?): {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(CliError::failed(format!(
        "git {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

impl Demo {
    fn engine(&self, user: &str) -> Result<Engine, CliError> {
        Engine::open(
            &self.dir,
            &self.dir.join(".ferry"),
            Actor::local(user),
            self.options.clone(),
        )
        .map_err(engine_error)
    }

    fn advance(&self, by: Duration, why: &str) {
        self.clock.set(self.clock.now() + by);
        println!(
            "\n⏩ {why} (simulated: {})\n",
            self.clock.now().format("%a %Y-%m-%d %H:%M UTC")
        );
    }

    fn story(&self) -> Result<(), CliError> {
        let carol = self.engine(REQUESTER)?;
        println!(
            "$ ferry release create --image acme/helloworld=1.4.2 --message \"first release\"   # as {REQUESTER}"
        );
        let (revision, _) = carol
            .create_release(
                &["acme/helloworld=1.4.2".into()],
                None,
                Some("first release"),
            )
            .map_err(engine_error)?;
        println!("{}\n", revision.id);
        let config = carol.config_for(&revision).map_err(engine_error)?;
        println!("$ ferry reconcile   # dev and qa are auto stages");
        self.reconcile(&carol, &config)?;
        self.advance(Duration::minutes(10), "10 minutes later: qa's soak time");
        println!("$ ferry reconcile");
        self.reconcile(&carol, &config)?;
        self.advance(Duration::minutes(30), "30 minutes later: prod's soak time");
        self.promote_prod(&carol, &revision.id)?;
        // Approvers act while prod's window is open: approvals expire (24h in the example).
        self.wait_for_window(&config)?;
        for approver in APPROVERS {
            println!("\n$ ferry approve prod --comment \"looks good\"   # as {approver}");
            let outcome = self
                .engine(approver)?
                .review("prod", None, Verdict::Approve, Some("looks good"), false)
                .map_err(engine_error)?;
            println!("{approver} approved {} in prod", outcome.revision);
            outcome
                .blockers
                .iter()
                .for_each(|b| println!("  still waiting: {b}"));
        }
        println!();
        self.promote_prod(&carol, &revision.id)?;
        println!("\n$ ferry status");
        let status = carol.status(&config).map_err(engine_error)?;
        print!("{}", super::status::render(&status));
        println!("\n$ ferry history");
        print!(
            "{}",
            super::history::render(&carol.history(None, 20).map_err(engine_error)?)
        );
        println!("\n$ ferry audit verify");
        let report = crate::promotion::verify_audit(&carol.store().map_err(engine_error)?)
            .map_err(engine_error)?;
        println!(
            "ok: {} entries, chain intact: {}",
            report.entries,
            report.broken.is_none()
        );
        println!(
            "\nEach stage's manifests are one commit per promotion on its branch (env/dev, env/qa, env/prod):"
        );
        println!(
            "the branches Argo CD or Flux would watch. `ferry demo --keep` keeps the repository to look at."
        );
        Ok(())
    }

    fn reconcile(&self, engine: &Engine, config: &crate::pipeline::Config) -> Result<(), CliError> {
        let report = engine.reconcile(config).map_err(engine_error)?;
        let mut out = Vec::new();
        super::reconcile::write_report(&mut out, &report)
            .map_err(|e| CliError::failed(e.to_string()))?;
        print!("{}", String::from_utf8_lossy(&out));
        Ok(())
    }

    fn promote_prod(&self, engine: &Engine, revision: &str) -> Result<(), CliError> {
        println!("$ ferry promote {revision} --to prod --wait   # as {REQUESTER}");
        let mut request = PromoteRequest::new(revision, "prod");
        request.wait = true;
        let outcome = engine.promote(&request).map_err(engine_error)?;
        let p = outcome.promotion();
        if p.state == PromotionState::Blocked {
            println!("{}: blocked (exit 3):", p.id);
            p.blockers.iter().for_each(|b| println!("  - {b}"));
            return Ok(());
        }
        let mut out = Vec::new();
        super::promote::write_promotion(&mut out, &outcome)
            .map_err(|e| CliError::failed(e.to_string()))?;
        print!("{}", String::from_utf8_lossy(&out));
        match p.state {
            PromotionState::Failed | PromotionState::Aborted => Err(CliError::failed(format!(
                "the promotion of {revision} to prod did not succeed"
            ))),
            _ => Ok(()),
        }
    }

    fn wait_for_window(&self, config: &crate::pipeline::Config) -> Result<(), CliError> {
        let Some(policy) = config.policies.get("prod") else {
            return Ok(());
        };
        for _ in 0..10 {
            let next = match window_at(policy, self.clock.now()) {
                WindowState::Open => return Ok(()),
                WindowState::Closed { opens_at } => {
                    opens_at.map(|t| (t.with_timezone(&Utc), "prod's window opens".to_string()))
                }
                WindowState::Denied {
                    reason, opens_at, ..
                } => opens_at.map(|t| {
                    (
                        t.with_timezone(&Utc),
                        format!("the {reason} ends and the window opens"),
                    )
                }),
            };
            let Some((at, why)) = next else {
                return Err(CliError::failed("prod's window never opens"));
            };
            self.clock.set(at);
            println!(
                "\n⏩ later: {why} (simulated: {})",
                at.with_timezone(&policy.timezone)
                    .format("%a %Y-%m-%d %H:%M %Z")
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::EXAMPLE;

    /// Every file of the example is embedded, so the demo shows the example as it is.
    #[test]
    fn every_example_file_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["environments", "policies"] {
            collect(&root.join(dir), root, &mut files);
        }
        files.sort();
        let mut embedded: Vec<String> = EXAMPLE.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(files, embedded);
    }

    fn collect(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                collect(&path, root, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .expect("under root")
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
}
