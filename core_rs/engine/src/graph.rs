//! The dependency map as a compact graph stored in both directions, its nodes renumbered for
//! locality.
//!
//! Algorithm: the edges are validated, self-loops dropped and counted, the group of every
//! non-REDUNDANT edge normalised to `NO_GROUP`; a counting sort stages the edges by `src`, each
//! node's `(dst, kind, group)` list is sorted and deduplicated into the out-CSR, and a counting
//! scatter of the out-CSR in source order yields the in-CSR already sorted. Then the nodes are
//! renumbered (`locality_order`: each node in input order followed by its not yet placed
//! neighbours of at most `HUB_DEGREE` edges) and both CSRs rewritten in that numbering, each
//! adjacency list keeping its order by the neighbour's external id. Cost: `O(E)` plus the sorts
//! of the single adjacency lists (`O(E log d)` for degree `d`) time and `O(N + E)` memory: per
//! edge one `u32` (neighbour id and kind packed) in each direction, per node a `u32` offset in
//! each and two `u32` for the permutation, and a side table of the groups of REDUNDANT edges only
//! (so at most `u32::MAX` distinct edges).
//!
//! Why renumber: a walk's cost is cache misses on the offsets, the edges and the visit marks of
//! the nodes it touches; nodes that walks touch together get neighbouring ids, so their words
//! share cache lines and pages. Why keep the lists in external order: a capped walk stops at the
//! `work_cap`-th discovery, so which nodes it records depends on the order it scans neighbours;
//! keeping the external order makes every walk, and so every decision, identical to the
//! fallback's, which does not renumber.
//!
//! Invariants: internal and external ids are `u32` below `node_count` (at most `MAX_NODES`, so
//! an id and a 3-bit kind fit in one `u32`); `external` and `internal` are inverse permutations;
//! every id that crosses the crate boundary is external (inputs go through `node_id`, outputs
//! through `external`), every id inside is internal; each adjacency list is sorted by the
//! external `(neighbour, kind, group)` with no repeats. The graph is immutable once built, so it
//! can be shared between threads; queries keep their scratch state to themselves.

use crate::error::EngineError;
use crate::kinds::{CARRIES, EDGE_KINDS, HOSTS, NODE_KINDS, NO_GROUP, REDUNDANT, SERVICE};

/// At most this many nodes: an id takes 29 bits of a packed edge, its kind the other 3.
pub const MAX_NODES: usize = 1 << 29;
const KIND_BITS: u32 = 3;
const KIND_MASK: u32 = (1 << KIND_BITS) - 1;

/// Nodes with more edges (both directions) than this are not pulled next to a neighbour while ordering.
const HUB_DEGREE: u32 = 64;

/// One edge seen from one of its endpoints: the node at the other end, the kind and the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edge {
    pub node: u32,
    pub kind: u8,
    pub group: i64,
}

fn pack(node: u32, kind: u8) -> u32 {
    (node << KIND_BITS) | u32::from(kind)
}

fn unpack(word: u32) -> (u32, u8) {
    // The mask keeps three bits, which fit in a u8.
    (word >> KIND_BITS, (word & KIND_MASK) as u8)
}

