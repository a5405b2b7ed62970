//! The dependency graph as SVG, drawn on the server: one column per depth (an issue stands
//! right of everything that blocks it), one box per issue coloured by its state, an arrow
//! from each blocker to what it blocks. Issues held by a refused cycle have a dashed red
//! border. Every text from outside (titles) is escaped.

use std::fmt::Write;

use super::page::escape;
use crate::engine::board::{GraphView, NodeState};

const NODE_WIDTH: usize = 200;
const NODE_HEIGHT: usize = 46;
const COLUMN_GAP: usize = 60;
const ROW_GAP: usize = 18;
const MARGIN: usize = 10;
/// Characters of a title shown in a box; the whole title is in its tooltip.
const TITLE_CHARS: usize = 26;

/// The fill and stroke of a node in `state`.
pub(super) fn colours(state: NodeState) -> (&'static str, &'static str) {
    match state {
        NodeState::Blocked => ("#fff1c2", "#bf8700"),
        NodeState::Queued => ("#ddf4ff", "#0969da"),
        NodeState::Running => ("#dafbe1", "#1a7f37"),
        NodeState::Done => ("#eaeef2", "#57606a"),
        NodeState::Failed => ("#ffebe9", "#cf222e"),
        NodeState::Open => ("#ffffff", "#8c959f"),
        NodeState::NotPlanned => ("#f6f8fa", "#cf222e"),
        NodeState::Unknown => ("#f6f8fa", "#8c959f"),
    }
}

/// The SVG of `graph`, whose issues of `repo` are named by number alone.
pub(super) fn graph_svg(graph: &GraphView, repo: &str) -> String {
    if graph.nodes.is_empty() {
        return String::new();
    }
    let mut rows_in_column: Vec<usize> = Vec::new();
    let mut places = Vec::with_capacity(graph.nodes.len());
    for node in &graph.nodes {
        if rows_in_column.len() <= node.depth {
            rows_in_column.resize(node.depth + 1, 0);
        }
        let row = rows_in_column[node.depth];
        rows_in_column[node.depth] += 1;
        let x = MARGIN + node.depth * (NODE_WIDTH + COLUMN_GAP);
        let y = MARGIN + row * (NODE_HEIGHT + ROW_GAP);
        places.push((x, y));
    }
    let columns = rows_in_column.len();
    let rows = rows_in_column.iter().copied().max().unwrap_or(1);
    let width = 2 * MARGIN + columns * NODE_WIDTH + columns.saturating_sub(1) * COLUMN_GAP;
    let height = 2 * MARGIN + rows * NODE_HEIGHT + rows.saturating_sub(1) * ROW_GAP;
    let mut out = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="dependency graph of {label}">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker></defs>
"##,
        label = escape(repo),
    );
    for &(from, to) in &graph.edges {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (places.get(from), places.get(to)) else {
            continue;
        };
        let (sx, sy) = (x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2);
        let (ex, ey) = (x2, y2 + NODE_HEIGHT / 2);
        let bend = (ex.saturating_sub(sx)) / 2;
        let _ = writeln!(
            out,
            r##"<path class="edge" d="M{sx},{sy} C{c1},{sy} {c2},{ey} {ex},{ey}" fill="none" stroke="#57606a" stroke-width="1.5" marker-end="url(#arrow)"/>"##,
            c1 = sx + bend,
            c2 = ex.saturating_sub(bend),
        );
    }
    let own_prefix = format!("{repo}#");
    for (node, &(x, y)) in graph.nodes.iter().zip(&places) {
        let (fill, stroke) = colours(node.state);
        let name = match node.issue.strip_prefix(&own_prefix) {
            Some(number) => format!("#{number}"),
            None => node.issue.clone(),
        };
        let title = node.title.as_deref().unwrap_or("");
        let short: String = if title.chars().count() > TITLE_CHARS {
            let cut: String = title.chars().take(TITLE_CHARS - 1).collect();
            format!("{cut}…")
        } else {
            title.to_owned()
        };
        let dash = if node.cycle || node.state == NodeState::NotPlanned {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let (stroke, cycle_mark) = if node.cycle {
            ("#cf222e", " ⟲ cycle")
        } else {
            (stroke, "")
        };
        let _ = writeln!(
            out,
            r##"<g class="node" data-issue="{issue}" data-state="{machine}"><title>{issue} {title_full} ({state}{cycle_mark})</title><rect x="{x}" y="{y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="2"{dash}/><text x="{tx}" y="{ty1}" font-size="13" font-weight="600" fill="#1f2328">{name} · {state}{cycle_mark}</text><text x="{tx}" y="{ty2}" font-size="12" fill="#424a53">{short}</text></g>"##,
            issue = escape(&node.issue),
            title_full = escape(title),
            state = node.state.name().replace('_', " "),
            machine = node.state.name(),
            name = escape(&name),
            short = escape(&short),
            tx = x + 8,
            ty1 = y + 18,
            ty2 = y + 36,
        );
    }
    out.push_str("</svg>");
    out
}
