//! The pipeline graph as inline SVG: boxes for stages (or collapsed groups of stages) placed
//! by [`layout`](super::layout), upstream → downstream left to right, edges into a
//! `requires: any` stage dashed and labelled. Every box is a link, so the graph is usable
//! with the keyboard.

use maud::{Markup, html};

use super::layout::{self, Edge};

const NODE_W: usize = 230;
const NODE_H: usize = 62;
const GAP_X: usize = 70;
const GAP_Y: usize = 18;
const PAD: usize = 12;
/// The longest blocker text shown inside a box (the whole text is in its tooltip).
const WHY_CHARS: usize = 34;

/// One box of the graph.
pub struct Node {
    /// The stage name, or the group prefix.
    pub label: String,
    pub href: String,
    /// `data-stage` (a stage) or `data-group` (a collapsed group).
    pub stage: Option<String>,
    pub group: String,
    /// The second line: revision, verified, state.
    pub meta: String,
    /// The third line: what blocks it, in words.
    pub why: Option<String>,
    /// The tooltip: everything about it.
    pub title: String,
    /// The CSS class of its state.
    pub class: &'static str,
}

/// An edge of the graph; `any` when it enters a `requires: any` stage.
pub struct Link {
    pub from: usize,
    pub to: usize,
    pub any: bool,
}

/// Draws `nodes` in the given layers (one per node, need not be dense) with `links`.
pub fn draw(nodes: &[Node], layers: &[usize], links: &[Link]) -> Markup {
    let edges: Vec<Edge> = links
        .iter()
        .map(|l| Edge {
            from: l.from,
            to: l.to,
        })
        .collect();
    let placement = layout::place(dense(layers), &edges);
    let tops = tops(&placement, links);
    let columns = placement.layers.len();
    let width = PAD * 2 + columns * (NODE_W + GAP_X) - GAP_X.min(columns * GAP_X);
    let height = PAD * 2 + tops.iter().max().map_or(0, |top| top + NODE_H);
    let position = |v: usize| (PAD + placement.layer[v] * (NODE_W + GAP_X), PAD + tops[v]);
    html! {
        svg.graph #graph xmlns="http://www.w3.org/2000/svg" role="group" aria-label="Pipeline graph"
            width=(width) height=(height) viewBox=(format!("0 0 {width} {height}")) {
            defs {
                marker #arrow viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" {}
                }
            }
            g.edges {
                @for link in links {
                    @let (x1, y1) = position(link.from);
                    @let (x2, y2) = position(link.to);
                    @let (sx, sy, ex, ey) = (x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2);
                    @let mid = (sx + ex) / 2;
                    path.edge.any[link.any] data-from=(nodes[link.from].label) data-to=(nodes[link.to].label)
                        d=(format!("M {sx} {sy} C {mid} {sy}, {mid} {ey}, {ex} {ey}")) marker-end="url(#arrow)" {}
                    @if link.any {
                        text.any-label x=(mid + 4) y=((sy + ey) / 2 - 4) { "any" }
                    }
                }
            }
            g.nodes {
                @for (v, node) in nodes.iter().enumerate() {
                    @let (x, y) = position(v);
                    a class=(format!("node {}", node.class)) href=(node.href)
                        data-stage=[node.stage.as_deref()] data-group=(node.group) data-label=(node.label)
                        data-kind=(if node.stage.is_some() { "stage" } else { "group" }) {
                        title { (node.title) }
                        rect.box x=(x) y=(y) width=(NODE_W) height=(NODE_H) rx="6" {}
                        text.name x=(x + 10) y=(y + 19) { (node.label) }
                        text.meta x=(x + 10) y=(y + 37) { (node.meta) }
                        @if let Some(why) = &node.why {
                            text.why x=(x + 10) y=(y + 54) { (shorten(why)) }
                        }
                    }
                }
            }
        }
    }
}

/// The top of each box: column by column, as close to the mean height of its upstream boxes
/// as the boxes above it in its column allow (so a fan-out opens beside its source).
fn tops(placement: &layout::Placement, links: &[Link]) -> Vec<usize> {
    let step = NODE_H + GAP_Y;
    let mut top = vec![0usize; placement.layer.len()];
    let mut upstream: Vec<Vec<usize>> = vec![Vec::new(); placement.layer.len()];
    for link in links {
        if placement.layer[link.from] < placement.layer[link.to] {
            upstream[link.to].push(link.from);
        }
    }
    for column in &placement.layers {
        let mut next = 0;
        for &v in column {
            let wanted = if upstream[v].is_empty() {
                0
            } else {
                upstream[v].iter().map(|&u| top[u]).sum::<usize>() / upstream[v].len()
            };
            top[v] = wanted.max(next);
            next = top[v] + step;
        }
    }
    top
}

/// Renumbers layers 0, 1, 2, … keeping their order (collapsed groups can leave gaps).
fn dense(layers: &[usize]) -> Vec<usize> {
    let mut used: Vec<usize> = layers.to_vec();
    used.sort_unstable();
    used.dedup();
    layers
        .iter()
        .map(|l| used.binary_search(l).unwrap_or(0))
        .collect()
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= WHY_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(WHY_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(label: &str) -> Node {
        Node {
            label: label.to_string(),
            href: format!("/stages/{label}"),
            stage: Some(label.to_string()),
            group: label.to_string(),
            meta: "r-1 · verified".to_string(),
            why: Some("needs 1 more approval from group:release-managers".to_string()),
            title: label.to_string(),
            class: "st-ok",
        }
    }

    #[test]
    fn fan_in_edges_of_an_any_stage_are_marked() {
        let nodes = vec![node("dev"), node("qa-a"), node("qa-b"), node("prod")];
        let links = vec![
            Link {
                from: 0,
                to: 1,
                any: false,
            },
            Link {
                from: 0,
                to: 2,
                any: false,
            },
            Link {
                from: 1,
                to: 3,
                any: true,
            },
            Link {
                from: 2,
                to: 3,
                any: true,
            },
        ];
        let svg = draw(&nodes, &[0, 1, 1, 2], &links).into_string();
        assert_eq!(svg.matches("class=\"edge any\"").count(), 2);
        assert_eq!(svg.matches("class=\"edge\"").count(), 2);
        assert_eq!(svg.matches(">any</text>").count(), 2);
        assert_eq!(svg.matches("<a class=\"node st-ok\"").count(), 4);
        assert!(svg.contains("needs 1 more approval from group:…"), "{svg}");
        assert!(svg.contains("<title>dev</title>"));
        // Three columns, two rows.
        assert!(svg.contains("viewBox=\"0 0 854 166\""), "{svg}");
        // dev and qa-a on top, qa-b under qa-a, prod between them.
        assert!(
            svg.contains("<rect class=\"box\" x=\"12\" y=\"12\""),
            "{svg}"
        );
        assert!(
            svg.contains("<rect class=\"box\" x=\"312\" y=\"92\""),
            "{svg}"
        );
        assert!(
            svg.contains("<rect class=\"box\" x=\"612\" y=\"52\""),
            "{svg}"
        );
    }

    #[test]
    fn layers_are_renumbered_densely() {
        assert_eq!(dense(&[0, 4, 2, 4]), vec![0, 2, 1, 2]);
        assert_eq!(shorten("short"), "short");
    }
}
