//! The dependency map as a compact graph stored in both directions.
//!
//! Algorithm: the edges are validated, self-loops dropped and counted, the group of every
//! non-REDUNDANT edge normalised to `NO_GROUP`; a counting sort stages the edges by `src`, each
//! node's `(dst, kind, group)` list is sorted and deduplicated into the out-CSR, and a counting
//! scatter of the out-CSR in source order yields the in-CSR already sorted. Cost: `O(E)` plus the
//! sorts of the single adjacency lists (`O(E log d)` for degree `d`) time and `O(N + E)` memory:
//! per edge a `u32` neighbour and a `u8` kind in each direction, per node a `u32` offset in each,
//! and a side table of the groups of REDUNDANT edges only (so at most `u32::MAX` distinct edges).
//!
//! Invariants: node ids are `u32` below `node_count`; each adjacency list is sorted by
//! `(neighbour, kind, group)` with no repeats: out-lists by their own sort, in-lists because the
//! scatter visits sources in ascending order and each source's edges to one target by `(kind,
//! group)`. The graph is immutable once built, so it can be shared between threads; queries keep
//! their scratch state to themselves.

use crate::error::EngineError;
use crate::kinds::{CARRIES, EDGE_KINDS, HOSTS, NODE_KINDS, NO_GROUP, REDUNDANT, SERVICE};

/// One edge seen from one of its endpoints: the node at the other end, the kind and the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edge {
    pub node: u32,
    pub kind: u8,
    pub group: i64,
}

/// Adjacency lists of all nodes in one direction, in compressed sparse row form: five bytes per
/// edge (a `u32` neighbour and a `u8` kind) plus a `u32` offset per node. Only REDUNDANT edges
/// carry a group, so groups live in a side table sorted by edge slot.
#[derive(Debug, Clone, Default)]
struct Adjacency {
    /// `offsets[u]..offsets[u + 1]` indexes the edges of node `u`.
    offsets: Vec<u32>,
    nodes: Vec<u32>,
    kinds: Vec<u8>,
    /// `(slot, group)` of every REDUNDANT edge, ascending by slot.
    groups: Vec<(u32, i64)>,
}

impl Adjacency {
    /// The out-adjacency from edges staged by source: `staged[start[u]..start[u + 1]]` holds the
    /// `(dst, kind, group)` of node `u`'s edges in input order. Each slice is sorted and
    /// deduplicated in place.
    fn from_staged(start: &[usize], staged: &mut [(u32, u8, i64)]) -> Result<Self, EngineError> {
        let node_count = start.len() - 1;
        let mut offsets = Vec::with_capacity(node_count + 1);
        let mut nodes = Vec::with_capacity(staged.len());
        let mut kinds = Vec::with_capacity(staged.len());
        let mut groups = Vec::new();
        offsets.push(0);
        for u in 0..node_count {
            let list = &mut staged[start[u]..start[u + 1]];
            list.sort_unstable();
            let mut previous = None;
            for &(d, k, g) in list.iter() {
                if previous == Some((d, k, g)) {
                    continue;
                }
                previous = Some((d, k, g));
                let slot =
                    u32::try_from(nodes.len()).map_err(|_| EngineError::TooManyEdges { count: nodes.len() + 1 })?;
                if k == REDUNDANT {
                    groups.push((slot, g));
                }
                nodes.push(d);
                kinds.push(k);
            }
            offsets.push(u32::try_from(nodes.len()).map_err(|_| EngineError::TooManyEdges { count: nodes.len() })?);
        }
        Ok(Self {
            offsets,
            nodes,
            kinds,
            groups,
        })
    }

