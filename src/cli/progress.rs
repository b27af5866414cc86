//! Gate progress on stderr while a promotion is verified (`promote --wait`): on a terminal,
//! one live line per gate — a spinner, the gate, the time so far and its last observation —
//! redrawn in place; otherwise plain lines, one when a gate's observation changes and one when
//! it finishes, so logs stay readable.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::gates::{
    GateResult, GateStatus, Observation, ObservationState, ProgressSink, kind_name,
};
use crate::pipeline::GateSpec;

/// How often live lines are redrawn (the spinner turns).
const TICK: Duration = Duration::from_millis(120);
/// Live lines are cut to this many characters so they never wrap.
const WIDTH: usize = 100;
const SPINNER: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Draws gate progress; hand it to `gates::run_gates` and call [`GateProgress::finish`]
/// when they return.
pub struct GateProgress {
    shared: Arc<Shared>,
    ticker: Option<JoinHandle<()>>,
}

struct Shared {
    board: Mutex<Board>,
    live: bool,
    stop: AtomicBool,
}

impl GateProgress {
    /// A reporter for the gates of `stage`: live lines when stderr is a terminal.
    pub fn new(stage: &str, gates: &[GateSpec]) -> GateProgress {
        GateProgress::for_rows(stage, gate_rows(gates))
    }

    /// A reporter for gates known by name and type (`http`, `command`, …) only: those of a
    /// promotion running in a server.
    pub fn for_rows(stage: &str, gates: Vec<(String, String)>) -> GateProgress {
        let live = std::io::stderr().is_terminal();
        GateProgress::with_output(stage, gates, live, Box::new(std::io::stderr()))
    }

    fn with_output(
        stage: &str,
        gates: Vec<(String, String)>,
        live: bool,
        out: Box<dyn Write + Send>,
    ) -> GateProgress {
        let board = Board::new(stage, gates, out);
        let shared = Arc::new(Shared {
            board: Mutex::new(board),
            live,
            stop: AtomicBool::new(false),
        });
        let ticker = live.then(|| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                while !shared.stop.load(Ordering::Relaxed) {
                    if let Ok(mut board) = shared.board.lock() {
                        board.draw_live();
                    }
                    std::thread::sleep(TICK);
                }
            })
        });
        GateProgress { shared, ticker }
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
            if let Ok(mut board) = self.shared.board.lock() {
                board.draw_live();
            }
        }
    }
}

impl Drop for GateProgress {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ProgressSink for GateProgress {
    fn observed(&self, gate: &str, observation: &Observation) {
        let Ok(mut board) = self.shared.board.lock() else {
            return;
        };
        let changed = board.observe(gate, observation);
        if !self.shared.live && changed {
            let line = board.plain_observation(gate, observation);
            board.write_line(&line);
        }
    }

    fn finished(&self, result: &GateResult) {
        let Ok(mut board) = self.shared.board.lock() else {
            return;
        };
        board.finish(result);
        if !self.shared.live {
            let line = board.plain_result(result);
            board.write_line(&line);
        }
    }
}

/// The gates and what each last showed.
struct Board {
    stage: String,
    rows: Vec<Row>,
    started: Instant,
    frame: usize,
    /// How many live lines are on screen (to move back over them).
    drawn: usize,
    out: Box<dyn Write + Send>,
}

struct Row {
    name: String,
    kind: String,
    last: Option<Observation>,
    result: Option<GateResult>,
}

impl Board {
    fn new(stage: &str, gates: Vec<(String, String)>, out: Box<dyn Write + Send>) -> Board {
        let rows = gates
            .into_iter()
            .map(|(name, kind)| Row {
                name,
                kind,
                last: None,
                result: None,
            })
            .collect();
        Board {
            stage: stage.to_string(),
            rows,
            started: Instant::now(),
            frame: 0,
            drawn: 0,
            out,
        }
    }

    /// Records an observation; whether it differs from the gate's previous one.
    fn observe(&mut self, gate: &str, observation: &Observation) -> bool {
        let Some(row) = self.rows.iter_mut().find(|r| r.name == gate) else {
            return false;
        };
        let changed = row
            .last
            .as_ref()
            .is_none_or(|l| l.state != observation.state || l.detail != observation.detail);
        row.last = Some(observation.clone());
        changed
    }

    fn finish(&mut self, result: &GateResult) {
        if let Some(row) = self.rows.iter_mut().find(|r| r.name == result.name) {
            row.result = Some(result.clone());
        }
    }

    fn plain_observation(&self, gate: &str, observation: &Observation) -> String {
        let state = state_word(observation.state);
        format!(
            "{}: gate {gate}: {state} (observation {}): {}",
            self.stage, observation.attempt, observation.detail
        )
    }

    fn plain_result(&self, result: &GateResult) -> String {
        let took = elapsed(result);
        format!(
            "{}: gate {} {} after {took}: {}",
            self.stage,
            result.name,
            result.status.as_str(),
            result.reason
        )
    }

    /// One line per gate, spinner at `frame`.
    fn live_lines(&self, frame: usize) -> Vec<String> {
        let width = self
            .rows
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0);
        let seconds = self.started.elapsed().as_secs();
        let spin = SPINNER[frame % SPINNER.len()];
        self.rows
            .iter()
            .map(|row| cut(&row.live_line(width, seconds, spin), WIDTH))
            .collect()
    }

    fn draw_live(&mut self) {
        self.frame += 1;
        let mut text = String::new();
        if self.drawn > 0 {
            text.push_str(&format!("\x1b[{}F", self.drawn));
        }
        let lines = self.live_lines(self.frame);
        for line in &lines {
            text.push_str("\x1b[2K");
            text.push_str(line);
            text.push('\n');
        }
        self.drawn = lines.len();
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }

