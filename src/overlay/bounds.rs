//! How large an object may grow while it is transformed: a JSON 6902 patch may copy a path
//! into itself again and again, doubling the object each time, so every operation is checked
//! against the same bounds a YAML document has ([`MAX_NODES`] nodes, [`MAX_DEPTH`] levels)
//! before it is applied.

use serde_json::Value;

use super::yaml::parse::{MAX_DEPTH, MAX_NODES};

/// An upper bound of an object's size, kept up to date operation by operation.
#[derive(Debug, Clone, Copy)]
pub struct Growth {
    nodes: usize,
    depth: usize,
}

impl Growth {
    /// The size of `value` as it is now.
    pub fn of(value: &Value) -> Growth {
        let (nodes, depth) = measure(value);
        Growth { nodes, depth }
    }

    /// Accounts for `added` being written at `pointer` (a JSON pointer); refuses when the
    /// object could then exceed the bounds.
    pub fn add(&mut self, pointer: &str, added: &Value) -> Result<(), String> {
        self.place(pointer, added, true)
    }

    /// Accounts for `moved` being moved to `pointer`: no new nodes, but maybe deeper.
    pub fn relocate(&mut self, pointer: &str, moved: &Value) -> Result<(), String> {
        self.place(pointer, moved, false)
    }

    fn place(&mut self, pointer: &str, value: &Value, new_nodes: bool) -> Result<(), String> {
        let (nodes, depth) = measure(value);
        let nodes = if new_nodes { nodes } else { 0 };
        let levels = pointer.matches('/').count();
        let grown = Growth {
            nodes: self.nodes.saturating_add(nodes),
            depth: self.depth.max(levels.saturating_add(depth)),
        };
        if grown.nodes > MAX_NODES {
            return Err(format!(
                "the object would grow past {MAX_NODES} nodes; refusing the operation"
            ));
        }
        if grown.depth > MAX_DEPTH {
            return Err(format!(
                "the object would nest deeper than {MAX_DEPTH} levels; refusing the operation"
            ));
        }
        *self = grown;
        Ok(())
    }
}

/// The number of nodes of `value` and how deep it nests (a scalar is 1 node, depth 0),
/// without recursion.
fn measure(value: &Value) -> (usize, usize) {
    let mut nodes = 0;
    let mut deepest = 0;
    let mut pending = vec![(value, 0usize)];
    while let Some((value, depth)) = pending.pop() {
        nodes += 1;
        deepest = deepest.max(depth);
        match value {
            Value::Array(items) => pending.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Object(map) => pending.extend(map.values().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    (nodes, deepest)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn measures_nodes_and_depth() {
        assert_eq!(measure(&json!("a")), (1, 0));
        assert_eq!(measure(&json!({"a": [1, 2], "b": {}})), (5, 2));
    }

    #[test]
    fn refuses_growth_past_the_node_bound() {
        let big = Value::Array(vec![Value::Null; MAX_NODES / 2]);
        let mut growth = Growth::of(&big);
        growth
            .add("/a", &big)
            .expect_err("twice the bound's half plus two nodes");
    }

    #[test]
    fn refuses_growth_past_the_depth_bound() {
        let mut growth = Growth::of(&json!({}));
        let deep = "/a".repeat(MAX_DEPTH);
        growth.add(&deep, &json!(1)).expect("exactly at the bound");
        growth
            .add(&deep, &json!([1]))
            .expect_err("one level deeper");
    }
}