    /// The in-adjacency of `out` by a counting scatter: sources arrive in ascending order and, for
    /// one source, in `(kind, group)` order, so every in-list comes out sorted by `(src, kind, group)`.
    fn reversed(out: &Self) -> Self {
        let node_count = out.offsets.len() - 1;
        let mut offsets = vec![0u32; node_count + 1];
        for &d in &out.nodes {
            offsets[d as usize + 1] += 1;
        }
        for i in 0..node_count {
            offsets[i + 1] += offsets[i];
        }

        let mut next = offsets.clone();
        let mut nodes = vec![0u32; out.nodes.len()];
        let mut kinds = vec![0u8; out.nodes.len()];
        let mut groups = Vec::with_capacity(out.groups.len());
        for u in 0..node_count {
            for i in out.offsets[u]..out.offsets[u + 1] {
                let d = out.nodes[i as usize] as usize;
                let slot = next[d];
                next[d] += 1;
                // `u` is below `node_count`, itself checked to fit in a u32.
                nodes[slot as usize] = u32::try_from(u).unwrap_or(u32::MAX);
                kinds[slot as usize] = out.kinds[i as usize];
                if out.kinds[i as usize] == REDUNDANT {
                    groups.push((slot, out.group(i)));
                }
            }
        }
        groups.sort_unstable();
        Self {
            offsets,
            nodes,
            kinds,
            groups,
        }
    }

    fn edges(&self, node: u32) -> impl Iterator<Item = Edge> + Clone + '_ {
        let node = node as usize;
        let (start, end) = (self.offsets[node], self.offsets[node + 1]);
        (start..end).map(|i| {
            let kind = self.kinds[i as usize];
            Edge {
                node: self.nodes[i as usize],
                kind,
                group: if kind == REDUNDANT { self.group(i) } else { NO_GROUP },
            }
        })
    }

    fn group(&self, slot: u32) -> i64 {
        self.groups
            .binary_search_by_key(&slot, |g| g.0)
            .map_or(NO_GROUP, |i| self.groups[i].1)
    }

    fn memory_bytes(&self) -> usize {
        self.offsets.capacity() * size_of::<u32>()
            + self.nodes.capacity() * size_of::<u32>()
            + self.kinds.capacity()
            + self.groups.capacity() * size_of::<(u32, i64)>()
    }
}

/// The dependency map: node kinds plus the edges in both directions.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    kinds: Vec<u8>,
    out: Adjacency,
    inc: Adjacency,
    skipped_self_loops: usize,
}

impl Graph {
    /// Builds the map from node kinds and four parallel edge sequences (see `docs/engine-api.md`).
    ///
    /// # Errors
    /// `LengthMismatch`, `TooManyNodes`, `UnknownNodeKind`, `EdgeEndpoint`, `UnknownEdgeKind` or `TooManyEdges`,
    /// checked in that order, edges in index order and per edge `src`, `dst`, then kind.
    pub fn build(kinds: &[i64], src: &[i64], dst: &[i64], kind: &[i64], group: &[i64]) -> Result<Self, EngineError> {
        if src.len() != dst.len() || src.len() != kind.len() || src.len() != group.len() {
            return Err(EngineError::LengthMismatch {
                src: src.len(),
                dst: dst.len(),
                kind: kind.len(),
                group: group.len(),
            });
        }
        let node_count = kinds.len();
        if u32::try_from(node_count).is_err() {
            return Err(EngineError::TooManyNodes { count: node_count });
        }
        let node_kinds = node_kinds(kinds)?;

        // Pass 1 checks every edge in index order and counts the kept ones per source.
        let mut start = vec![0usize; node_count + 1];
        let mut skipped_self_loops = 0;
        for i in 0..src.len() {
            let s = endpoint(i, "src", src[i], node_count)?;
            let d = endpoint(i, "dst", dst[i], node_count)?;
            if u8::try_from(kind[i]).ok().filter(|k| *k < EDGE_KINDS).is_none() {
                return Err(EngineError::UnknownEdgeKind { edge: i, kind: kind[i] });
            }
            if s == d {
                skipped_self_loops += 1;
            } else {
                start[s as usize + 1] += 1;
            }
        }
        for i in 0..node_count {
            start[i + 1] += start[i];
        }

        // Pass 2 stages each kept edge under its source; the values were checked above.
        let mut next = start.clone();
        let mut staged = vec![(0u32, 0u8, NO_GROUP); start[node_count]];
        for i in 0..src.len() {
            if src[i] == dst[i] {
                continue;
            }
            let s = usize::try_from(src[i]).unwrap_or(0);
            let d = u32::try_from(dst[i]).unwrap_or(0);
            let k = u8::try_from(kind[i]).unwrap_or(0);
            let g = if k == REDUNDANT { group[i] } else { NO_GROUP };
            staged[next[s]] = (d, k, g);
            next[s] += 1;
        }
        drop(next);

        let out = Adjacency::from_staged(&start, &mut staged)?;
        drop(staged);
        Ok(Self {
            inc: Adjacency::reversed(&out),
            out,
            kinds: node_kinds,
            skipped_self_loops,
        })
    }

