//! The pipeline page: the graph of every stage (revision, verified or not, state, what
//! blocks it) and the same as a table, with a name filter and groups of stages that share a
//! name prefix collapsed when the pipeline is large.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::Viewer;
use super::graph::{self, Link, Node};
use super::layout::{Edge, longest_path_layers};
use super::page::{self, Section, state_class};
use crate::pipeline::{Config, Requires};
use crate::promotion::{Pauses, StageStatus};
use crate::server::app::AppState;

/// Above this many stages, groups of stages are drawn collapsed unless asked otherwise.
pub const COLLAPSE_ABOVE: usize = 60;

/// What the page shows.
#[derive(Debug, Default, Deserialize)]
pub struct PipelineQuery {
    /// Only stages whose name contains this.
    #[serde(default)]
    q: Option<String>,
    /// `expanded` or `collapsed`: how groups are drawn (default: by size).
    #[serde(default)]
    groups: Option<String>,
    /// The one group drawn expanded among collapsed ones.
    #[serde(default)]
    expand: Option<String>,
}

/// The group of a stage: its name up to the first `-` (`app17-prod` → `app17`).
pub fn group_of(name: &str) -> &str {
    name.split('-').next().unwrap_or(name)
}

/// One stage as the page shows it.
struct Row {
    name: String,
    group: String,
    revision: Option<String>,
    verified: bool,
    state: &'static str,
    paused: bool,
    blockers: Vec<String>,
    upstream: Vec<String>,
    any: bool,
}

impl Row {
    fn meta(&self) -> String {
        let revision = self.revision.as_deref().unwrap_or("no revision");
        let verified = if self.verified {
            "✓ verified"
        } else {
            "not verified"
        };
        format!("{revision} · {verified}")
    }

    /// The third line of its box: what blocks it, else its state.
    fn why(&self) -> String {
        if let Some(first) = self.blockers.first() {
            return first.clone();
        }
        if self.paused {
            return format!("{} · paused", self.state);
        }
        self.state.to_string()
    }
}

fn rows(config: &Config, statuses: Vec<StageStatus>, pauses: &Pauses) -> Vec<Row> {
    let mut by_name: HashMap<String, StageStatus> =
        statuses.into_iter().map(|s| (s.name.clone(), s)).collect();
    config
        .pipeline
        .topological()
        .filter_map(|stage| {
            let status = by_name.remove(&stage.name)?;
            Some(Row {
                group: group_of(&stage.name).to_string(),
                paused: pauses.all.is_some() || pauses.stages.contains_key(&stage.name),
                revision: status.revision,
                verified: status.verified,
                state: status.state.as_str(),
                blockers: status.blockers.iter().map(ToString::to_string).collect(),
                upstream: stage.upstream.clone(),
                any: stage.requires == Requires::Any && stage.upstream.len() > 1,
                name: stage.name.clone(),
            })
        })
        .collect()
}

/// `GET /`: the pipeline.
pub async fn page(
    State(state): State<Arc<AppState>>,
    mut viewer: Viewer,
    Query(query): Query<PipelineQuery>,
) -> Response {
    let read = super::super::api::read(&state, viewer.caller.clone(), |engine, config| {
        let statuses = engine.status(config)?;
        let pauses = engine.pauses()?;
        Ok((
            rows(config, statuses, &pauses),
            pauses.all.map(|p| p.reason),
        ))
    })
    .await;
    let (rows, paused_all) = match read {
        Ok(read) => read,
        Err(err) => return viewer.error(&err),
    };
    let body = body(&rows, paused_all.as_deref(), &query);
    let frame = viewer.frame("Pipeline", Section::Pipeline);
    page::respond(StatusCode::OK, page::render(frame, body))
}

/// How the graph is drawn for a query.
struct View<'q> {
    filter: Option<String>,
    collapse: bool,
    expand: Option<&'q str>,
}

impl View<'_> {
    fn of(query: &PipelineQuery, stages: usize) -> View<'_> {
        let filter = query
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_lowercase);
        let collapse = filter.is_none()
            && match query.groups.as_deref() {
                Some("expanded") => false,
                Some("collapsed") => true,
                _ => stages > COLLAPSE_ABOVE || query.expand.is_some(),
            };
        View {
            filter,
            collapse,
            expand: query.expand.as_deref(),
        }
    }

    fn shows(&self, row: &Row) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| row.name.contains(f.as_str()))
    }
}