/// Adjacency lists of all nodes in one direction, in compressed sparse row form: four bytes per
/// edge (the neighbour id shifted left by three bits, or-ed with the kind, so reading an edge is
/// one load) plus a `u32` offset per node. Only REDUNDANT edges carry a group, so groups live in
/// a side table sorted by edge slot.
#[derive(Debug, Clone, Default)]
struct Adjacency {
    /// `offsets[u]..offsets[u + 1]` indexes the edges of node `u`.
    offsets: Vec<u32>,
    /// `pack(neighbour, kind)` per edge.
    edges: Vec<u32>,
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
        let mut edges = Vec::with_capacity(staged.len());
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
                    u32::try_from(edges.len()).map_err(|_| EngineError::TooManyEdges { count: edges.len() + 1 })?;
                if k == REDUNDANT {
                    groups.push((slot, g));
                }
                edges.push(pack(d, k));
            }
            offsets.push(u32::try_from(edges.len()).map_err(|_| EngineError::TooManyEdges { count: edges.len() })?);
        }
        Ok(Self { offsets, edges, groups })
    }

    /// The in-adjacency of `out` by a counting scatter: sources arrive in ascending order and, for
    /// one source, in `(kind, group)` order, so every in-list comes out sorted by `(src, kind, group)`.
    fn reversed(out: &Self) -> Self {
        let node_count = out.offsets.len() - 1;
        let mut offsets = vec![0u32; node_count + 1];
        for &word in &out.edges {
            offsets[unpack(word).0 as usize + 1] += 1;
        }
        for i in 0..node_count {
            offsets[i + 1] += offsets[i];
        }

        let mut next = offsets.clone();
        let mut edges = vec![0u32; out.edges.len()];
        let mut groups = Vec::with_capacity(out.groups.len());
        for u in 0..node_count {
            // `u` is below `node_count`, itself checked to be at most `MAX_NODES`.
            let source = u32::try_from(u).unwrap_or(u32::MAX);
            for i in out.offsets[u]..out.offsets[u + 1] {
                let (d, k) = unpack(out.edges[i as usize]);
                let slot = next[d as usize];
                next[d as usize] += 1;
                edges[slot as usize] = pack(source, k);
                if k == REDUNDANT {
                    groups.push((slot, out.group(i)));
                }
            }
        }
        groups.sort_unstable();
        Self { offsets, edges, groups }
    }

    /// This adjacency in the internal numbering: list `v` is the list of `external[v]`, in the
    /// same order, with each neighbour replaced by its internal id.
    fn renumbered(&self, external: &[u32], internal: &[u32]) -> Self {
        let mut offsets = Vec::with_capacity(self.offsets.len());
        let mut edges = Vec::with_capacity(self.edges.len());
        let mut groups = Vec::with_capacity(self.groups.len());
        offsets.push(0);
        for &x in external {
            let x = x as usize;
            for i in self.offsets[x]..self.offsets[x + 1] {
                let (node, kind) = unpack(self.edges[i as usize]);
                if kind == REDUNDANT {
                    // Fewer edges than `u32::MAX`, checked when the adjacency was built.
                    let slot = u32::try_from(edges.len()).unwrap_or(u32::MAX);
                    groups.push((slot, self.group(i)));
                }
                edges.push(pack(internal[node as usize], kind));
            }
            offsets.push(u32::try_from(edges.len()).unwrap_or(u32::MAX));
        }
        Self { offsets, edges, groups }
    }

    /// Reads the offset and the first edge of each of `nodes` and discards them, so that the
    /// edge lists a walk is about to scan are in the cache when it gets there. The loads of one
    /// node do not depend on another node's, so the CPU keeps many of them in flight at once where
    /// the walk itself, one list after another, waits for each miss in turn (one pass over the
    /// nodes: a first pass over the offsets alone cost more than it overlapped). (The engine has no
    /// `unsafe`, hence plain loads rather than prefetch instructions.)
    fn warm(&self, nodes: &[u32]) {
        let mut sink = 0u32;
        for &node in nodes {
            if let Some(&start) = self.offsets.get(node as usize) {
                sink ^= self.edges.get(start as usize).copied().unwrap_or(0);
            }
        }
        std::hint::black_box(sink);
    }

    /// The packed edges of `node`.
    fn words(&self, node: u32) -> &[u32] {
        let node = node as usize;
        &self.edges[self.offsets[node] as usize..self.offsets[node + 1] as usize]
    }

    fn edges(&self, node: u32) -> impl Iterator<Item = Edge> + Clone + '_ {
        let start = self.offsets[node as usize];
        self.words(node).iter().zip(start..).map(|(&word, i)| {
            let (node, kind) = unpack(word);
            Edge {
                node,
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
            + self.edges.capacity() * size_of::<u32>()
            + self.groups.capacity() * size_of::<(u32, i64)>()
    }
}

/// How `build` numbers the nodes inside the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Numbering {
    /// Breadth-first locality order (what `Graph::build` uses).
    Locality,
    /// Internal ids equal to the external ones (tests that name internal ids).
    #[cfg(test)]
    Input,
}

