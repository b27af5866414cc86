//! The layered layout of the pipeline graph: every node gets a layer (its longest path from
//! a node without upstream, so every edge points forward) and a position inside its layer,
//! chosen by barycentric sweeps that reduce edge crossings. Pure: indices in, positions out.

/// An edge from an upstream node to a downstream node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
}

/// Where each node goes: its layer (column) and its row inside the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub layer: Vec<usize>,
    pub row: Vec<usize>,
    /// The nodes of each layer, top to bottom.
    pub layers: Vec<Vec<usize>>,
}

/// How many down-and-up sweeps the ordering makes at most.
const SWEEPS: usize = 12;

/// The longest-path layer of each of `n` nodes; `edges` must not form a cycle (those that
/// close one are ignored, so the answer is still a layering).
pub fn longest_path_layers(n: usize, edges: &[Edge]) -> Vec<usize> {
    let mut indegree = vec![0usize; n];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in edges
        .iter()
        .filter(|e| e.from < n && e.to < n && e.from != e.to)
    {
        indegree[e.to] += 1;
        out[e.from].push(e.to);
    }
    let mut layer = vec![0usize; n];
    let mut ready: std::collections::VecDeque<usize> =
        (0..n).filter(|&v| indegree[v] == 0).collect();
    while let Some(v) = ready.pop_front() {
        for &w in &out[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indegree[w] -= 1;
            if indegree[w] == 0 {
                ready.push_back(w);
            }
        }
    }
    layer
}

/// Orders the nodes inside their layers to reduce crossings: starting from the given order
/// (node index order), alternate sweeps place each node at the mean row of its neighbours in
/// the layers before it (down) or after it (up); the ordering with the fewest crossings wins.
pub fn place(layer: Vec<usize>, edges: &[Edge]) -> Placement {
    let n = layer.len();
    let depth = layer.iter().max().map_or(0, |m| m + 1);
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (v, &l) in layer.iter().enumerate() {
        layers[l].push(v);
    }
    let mut up: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in edges.iter().filter(|e| e.from < n && e.to < n) {
        if layer[e.from] < layer[e.to] {
            up[e.to].push(e.from);
            down[e.from].push(e.to);
        }
    }
    let mut row = rows(n, &layers);
    let mut best = (crossings(&layers, &row, &down), layers.clone());
    for sweep in 0..SWEEPS {
        if best.0 == 0 {
            break;
        }
        let downward = sweep % 2 == 0;
        let order: Vec<usize> = if downward {
            (1..depth).collect()
        } else {
            (0..depth.saturating_sub(1)).rev().collect()
        };
        for l in order {
            let neighbours = if downward { &up } else { &down };
            reorder(&mut layers[l], &row, neighbours);
            for (r, &v) in layers[l].iter().enumerate() {
                row[v] = r;
            }
        }
        let count = crossings(&layers, &row, &down);
        if count < best.0 {
            best = (count, layers.clone());
        }
    }
    let layers = best.1;
    let row = rows(n, &layers);
    Placement { layer, row, layers }
}

fn rows(n: usize, layers: &[Vec<usize>]) -> Vec<usize> {
    let mut row = vec![0; n];
    for nodes in layers {
        for (r, &v) in nodes.iter().enumerate() {
            row[v] = r;
        }
    }
    row
}

/// Sorts one layer by the barycentre of each node's neighbours; a node without neighbours
/// keeps its place.
fn reorder(nodes: &mut [usize], row: &[usize], neighbours: &[Vec<usize>]) {
    let mut keyed: Vec<(f64, usize)> = nodes
        .iter()
        .map(|&v| {
            let near = &neighbours[v];
            let centre = if near.is_empty() {
                row[v] as f64
            } else {
                near.iter().map(|&u| row[u] as f64).sum::<f64>() / near.len() as f64
            };
            (centre, v)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (slot, (_, v)) in nodes.iter_mut().zip(keyed) {
        *slot = v;
    }
}

/// How many pairs of edges between neighbouring layers cross.
pub fn crossings(layers: &[Vec<usize>], row: &[usize], down: &[Vec<usize>]) -> usize {
    let mut total = 0;
    for nodes in layers {
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for &v in nodes {
            for &w in &down[v] {
                pairs.push((row[v], row[w]));
            }
        }
        pairs.sort_unstable();
        for (i, a) in pairs.iter().enumerate() {
            total += pairs[i + 1..]
                .iter()
                .filter(|b| b.0 > a.0 && b.1 < a.1)
                .count();
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges(list: &[(usize, usize)]) -> Vec<Edge> {
        list.iter().map(|&(from, to)| Edge { from, to }).collect()
    }

    #[test]
    fn layers_follow_the_longest_path() {
        // dev → qa-a, qa-b → prod, and dev → prod directly: prod sits after both qa stages.
        let e = edges(&[(0, 1), (0, 2), (1, 3), (2, 3), (0, 3)]);
        assert_eq!(longest_path_layers(4, &e), vec![0, 1, 1, 2]);
        // Two sources, one chain.
        let e = edges(&[(1, 2)]);
        assert_eq!(longest_path_layers(3, &e), vec![0, 0, 1]);
    }

    #[test]
    fn crossing_edges_are_untangled() {
        // a0 → b1 and a1 → b0 cross in the given order; the sweep swaps one layer.
        let e = edges(&[(0, 3), (1, 2)]);
        let layer = longest_path_layers(4, &e);
        let down = vec![vec![3], vec![2], vec![], vec![]];
        let start = vec![vec![0, 1], vec![2, 3]];
        assert_eq!(crossings(&start, &rows(4, &start), &down), 1);
        let placed = place(layer, &e);
        assert_eq!(crossings(&placed.layers, &placed.row, &down), 0);
        assert_eq!(placed.layers.len(), 2);
    }

    #[test]
    fn a_wider_tangle_ends_with_fewer_crossings() {
        // Three sources fanning into three targets in reverse order: 3 crossings at first.
        let e = edges(&[(0, 5), (1, 4), (2, 3), (0, 4)]);
        let layer = longest_path_layers(6, &e);
        let mut down = vec![Vec::new(); 6];
        for edge in &e {
            down[edge.from].push(edge.to);
        }
        let start = vec![vec![0, 1, 2], vec![3, 4, 5]];
        let before = crossings(&start, &rows(6, &start), &down);
        let placed = place(layer, &e);
        let after = crossings(&placed.layers, &placed.row, &down);
        assert_eq!(before, 4);
        assert_eq!(after, 0);
        // Every node is placed exactly once.
        let mut all: Vec<usize> = placed.layers.concat();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2, 3, 4, 5]);
    }
}