fn body(rows: &[Row], paused_all: Option<&str>, query: &PipelineQuery) -> Markup {
    let view = View::of(query, rows.len());
    let sizes = group_sizes(rows);
    let shown = rows.iter().filter(|r| view.shows(r)).count();
    html! {
        h1 { "Pipeline" }
        form.filter role="search" method="get" action="/" {
            label for="q" { "Filter stages by name" }
            input #q type="search" name="q" value=[view.filter.as_deref()] autocomplete="off"
                placeholder="e.g. prod";
            button type="submit" { "Filter" }
            @if view.collapse {
                a href="/?groups=expanded" { "Expand all groups" }
            } @else if view.filter.is_none() && sizes.values().any(|n| *n > 1) {
                a href="/?groups=collapsed" { "Collapse groups" }
            }
        }
        div #pipeline data-live="pipeline" {
            @if let Some(reason) = paused_all {
                p.flash.error role="status" { "The whole pipeline is paused: " (reason) }
            }
            p.summary #summary {
                (shown) " of " (rows.len()) " stages"
                @if view.collapse { ", groups collapsed" }
                " · " (rows.iter().filter(|r| r.verified).count()) " verified · "
                (rows.iter().filter(|r| r.state == "blocked").count()) " blocked"
            }
            div.graph-wrap { (draw(rows, &view, &sizes)) }
            p.legend {
                "Solid arrows: the stage needs every upstream stage. Dashed arrows marked "
                em { "any" } ": one upstream stage is enough."
            }
            (table(rows, &view, &sizes))
        }
    }
}

fn group_sizes(rows: &[Row]) -> BTreeMap<&str, usize> {
    let mut sizes = BTreeMap::new();
    for row in rows {
        *sizes.entry(row.group.as_str()).or_insert(0) += 1;
    }
    sizes
}

/// The graph: one box per shown stage, or per collapsed group.
fn draw(rows: &[Row], view: &View<'_>, sizes: &BTreeMap<&str, usize>) -> Markup {
    let index: HashMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.as_str(), i))
        .collect();
    let edges: Vec<Edge> = rows
        .iter()
        .enumerate()
        .flat_map(|(to, r)| {
            let index = &index;
            r.upstream
                .iter()
                .filter_map(move |u| index.get(u.as_str()).map(|&from| Edge { from, to }))
        })
        .collect();
    let stage_layer = longest_path_layers(rows.len(), &edges);
    let collapsed = |r: &Row| {
        view.collapse && sizes[r.group.as_str()] > 1 && view.expand != Some(r.group.as_str())
    };
    let mut node_of: Vec<Option<usize>> = vec![None; rows.len()];
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut group_node: HashMap<&str, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate().filter(|(_, r)| view.shows(r)) {
        let node = if collapsed(row) {
            *group_node.entry(row.group.as_str()).or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            })
        } else {
            members.push(Vec::new());
            members.len() - 1
        };
        members[node].push(i);
        node_of[i] = Some(node);
    }
    let nodes: Vec<Node> = members
        .iter()
        .map(|m| node(rows, m, collapsed(&rows[m[0]])))
        .collect();
    let layers: Vec<usize> = members
        .iter()
        .map(|m| m.iter().map(|&i| stage_layer[i]).min().unwrap_or(0))
        .collect();
    let mut links: Vec<Link> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for e in &edges {
        let (Some(from), Some(to)) = (node_of[e.from], node_of[e.to]) else {
            continue;
        };
        if from != to && seen.insert((from, to)) {
            links.push(Link {
                from,
                to,
                any: rows[e.to].any && members[to].len() == 1,
            });
        }
    }
    graph::draw(&nodes, &layers, &links)
}

fn node(rows: &[Row], members: &[usize], collapsed: bool) -> Node {
    let first = &rows[members[0]];
    if !collapsed {
        let mut title = format!("{}: {} · {}", first.name, first.meta(), first.state);
        for blocker in &first.blockers {
            title.push('\n');
            title.push_str(blocker);
        }
        return Node {
            label: first.name.clone(),
            href: format!("/stages/{}", first.name),
            stage: Some(first.name.clone()),
            group: first.group.clone(),
            meta: first.meta(),
            why: Some(first.why()),
            title,
            class: stage_class(first),
        };
    }
    let of = |pred: &dyn Fn(&Row) -> bool| members.iter().filter(|&&i| pred(&rows[i])).count();
    let verified = of(&|r| r.verified);
    let blocked = of(&|r| r.state == "blocked");
    let failed = of(&|r| r.state == "failed");
    let busy = of(&|r| state_class(r.state) == "st-busy");
    let class = if failed > 0 {
        "st-bad"
    } else if blocked > 0 {
        "st-blocked"
    } else if busy > 0 {
        "st-busy"
    } else if verified == members.len() {
        "st-ok"
    } else {
        "st-idle"
    };
    let meta = format!("{verified}/{} verified · {blocked} blocked", members.len());
    let names: Vec<&str> = members.iter().map(|&i| rows[i].name.as_str()).collect();
    Node {
        label: format!("{}-* ({} stages)", first.group, members.len()),
        href: format!("/?expand={}", first.group),
        stage: None,
        group: first.group.clone(),
        why: (failed > 0).then(|| format!("{failed} failed")),
        title: format!("group {}: {}; {meta}", first.group, names.join(", ")),
        meta,
        class,
    }
}