    /// Number of nodes.
    #[must_use]
    pub fn node_count(&self) -> usize {
        self.kinds.len()
    }

    /// Number of distinct edges kept (self-loops and repeats not counted).
    #[must_use]
    pub fn edge_count(&self) -> usize {
        self.out.nodes.len()
    }

    /// Bytes held by the graph's arrays (node kinds and both adjacencies), allocated capacity included.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.kinds.capacity() + self.out.memory_bytes() + self.inc.memory_bytes()
    }

    /// Number of self-loop edges skipped while building, each occurrence counted.
    #[must_use]
    pub fn skipped_self_loops(&self) -> usize {
        self.skipped_self_loops
    }

    /// `[x]` followed by the services that `x` carries, ascending.
    ///
    /// # Errors
    /// `UnknownNode` when `x` is not a node of the map.
    pub fn footprint(&self, x: i64) -> Result<Vec<u32>, EngineError> {
        let x = self.node_id(x, "")?;
        Ok(self.footprint_of(x))
    }

    /// `[x]` followed by, ascending and without repeats, the services `x` carries and the nodes that
    /// host `x`: what is under maintenance when `x` is.
    ///
    /// # Errors
    /// `UnknownNode` when `x` is not a node of the map.
    pub fn maintenance_scope(&self, x: i64) -> Result<Vec<u32>, EngineError> {
        let x = self.node_id(x, "")?;
        let mut rest: Vec<u32> = self.footprint_of(x)[1..].to_vec();
        rest.extend(self.in_edges(x).filter(|e| e.kind == HOSTS).map(|e| e.node));
        rest.sort_unstable();
        rest.dedup();

        let mut scope = Vec::with_capacity(rest.len() + 1);
        scope.push(x);
        scope.extend(rest);
        Ok(scope)
    }

    /// The footprint of a node known to be in range.
    pub(crate) fn footprint_of(&self, x: u32) -> Vec<u32> {
        self.footprint_iter(x).collect()
    }

    /// The footprint of a node known to be in range, without collecting it.
    pub(crate) fn footprint_iter(&self, x: u32) -> impl Iterator<Item = u32> + Clone + '_ {
        std::iter::once(x).chain(
            self.out_edges(x)
                .filter(|e| e.kind == CARRIES && self.kind(e.node) == SERVICE)
                .map(|e| e.node),
        )
    }

    /// Checks that a query's node id names a node; `context` prefixes the error message.
    pub(crate) fn node_id(&self, id: i64, context: &str) -> Result<u32, EngineError> {
        u32::try_from(id)
            .ok()
            .filter(|x| (*x as usize) < self.kinds.len())
            .ok_or_else(|| EngineError::UnknownNode {
                context: context.to_owned(),
                id,
                nodes: self.kinds.len(),
            })
    }

    pub(crate) fn kind(&self, node: u32) -> u8 {
        self.kinds[node as usize]
    }

    /// Out-edges of `node` when `down`, else its in-edges.
    pub(crate) fn edges(&self, down: bool, node: u32) -> impl Iterator<Item = Edge> + '_ {
        if down { &self.out } else { &self.inc }.edges(node)
    }

    pub(crate) fn out_edges(&self, node: u32) -> impl Iterator<Item = Edge> + Clone + '_ {
        self.out.edges(node)
    }

    pub(crate) fn in_edges(&self, node: u32) -> impl Iterator<Item = Edge> + '_ {
        self.inc.edges(node)
    }
}

