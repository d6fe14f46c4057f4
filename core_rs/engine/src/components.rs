//! Upkeep of the worker snapshot's edge arrays: connected components for the decision locks, and
//! the removal of a deleted object's edges.
//!
//! Algorithm: union-find with path halving over the edges in input order, each root keeping the
//! least key of its component; a final pass points every node straight at its root. Cost: `O(E
//! α(N))` time, no memory beyond the caller's two arrays. Self-loops (the snapshot's removed
//! edges) are skipped.
//!
//! Invariant on return: `parent[n]` is the root of `n`'s component (a node of it), and
//! `least[root]` is the least of the keys given for the component's nodes; `least` of a non-root
//! is left as given. Which node becomes the root depends on the edge order, the least key does not.

use crate::error::EngineError;

/// A node id already checked to be in `0..nodes` (so not negative) as an index.
fn at(node: i32) -> usize {
    node.unsigned_abs() as usize
}

fn find(parent: &mut [i32], mut node: usize) -> usize {
    // Parents are node ids below `parent.len()`, set only by this module.
    while at(parent[node]) != node {
        let grand = parent[at(parent[node])];
        parent[node] = grand;
        node = at(grand);
    }
    node
}

fn same_length(name: &'static str, len: usize, expected: usize) -> Result<(), EngineError> {
    if len == expected {
        Ok(())
    } else {
        Err(EngineError::ArrayLength { name, len, expected })
    }
}

fn endpoint(value: i32, edge: usize, end: &'static str, nodes: usize) -> Result<usize, EngineError> {
    usize::try_from(value)
        .ok()
        .filter(|&n| n < nodes)
        .ok_or(EngineError::EdgeEndpoint {
            edge,
            end,
            id: i64::from(value),
            nodes,
        })
}

/// Fills `parent` and folds `least` over the components of the undirected edges `src[i]`-`dst[i]`.
///
/// `least` holds each node's own key on entry. Nothing is written when an argument is invalid.
///
/// # Errors
/// `ArrayLength` when `src` and `dst` differ in length or `parent` and `least` do; `TooManyNodes`
/// beyond `i32` node ids; `EdgeEndpoint` for an endpoint outside `0..parent.len()`.
pub fn components(src: &[i32], dst: &[i32], parent: &mut [i32], least: &mut [i32]) -> Result<(), EngineError> {
    let nodes = parent.len();
    same_length("dst", dst.len(), src.len())?;
    same_length("least", least.len(), nodes)?;
    if i32::try_from(nodes).is_err() {
        return Err(EngineError::TooManyNodes { count: nodes });
    }
    for (edge, (&s, &d)) in src.iter().zip(dst).enumerate() {
        endpoint(s, edge, "src", nodes)?;
        endpoint(d, edge, "dst", nodes)?;
    }
    for (node, slot) in parent.iter_mut().enumerate() {
        // `nodes` fits in an i32, checked above.
        *slot = i32::try_from(node).unwrap_or(i32::MAX);
    }
    for (&s, &d) in src.iter().zip(dst) {
        if s == d {
            continue;
        }
        let (mut a, mut b) = (find(parent, at(s)), find(parent, at(d)));
        if a == b {
            continue;
        }
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        parent[b] = i32::try_from(a).unwrap_or(i32::MAX);
        if least[b] < least[a] {
            least[a] = least[b];
        }
    }
    for node in 0..nodes {
        let root = find(parent, node);
        parent[node] = i32::try_from(root).unwrap_or(i32::MAX);
    }
    Ok(())
}