fn stage_class(row: &Row) -> &'static str {
    if row.paused && row.state != "blocked" {
        return "st-blocked";
    }
    state_class(row.state)
}

/// Every shown stage as a table row, in groups that open and close (closed when the graph
/// collapses them).
fn table(rows: &[Row], view: &View<'_>, sizes: &BTreeMap<&str, usize>) -> Markup {
    let mut groups: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for row in rows.iter().filter(|r| view.shows(r)) {
        groups.entry(row.group.as_str()).or_default().push(row);
    }
    html! {
        h2 #stages { "Stages" }
        @for (group, members) in &groups {
            @let open = !view.collapse || sizes[group] == 1 || view.expand == Some(*group);
            details.group data-group=(group) open[open] {
                summary {
                    (group) " "
                    span.count { "(" (members.len()) ")" }
                }
                table.stages {
                    thead {
                        tr {
                            th scope="col" { "Stage" }
                            th scope="col" { "Revision" }
                            th scope="col" { "Verified" }
                            th scope="col" { "State" }
                            th scope="col" { "What blocks it" }
                        }
                    }
                    tbody {
                        @for row in members {
                            tr data-stage=(row.name) {
                                th scope="row" { a href=(format!("/stages/{}", row.name)) { (row.name) } }
                                td { code { (row.revision.as_deref().unwrap_or("—")) } }
                                td { @if row.verified { "✓ verified" } @else { "not verified" } }
                                td { span class=(format!("pill {}", stage_class(row))) { (row.state) } @if row.paused { " (paused)" } }
                                td.why {
                                    @if row.blockers.is_empty() { "—" }
                                    @for b in &row.blockers { div { (b) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_name_prefixes() {
        assert_eq!(group_of("app17-prod"), "app17");
        assert_eq!(group_of("eu-west-qa"), "eu");
        assert_eq!(group_of("prod"), "prod");
    }

    fn row(name: &str, upstream: &[&str]) -> Row {
        Row {
            name: name.to_string(),
            group: group_of(name).to_string(),
            revision: Some("r-1".to_string()),
            verified: true,
            state: "succeeded",
            paused: false,
            blockers: Vec::new(),
            upstream: upstream.iter().map(|s| s.to_string()).collect(),
            any: false,
        }
    }

    #[test]
    fn large_pipelines_collapse_into_groups_and_expand_one() {
        let mut rows = Vec::new();
        for app in 0..30 {
            rows.push(row(&format!("app{app}-dev"), &[]));
            rows.push(row(&format!("app{app}-qa"), &[&format!("app{app}-dev")]));
            rows.push(row(&format!("app{app}-prod"), &[&format!("app{app}-qa")]));
        }
        let query = PipelineQuery::default();
        let html = body(&rows, None, &query).into_string();
        assert_eq!(html.matches("data-kind=\"group\"").count(), 30);
        assert_eq!(html.matches("data-kind=\"stage\"").count(), 0);
        assert!(html.contains("3/3 verified · 0 blocked"));
        let query = PipelineQuery {
            expand: Some("app4".to_string()),
            ..PipelineQuery::default()
        };
        let html = body(&rows, None, &query).into_string();
        assert_eq!(html.matches("data-kind=\"group\"").count(), 29);
        assert_eq!(html.matches("data-kind=\"stage\"").count(), 3);
        let query = PipelineQuery {
            q: Some("APP12-".to_string()),
            ..PipelineQuery::default()
        };
        let html = body(&rows, None, &query).into_string();
        assert_eq!(html.matches("data-kind=\"stage\"").count(), 3);
        assert!(html.contains("3 of 90 stages"), "{html}");
        assert_eq!(html.matches("class=\"edge\"").count(), 2);
    }
}
