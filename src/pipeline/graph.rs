//! The pipeline drawn as text, Graphviz dot or Mermaid.

use std::fmt::Write as _;

use super::stage::{Pipeline, Requires, Stage};

/// How to draw the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
}

impl Pipeline {
    /// The pipeline drawn in `format`.
    pub fn draw(&self, format: GraphFormat) -> String {
        match format {
            GraphFormat::Text => self.draw_text(),
            GraphFormat::Dot => self.draw_dot(),
            GraphFormat::Mermaid => self.draw_mermaid(),
        }
    }

    fn upstream_label(stage: &Stage) -> String {
        match (stage.upstream.len(), stage.requires) {
            (0, _) => "-".to_string(),
            (1, _) => stage.upstream[0].clone(),
            (_, Requires::All) => format!("all of {}", stage.upstream.join(", ")),
            (_, Requires::Any) => format!("any of {}", stage.upstream.join(", ")),
        }
    }

    fn draw_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "pipeline {} ({} stages)",
            self.name,
            self.stages().len()
        );
        for path in self.paths() {
            let _ = writeln!(out, "  {}", path.join(" → "));
        }
        out.push('\n');
        let header = [
            "STAGE",
            "UPSTREAM",
            "DOWNSTREAM",
            "AUTO",
            "POLICY",
            "OVERLAY",
        ];
        let rows: Vec<[String; 6]> = self
            .topological()
            .map(|s| {
                let down: Vec<String> = self
                    .downstream(&s.name)
                    .iter()
                    .map(|d| d.name.clone())
                    .collect();
                [
                    s.name.clone(),
                    Self::upstream_label(s),
                    if down.is_empty() {
                        "-".to_string()
                    } else {
                        down.join(", ")
                    },
                    if s.auto { "yes" } else { "no" }.to_string(),
                    s.policy.clone().unwrap_or_else(|| "-".to_string()),
                    s.overlay.clone(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut line = |cells: &[&str]| {
            let parts: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", parts.join("  ").trim_end());
        };
        line(&header);
        for row in &rows {
            line(&row.each_ref().map(String::as_str));
        }
        out
    }

    /// Every path from a stage without upstream to a stage without downstream.
    fn paths(&self) -> Vec<Vec<String>> {
        let mut paths = Vec::new();
        let roots = self.stages().iter().filter(|s| s.upstream.is_empty());
        for root in roots {
            self.walk(root, &mut vec![root.name.clone()], &mut paths);
            if paths.len() > 50 {
                break;
            }
        }
        paths
    }

    fn walk(&self, stage: &Stage, path: &mut Vec<String>, paths: &mut Vec<Vec<String>>) {
        let down = self.downstream(&stage.name);
        if down.is_empty() {
            paths.push(path.clone());
            return;
        }
        for next in down {
            path.push(next.name.clone());
            self.walk(next, path, paths);
            path.pop();
        }
    }

    fn draw_dot(&self) -> String {
        let mut out = format!(
            "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n",
            escape(&self.name)
        );
        for s in self.topological() {
            let mut label = s.name.clone();
            if s.auto {
                label.push_str("\\nauto");
            }
            if let Some(policy) = &s.policy {
                let _ = write!(label, "\\npolicy: {policy}");
            }
            let _ = writeln!(
                out,
                "  \"{}\" [label=\"{}\"];",
                escape(&s.name),
                escape(&label).replace("\\\\n", "\\n")
            );
        }
        for s in self.topological() {
            for up in &s.upstream {
                let style = if s.upstream.len() > 1 && s.requires == Requires::Any {
                    " [style=dashed]"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "  \"{}\" -> \"{}\"{style};",
                    escape(up),
                    escape(&s.name)
                );
            }
        }
        out.push_str("}\n");
        out
    }

    fn draw_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for s in self.topological() {
            let mut label = s.name.clone();
            if s.auto {
                label.push_str(" (auto)");
            }
            let _ = writeln!(out, "  {}[\"{}\"]", mermaid_id(&s.name), label);
        }
        for s in self.topological() {
            for up in &s.upstream {
                let arrow = if s.upstream.len() > 1 && s.requires == Requires::Any {
                    "-.->"
                } else {
                    "-->"
                };
                let _ = writeln!(out, "  {} {arrow} {}", mermaid_id(up), mermaid_id(&s.name));
            }
        }
        out
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn mermaid_id(name: &str) -> String {
    format!("s_{}", name.replace('-', "_"))
}