/// The internal-to-external permutation: each node in external order, unless already placed,
/// followed by its not yet placed neighbours (out-edges, then in-edges, in list order) of at most
/// `HUB_DEGREE` edges. A hub is not pulled next to whichever neighbour comes first, and a node
/// whose neighbours are all placed keeps its external neighbours, so what the input order already
/// groups (a rack, a hypervisor's VMs) stays together while what walks reach in one hop from a
/// node (its services, its switches) moves next to it.
fn locality_order(out: &Adjacency, inc: &Adjacency) -> Vec<u32> {
    const PULLABLE: u8 = 0;
    const HUB: u8 = 1;
    const PLACED: u8 = 2;
    let node_count = out.offsets.len() - 1;
    // One byte a node (a megabyte at 1M nodes, so it stays in cache while the pass jumps around):
    // whether it is placed, else whether a neighbour may pull it.
    let mut state: Vec<u8> = (0..node_count)
        .map(|u| {
            let degree = out.offsets[u + 1] - out.offsets[u] + inc.offsets[u + 1] - inc.offsets[u];
            if degree <= HUB_DEGREE {
                PULLABLE
            } else {
                HUB
            }
        })
        .collect();
    let mut order: Vec<u32> = Vec::with_capacity(node_count);
    // Below `node_count`, itself at most `MAX_NODES`.
    for x in (0..node_count).map(|x| u32::try_from(x).unwrap_or(u32::MAX)) {
        if state[x as usize] != PLACED {
            state[x as usize] = PLACED;
            order.push(x);
        }
        for &word in out.words(x).iter().chain(inc.words(x)) {
            let v = unpack(word).0;
            if state[v as usize] == PULLABLE {
                state[v as usize] = PLACED;
                order.push(v);
            }
        }
    }
    order
}

/// The dependency map: node kinds plus the edges in both directions, in the internal numbering.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Node kinds by internal id.
    kinds: Vec<u8>,
    out: Adjacency,
    inc: Adjacency,
    /// Internal id -> external id.
    external: Vec<u32>,
    /// External id -> internal id.
    internal: Vec<u32>,
    /// A bit per internal id: the node CARRIES at least one service. A footprint then needs no scan of
    /// the out-edges of the many nodes that carry none, services with thousands of dependants among them.
    carrying: Vec<u64>,
    skipped_self_loops: usize,
}

impl Graph {
    /// Builds the map from node kinds and four parallel edge sequences (see `docs/engine-api.md`).
    ///
    /// # Errors
    /// `LengthMismatch`, `TooManyNodes`, `UnknownNodeKind`, `EdgeEndpoint`, `UnknownEdgeKind` or `TooManyEdges`,
    /// checked in that order, edges in index order and per edge `src`, `dst`, then kind.
    pub fn build(kinds: &[i64], src: &[i64], dst: &[i64], kind: &[i64], group: &[i64]) -> Result<Self, EngineError> {
        Self::build_numbered(kinds, src, dst, kind, group, Numbering::Locality)
    }