    fn write_line(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
    }
}

impl Row {
    /// The gate's result, or a spinner and its last observation, the name padded to `width`.
    fn live_line(&self, width: usize, seconds: u64, spin: char) -> String {
        let name = &self.name;
        if let Some(result) = &self.result {
            let mark = match result.status {
                GateStatus::Passed => '✓',
                GateStatus::Failed => '✗',
                GateStatus::Errored => '!',
                GateStatus::Cancelled => '-',
            };
            let status = result.status.as_str();
            return format!(
                "{mark} {name:width$}  {status} after {}: {}",
                elapsed(result),
                result.reason
            );
        }
        let seen = match &self.last {
            Some(o) => format!("{}: {}", state_word(o.state), o.detail),
            None => "starting".to_string(),
        };
        format!("{spin} {name:width$}  {} {seconds}s  {seen}", self.kind)
    }
}

/// The name and type of each gate.
fn gate_rows(gates: &[GateSpec]) -> Vec<(String, String)> {
    gates
        .iter()
        .map(|g| (g.name.clone(), kind_name(&g.kind).to_string()))
        .collect()
}

fn state_word(state: ObservationState) -> &'static str {
    match state {
        ObservationState::Pending => "pending",
        ObservationState::Passing => "passing",
        ObservationState::Failing => "failing",
        ObservationState::Error => "error",
    }
}

/// How long a gate ran, in whole seconds (`0s` for instant gates).
fn elapsed(result: &GateResult) -> String {
    let seconds = (result.finished_at - result.started_at)
        .num_seconds()
        .max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        _ => format!("{}m{}s", seconds / 60, seconds % 60),
    }
}

/// `text` cut to `width` characters, ending in `…` when cut.
fn cut(text: &str, width: usize) -> String {
    match text.char_indices().nth(width.saturating_sub(1)) {
        Some((end, _)) if text.chars().count() > width => format!("{}…", &text[..end]),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::pipeline::GateKind;

    #[derive(Clone, Default)]
    struct Screen(Arc<Mutex<Vec<u8>>>);

    impl Write for Screen {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Screen {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("not poisoned").clone()).expect("utf-8")
        }
    }

    fn gates() -> Vec<GateSpec> {
        let spec = |name: &str, kind| GateSpec {
            name: name.into(),
            timeout: Duration::from_secs(60),
            interval: Duration::from_secs(1),
            kind,
        };
        vec![
            spec("rollout", GateKind::KubernetesRollout),
            spec(
                "e2e",
                GateKind::Command {
                    run: vec!["true".into()],
                },
            ),
        ]
    }

    fn observation(attempt: u32, state: ObservationState, detail: &str) -> Observation {
        Observation {
            attempt,
            state,
            detail: detail.into(),
        }
    }

    fn result(name: &str, status: GateStatus, reason: &str) -> GateResult {
        let now = Utc::now();
        GateResult {
            name: name.into(),
            kind: "command".into(),
            status,
            reason: reason.into(),
            observations: 1,
            started_at: now,
            finished_at: now,
        }
    }

    #[test]
    fn plain_output_has_a_line_per_change_and_per_result() {
        let screen = Screen::default();
        let progress =
            GateProgress::with_output("prod", gate_rows(&gates()), false, Box::new(screen.clone()));
        progress.observed(
            "rollout",
            &observation(1, ObservationState::Pending, "0 of 1 workloads rolled out"),
        );
        progress.observed(
            "rollout",
            &observation(2, ObservationState::Pending, "0 of 1 workloads rolled out"),
        );
        progress.observed(
            "rollout",
            &observation(3, ObservationState::Passing, "1 of 1 workloads rolled out"),
        );
        progress.finished(&result(
            "rollout",
            GateStatus::Passed,
            "1 of 1 workloads rolled out",
        ));
        drop(progress);
        let expected = "prod: gate rollout: pending (observation 1): 0 of 1 workloads rolled out
prod: gate rollout: passing (observation 3): 1 of 1 workloads rolled out
prod: gate rollout passed after 0s: 1 of 1 workloads rolled out
";
        assert_eq!(screen.text(), expected);
    }

    #[test]
    fn live_lines_show_each_gate_and_its_last_observation() {
        let mut board = Board::new("prod", gate_rows(&gates()), Box::new(Screen::default()));
        board.observe(
            "rollout",
            &observation(
                1,
                ObservationState::Pending,
                "Deployment shop/web: 1 of 3 new replicas updated",
            ),
        );
        board.finish(&result("e2e", GateStatus::Failed, "./e2e.sh exited with 1"));
        let lines = board.live_lines(0);
        assert_eq!(
            lines[0],
            "⠋ rollout  kubernetes-rollout 0s  pending: Deployment shop/web: 1 of 3 new replicas updated"
        );
        assert_eq!(
            lines[1],
            "✗ e2e      failed after 0s: ./e2e.sh exited with 1"
        );
    }

    #[test]
    fn live_drawing_moves_back_over_its_lines() {
        let screen = Screen::default();
        let mut board = Board::new("prod", gate_rows(&gates()), Box::new(screen.clone()));
        board.draw_live();
        board.draw_live();
        let text = screen.text();
        assert_eq!(
            text.matches("\x1b[2F").count(),
            1,
            "the second drawing starts two lines up"
        );
        assert_eq!(text.matches('\n').count(), 4);
    }

    #[test]
    fn long_lines_are_cut() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abcd", 4), "abcd");
    }
}