/// Turns every edge touching a node with `dead[node]` set into a self-loop (`dst[i] = src[i]`,
/// which both engine backends skip) and returns how many it changed; edge ids stay valid.
///
/// # Errors
/// `ArrayLength` when `src` and `dst` differ in length; `EdgeEndpoint` for an endpoint outside
/// `0..dead.len()`. Nothing is written then.
pub fn drop_edges_touching(src: &[i32], dst: &mut [i32], dead: &[bool]) -> Result<usize, EngineError> {
    same_length("dst", dst.len(), src.len())?;
    let nodes = dead.len();
    let mut touching = Vec::new();
    for (edge, (&s, &d)) in src.iter().zip(dst.iter()).enumerate() {
        let (a, b) = (endpoint(s, edge, "src", nodes)?, endpoint(d, edge, "dst", nodes)?);
        if a != b && (dead[a] || dead[b]) {
            touching.push(edge);
        }
    }
    for &edge in &touching {
        dst[edge] = src[edge];
    }
    Ok(touching.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(nodes: usize, edges: &[(i32, i32)], keys: &[i32]) -> Result<(Vec<i32>, Vec<i32>), EngineError> {
        let (src, dst): (Vec<i32>, Vec<i32>) = edges.iter().copied().unzip();
        let mut parent = vec![0; nodes];
        let mut least = keys.to_vec();
        components(&src, &dst, &mut parent, &mut least)?;
        Ok((parent, least))
    }

    #[test]
    fn every_node_points_at_a_root_holding_its_components_least_key() {
        // Components {0, 2, 4}, {1, 3}, {5}; a self-loop on 5 links nothing.
        let keys = [40, 30, 10, 20, 50, 60];
        let (parent, least) = run(6, &[(4, 2), (2, 0), (3, 1), (5, 5)], &keys).unwrap();
        let component = |n: usize| least[at(parent[n])];
        assert_eq!([0, 2, 4].map(component), [10, 10, 10]);
        assert_eq!([1, 3].map(component), [20, 20]);
        assert_eq!(component(5), 60);
        for (node, &root) in parent.iter().enumerate() {
            assert_eq!(parent[at(root)], root, "node {node} does not point at a root");
        }
    }

    #[test]
    fn the_least_key_does_not_depend_on_the_edge_order() {
        let keys = [7, 3, 9, 1, 8];
        let edges = [(0, 1), (1, 2), (3, 4), (2, 3)];
        let (p1, l1) = run(5, &edges, &keys).unwrap();
        let reversed: Vec<_> = edges.iter().rev().map(|&(a, b)| (b, a)).collect();
        let (p2, l2) = run(5, &reversed, &keys).unwrap();
        for node in 0..5 {
            assert_eq!(l1[at(p1[node])], 1);
            assert_eq!(l2[at(p2[node])], 1);
        }
    }

    #[test]
    fn a_bad_endpoint_or_length_is_refused_and_nothing_is_written() {
        let mut parent = vec![-5; 3];
        let mut least = vec![1, 2, 3];
        let err = components(&[0, 1], &[1, 3], &mut parent, &mut least).unwrap_err();
        assert_eq!(err.to_string(), "edge 1: dst 3 is outside the map's 3 nodes");
        assert_eq!(parent, [-5, -5, -5]);
        assert_eq!(least, [1, 2, 3]);
        assert!(components(&[-1], &[0], &mut parent, &mut least).is_err());
        let err = components(&[0], &[], &mut parent, &mut least).unwrap_err();
        assert_eq!(err.to_string(), "dst has 0 entries, expected 1");
    }

    #[test]
    fn edges_touching_dead_nodes_become_self_loops() {
        let src = [0, 1, 2, 3, 3];
        let mut dst = [1, 2, 3, 0, 3];
        let dead = [false, false, true, false];
        assert_eq!(drop_edges_touching(&src, &mut dst, &dead).unwrap(), 2);
        assert_eq!(dst, [1, 1, 2, 0, 3]);
        // Already a self-loop: not counted again.
        assert_eq!(drop_edges_touching(&src, &mut dst, &dead).unwrap(), 0);
        let err = drop_edges_touching(&[0], &mut [7], &dead).unwrap_err();
        assert_eq!(err.to_string(), "edge 0: dst 7 is outside the map's 4 nodes");
    }
}