    pub(crate) fn build_numbered(
        kinds: &[i64],
        src: &[i64],
        dst: &[i64],
        kind: &[i64],
        group: &[i64],
        numbering: Numbering,
    ) -> Result<Self, EngineError> {
        if src.len() != dst.len() || src.len() != kind.len() || src.len() != group.len() {
            return Err(EngineError::LengthMismatch {
                src: src.len(),
                dst: dst.len(),
                kind: kind.len(),
                group: group.len(),
            });
        }
        let node_count = kinds.len();
        if node_count > MAX_NODES {
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
        drop(start);
        let inc = Adjacency::reversed(&out);
        let external = match numbering {
            Numbering::Locality => locality_order(&out, &inc),
            #[cfg(test)]
            Numbering::Input => (0..node_count).map(|x| u32::try_from(x).unwrap_or(u32::MAX)).collect(),
        };
        let mut internal = vec![0u32; node_count];
        for (v, &x) in external.iter().enumerate() {
            internal[x as usize] = u32::try_from(v).unwrap_or(u32::MAX);
        }
        let (out, inc) = (
            out.renumbered(&external, &internal),
            inc.renumbered(&external, &internal),
        );
        let kinds: Vec<u8> = external.iter().map(|&x| node_kinds[x as usize]).collect();
        let carrying = carrying(&out, &kinds);
        Ok(Self {
            kinds,
            out,
            inc,
            external,
            internal,
            carrying,
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
        self.out.edges.len()
    }

    /// Bytes held by the graph's arrays (node kinds, both adjacencies and the permutation),
    /// allocated capacity included.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.kinds.capacity()
            + self.out.memory_bytes()
            + self.inc.memory_bytes()
            + (self.external.capacity() + self.internal.capacity()) * size_of::<u32>()
            + self.carrying.capacity() * size_of::<u64>()
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
        Ok(self.footprint_iter(x).map(|n| self.external(n)).collect())
    }

    /// `[x]` followed by, ascending and without repeats, the services `x` carries and the nodes that
    /// host `x`: what is under maintenance when `x` is.
    ///
    /// # Errors
    /// `UnknownNode` when `x` is not a node of the map.
    pub fn maintenance_scope(&self, x: i64) -> Result<Vec<u32>, EngineError> {
        let x = self.node_id(x, "")?;
        let mut rest: Vec<u32> = self.footprint_iter(x).skip(1).map(|n| self.external(n)).collect();
        rest.extend(
            self.in_edges(x)
                .filter(|e| e.kind == HOSTS)
                .map(|e| self.external(e.node)),
        );
        rest.sort_unstable();
        rest.dedup();

        let mut scope = Vec::with_capacity(rest.len() + 1);
        scope.push(self.external(x));
        scope.extend(rest);
        Ok(scope)
    }

    /// The footprint of a node known to be in range (internal ids, in external order).
    pub(crate) fn footprint_of(&self, x: u32) -> Vec<u32> {
        self.footprint_iter(x).collect()
    }

    /// The footprint of a node known to be in range, without collecting it.
    pub(crate) fn footprint_iter(&self, x: u32) -> impl Iterator<Item = u32> + Clone + '_ {
        let index = x as usize;
        let carries = self
            .carrying
            .get(index / 64)
            .is_some_and(|bits| bits & (1 << (index % 64)) != 0);
        let edges = if carries { self.out.words(x) } else { &[] };
        std::iter::once(x).chain(edges.iter().filter_map(|&word| {
            let (node, kind) = unpack(word);
            (kind == CARRIES && self.kind(node) == SERVICE).then_some(node)
        }))
    }

    /// The internal id of a query's external node id; `context` prefixes the error message.
    pub(crate) fn node_id(&self, id: i64, context: &str) -> Result<u32, EngineError> {
        u32::try_from(id)
            .ok()
            .and_then(|x| self.internal.get(x as usize).copied())
            .ok_or_else(|| EngineError::UnknownNode {
                context: context.to_owned(),
                id,
                nodes: self.kinds.len(),
            })
    }

    /// The external id of an internal one.
    pub(crate) fn external(&self, node: u32) -> u32 {
        self.external[node as usize]
    }

    /// The internal id of an external id known to be in range.
    pub(crate) fn internal(&self, node: u32) -> u32 {
        self.internal[node as usize]
    }

    pub(crate) fn kind(&self, node: u32) -> u8 {
        self.kinds[node as usize]
    }

    /// See `Adjacency::warm`: `nodes`' edge lists in direction `down` are about to be scanned.
    pub(crate) fn warm(&self, down: bool, nodes: &[u32]) {
        if down { &self.out } else { &self.inc }.warm(nodes);
    }

    /// `(neighbour, kind)` of the out-edges of `node` when `down`, else of its in-edges: what a
    /// walk scans, one load an edge.
    pub(crate) fn neighbours(&self, down: bool, node: u32) -> impl Iterator<Item = (u32, u8)> + '_ {
        if down { &self.out } else { &self.inc }
            .words(node)
            .iter()
            .map(|&word| unpack(word))
    }

    pub(crate) fn out_edges(&self, node: u32) -> impl Iterator<Item = Edge> + Clone + '_ {
        self.out.edges(node)
    }

    pub(crate) fn in_edges(&self, node: u32) -> impl Iterator<Item = Edge> + '_ {
        self.inc.edges(node)
    }
}