fn node_kinds(kinds: &[i64]) -> Result<Vec<u8>, EngineError> {
    kinds
        .iter()
        .enumerate()
        .map(|(node, &kind)| {
            u8::try_from(kind)
                .ok()
                .filter(|k| *k < NODE_KINDS)
                .ok_or(EngineError::UnknownNodeKind { node, kind })
        })
        .collect()
}

fn endpoint(edge: usize, end: &'static str, id: i64, nodes: usize) -> Result<u32, EngineError> {
    u32::try_from(id)
        .ok()
        .filter(|x| (*x as usize) < nodes)
        .ok_or(EngineError::EdgeEndpoint { edge, end, id, nodes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{CLUSTER, DEPENDS, DEVICE, VM};

    fn ids(edges: impl Iterator<Item = Edge>) -> Vec<(u32, u8, i64)> {
        edges.map(|e| (e.node, e.kind, e.group)).collect()
    }

    #[test]
    fn adjacency_is_sorted_deduplicated_and_self_loops_counted() {
        let kinds = [0, 0, 0, 1];
        let src = [2, 0, 0, 0, 1, 3, 0];
        let dst = [1, 2, 1, 1, 1, 0, 1];
        let kind = [0, 0, 1, 0, 0, 2, 1];
        let group = [-1, 7, 5, -1, -1, 9, 5];
        let g = Graph::build(&kinds, &src, &dst, &kind, &group).unwrap();
        assert_eq!(g.skipped_self_loops(), 1);
        assert_eq!(g.edge_count(), 5);
        assert_eq!(
            ids(g.out_edges(0)),
            vec![(1, DEPENDS, -1), (1, REDUNDANT, 5), (2, DEPENDS, -1)]
        );
        assert_eq!(
            ids(g.in_edges(1)),
            vec![(0, DEPENDS, -1), (0, REDUNDANT, 5), (2, DEPENDS, -1)]
        );
        assert_eq!(ids(g.out_edges(3)), vec![(0, CARRIES, -1)]);
    }

    #[test]
    fn build_errors_name_the_offending_index() {
        let e = Graph::build(&[0, 0], &[0], &[1, 0], &[0], &[-1]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "edge sequences differ in length: src 1, dst 2, kind 1, group 1"
        );
        let e = Graph::build(&[0, 5], &[], &[], &[], &[]).unwrap_err();
        assert_eq!(e.to_string(), "node 1 has unknown kind 5");
        let e = Graph::build(&[0, 0], &[0, 1], &[1, 2], &[0, 0], &[-1, -1]).unwrap_err();
        assert_eq!(e.to_string(), "edge 1: dst 2 is outside the map's 2 nodes");
        let e = Graph::build(&[0, 0], &[-1], &[1], &[0], &[-1]).unwrap_err();
        assert_eq!(
            e,
            EngineError::EdgeEndpoint {
                edge: 0,
                end: "src",
                id: -1,
                nodes: 2
            }
        );
        let e = Graph::build(&[0, 0], &[0], &[1], &[7], &[-1]).unwrap_err();
        assert_eq!(e.to_string(), "edge 0 has unknown kind 7");
    }

    #[test]
    fn footprint_and_maintenance_scope() {
        // 0 service, 1 service, 2 device, 3 VM, 4 cluster, 5 application
        let kinds = [0, 0, i64::from(DEVICE), i64::from(VM), i64::from(CLUSTER), 4];
        let src = [3, 3, 2, 4, 3];
        let dst = [1, 0, 3, 3, 5];
        let kind = [2, 2, 3, 3, 2];
        let g = Graph::build(&kinds, &src, &dst, &kind, &[-1; 5]).unwrap();
        assert_eq!(g.footprint(3).unwrap(), vec![3, 0, 1]);
        assert_eq!(g.footprint(0).unwrap(), vec![0]);
        assert_eq!(g.maintenance_scope(3).unwrap(), vec![3, 0, 1, 2, 4]);
        assert_eq!(
            g.footprint(6).unwrap_err().to_string(),
            "node 6 is outside the map's 6 nodes"
        );
    }
}