/// The `carrying` bits of `Graph`: which nodes have a CARRIES out-edge to a service.
fn carrying(out: &Adjacency, kinds: &[u8]) -> Vec<u64> {
    let mut bits = vec![0u64; kinds.len().div_ceil(64)];
    for (u, bucket) in out.offsets.windows(2).enumerate() {
        let carries = out.edges[bucket[0] as usize..bucket[1] as usize].iter().any(|&word| {
            let (node, kind) = unpack(word);
            kind == CARRIES && kinds[node as usize] == SERVICE
        });
        if carries {
            bits[u / 64] |= 1 << (u % 64);
        }
    }
    bits
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

    /// A graph whose internal ids are the external ones, for tests that look inside.
    fn input_order(kinds: &[i64], src: &[i64], dst: &[i64], kind: &[i64], group: &[i64]) -> Graph {
        Graph::build_numbered(kinds, src, dst, kind, group, Numbering::Input).unwrap()
    }

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
        let g = input_order(&kinds, &src, &dst, &kind, &group);
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
        assert_eq!(
            EngineError::TooManyNodes { count: MAX_NODES + 1 }.to_string(),
            "the map has 536870913 nodes; at most 536870912 are supported"
        );
    }

    /// A small deterministic generator (xorshift), so the test needs no crate.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            usize::try_from(self.0 % n as u64).unwrap_or(0)
        }
    }

    /// Random maps whose input numbering scatters neighbours: every answer of the renumbered graph,
    /// capped walks included, equals that of the same map numbered as given.
    #[test]
    fn renumbering_changes_no_answer() {
        use crate::decide::{Candidate, DecideQuery, Weights};
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..60 {
            let n = 2 + rng.below(40);
            let kinds: Vec<i64> = (0..n).map(|_| i64::try_from(rng.below(5)).unwrap_or(0)).collect();
            let hub = rng.below(n);
            let m = rng.below(n * 4);
            let (mut src, mut dst, mut kind, mut group) = (vec![], vec![], vec![], vec![]);
            for _ in 0..m {
                // A third of the edges touch one hub, so the ordering's hub rule is exercised.
                let s = if rng.below(3) == 0 { hub } else { rng.below(n) };
                src.push(i64::try_from(s).unwrap_or(0));
                dst.push(i64::try_from(rng.below(n)).unwrap_or(0));
                kind.push(i64::try_from(rng.below(7)).unwrap_or(0));
                group.push(i64::try_from(rng.below(3)).unwrap_or(0));
            }
            let a = Graph::build(&kinds, &src, &dst, &kind, &group).unwrap();
            let b = input_order(&kinds, &src, &dst, &kind, &group);
            let all: Vec<i64> = (0..n).map(|x| i64::try_from(x).unwrap_or(0)).collect();
            let candidates: Vec<Candidate> = (0..5)
                .map(|_| Candidate {
                    severity: 2,
                    last_activity: None,
                    members: (0..3).map(|_| all[rng.below(n)]).collect(),
                })
                .collect();
            for &x in &all {
                assert_eq!(a.footprint(x), b.footprint(x), "round {round} node {x}");
                assert_eq!(a.maintenance_scope(x), b.maintenance_scope(x));
                for cap in [0, 1, 3, 100] {
                    assert_eq!(
                        a.reach(x, 3, cap),
                        b.reach(x, 3, cap),
                        "round {round} node {x} cap {cap}"
                    );
                    let query = DecideQuery {
                        node: x,
                        severity: 3,
                        time: 0.0,
                        depth: 3,
                        work_cap: cap,
                        threshold: 0.0,
                        window_s: 60.0,
                        weights: Weights {
                            service: 0.8,
                            dependency: 0.6,
                            infrastructure: 0.4,
                        },
                    };
                    assert_eq!(a.decide(&query, &candidates), b.decide(&query, &candidates));
                    assert_eq!(a.blast_radius(&[x, -1], 3, cap), b.blast_radius(&[x, -1], 3, cap));
                }
            }
            assert_eq!(a.rank_upstream(&all, 3, 5), b.rank_upstream(&all, 3, 5));
        }
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
