//! Bounded breadth-first walks over the map, downstream (out-edges) or upstream (in-edges).
//!
//! Algorithm: a FIFO queue of `(node, distance)` seeded with the sources at distance 0; each
//! dequeued node below `depth` scans its adjacency list in order. A node is recorded once, at its
//! first discovery, with its distance and parent. Terminal edges (REDUNDANT, `CLUSTER_MEMBER`):
//! downstream, a node reached through one is recorded but not expanded, and is expanded later
//! only if a non-terminal edge reaches it (from then on paths through it use that edge's parent,
//! kept in `via`); upstream, one is followed only from a source.
//!
//! Cost: bounded by what the walk touches, never by the map size: at most `work_cap + sources`
//! recorded nodes, each expanded at most once, so `O(sum of their degrees)` time. The recorded
//! nodes live in a list in discovery order; `Marks` holds one byte per map node, 0 for a node not
//! recorded, else its distance plus one (saturated at `FAR`), so the walk's test of a neighbour
//! and a decision's distance lookups are one array read, not a hash. A byte rather than the
//! node's place in the list: at 1M nodes the bytes take 1 MB, which stays in a core's L2 cache
//! where 4-byte words (4 MB) did not, and the test of each scanned neighbour was the walk's most
//! frequent miss (1M map, bench's 3,000 walks: p99 208 us with words, 180 us with bytes). The
//! rarer questions that need the place (the parent, for `path_to`, once per kept match) search
//! the list: it is sorted by distance, so only the nodes at that distance are scanned, and once
//! the scans have read as many entries as the list holds, a map of the places is built and read
//! instead (so a thousand kept matches through one wide layer cost a pass over the list, not a
//! thousand). Marks (with the list's and the queue's buffers) are kept per thread and reused,
//! each walk clearing the bytes it set when it is dropped, so a shared `Graph` serves concurrent
//! queries, a warm walk allocates nothing, and only the first walks of a thread pay for the
//! array; a thread about to end may hand its idle marks to the next thread
//! (`release_thread_marks`). On a large map a walk warms the edge lists of the next nodes in its
//! queue before expanding them (`Graph::warm`), so their cache misses overlap instead of coming
//! one after another.
//!
//! Invariants: distances never decrease along the queue, nor along the recorded list; a recorded
//! node's parent was expanded at a distance one less; following `via`/parents from any recorded
//! node ends at a source.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use crate::error::EngineError;
use crate::graph::Graph;
use crate::kinds::{is_pure, is_terminal, SERVICE};

/// A multiplicative hasher for small integer keys (node ids); the default `SipHash` would cost
/// more than the walk itself. Keys come from the map, not from an attacker.
#[derive(Default, Clone, Copy)]
pub(crate) struct NodeHasher(u64);

const SEED: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for NodeHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.add(u64::from(b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_i64(&mut self, n: i64) {
        self.add(u64::from_ne_bytes(n.to_ne_bytes()));
    }
}

impl NodeHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

pub(crate) type NodeMap<V> = HashMap<u32, V, BuildHasherDefault<NodeHasher>>;
pub(crate) type NodeSet = HashSet<u32, BuildHasherDefault<NodeHasher>>;

/// How far one walk may go: `depth` hops and `work_cap` discovered (non-source) nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub depth: u32,
    pub work_cap: usize,
}

impl Limits {
    /// Checks the limits given to a query; values beyond the native range are clamped, which
    /// changes nothing since no walk can go further than the map is large.
    ///
    /// # Errors
    /// `NegativeLimit` when either is negative (`depth` checked first).
    pub fn new(depth: i64, work_cap: i64) -> Result<Self, EngineError> {
        if depth < 0 {
            return Err(EngineError::NegativeLimit {
                name: "depth",
                value: depth,
            });
        }
        if work_cap < 0 {
            return Err(EngineError::NegativeLimit {
                name: "work_cap",
                value: work_cap,
            });
        }
        Ok(Self {
            depth: u32::try_from(depth).unwrap_or(u32::MAX),
            work_cap: usize::try_from(work_cap).unwrap_or(usize::MAX),
        })
    }
}

/// Which adjacency a walk follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalkDirection {
    /// Out-edges: towards what depends on the sources.
    Down,
    /// In-edges: towards what the sources depend on.
    Up,
}

/// Which edges a walk follows and how terminal edges are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every edge kind, with the terminal rule.
    Mixed,
    /// DEPENDS and REDUNDANT only, with the terminal rule, from the service sources only.
    Pure,
    /// Every edge kind, without the terminal rule (the blast-radius region).
    Region,
}

/// Where a recorded node was first found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Visit {
    pub dist: u32,
    pub parent: Option<u32>,
}

/// Per-node marks of one walk: 0 for a node not recorded, else `min(distance, FAR - 1) + 1`. A
/// finished walk clears only the bytes it set, from its own list, so reuse costs what the walk
/// touched, never the map size.
#[derive(Debug, Default)]
struct Marks {
    bytes: Vec<u8>,
    /// The recorded-node list's buffer, kept with the marks so a walk allocates nothing once warm.
    visits: Vec<(u32, Visit)>,
    /// The breadth-first queue's buffer, likewise.
    queue: Vec<(u32, u32)>,
}

/// The mark of a node recorded at this distance or further: its distance is then read from the list.
const FAR: u8 = u8::MAX;

/// The mark of a node recorded at `dist`.
fn mark_of(dist: u32) -> u8 {
    u8::try_from(dist).map_or(FAR, |d| d.saturating_add(1))
}

/// How many of the next queued nodes a walk warms at a time (`Graph::warm`).
const WARM_CHUNK: usize = 128;

/// The map size from which walks warm edge lists ahead. On smaller maps the adjacency mostly stays in
/// the cache and warming costs more than it saves (walk p50 on the 10k map 1.6 us with it, 1.25 us
/// without; on the 1M map p99 about 210 us with it, 270 us without).
const WARM_FROM_NODES: usize = 262_144;

/// How many idle `Marks` a thread keeps: `decide` holds four walks at once.
const POOL_SIZE: usize = 8;

thread_local! {
    static POOL: RefCell<Vec<Marks>> = const { RefCell::new(Vec::new()) };
}

/// Idle marks handed back by threads that are about to end (`release_thread_marks`), for the next
/// thread that needs some: a batch's scoped worker threads then start warm instead of allocating
/// and zeroing a word per map node for each of their first walks.
static SPARE: Mutex<Vec<Marks>> = Mutex::new(Vec::new());

/// Moves this thread's idle marks to the process-wide spares (at most `POOL_SIZE` are kept there).
pub(crate) fn release_thread_marks() {
    let idle = POOL
        .try_with(|pool| std::mem::take(&mut *pool.borrow_mut()))
        .unwrap_or_default();
    let mut spare = SPARE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for marks in idle {
        if spare.len() < POOL_SIZE {
            spare.push(marks);
        }
    }
}

impl Marks {
    /// All-clear marks for a map of `nodes` nodes: from this thread's pool when one is idle, else
    /// from the spares, else new.
    fn take(nodes: usize) -> Self {
        let mut marks = POOL
            .with(|pool| pool.borrow_mut().pop())
            .or_else(|| SPARE.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop())
            .unwrap_or_default();
        if marks.bytes.len() < nodes {
            marks.bytes.resize(nodes, 0);
        }
        marks
    }

    fn get(&self, node: u32) -> u8 {
        self.bytes.get(node as usize).copied().unwrap_or(0)
    }
}

/// The result of one walk: the recorded nodes and the statistics.
#[derive(Debug)]
pub(crate) struct Walk {
    marks: Marks,
    /// Recorded nodes in discovery order, with where each was first found.
    visits: Vec<(u32, Visit)>,
    /// The breadth-first queue's buffer, handed back to the thread with the marks.
    queue: Vec<(u32, u32)>,
    /// Nodes first recorded through a terminal edge and expanded later from another parent.
    via: NodeMap<u32>,
    /// Every recorded node's place, built once the lookups have scanned as many entries as the list holds.
    places: OnceCell<NodeMap<u32>>,
    /// Entries the lookups scanned before `places` was built.
    scanned: Cell<usize>,
    pub discovered: usize,
    pub capped: bool,
}

impl Drop for Walk {
    fn drop(&mut self) {
        let mut marks = std::mem::take(&mut self.marks);
        for &(node, _) in &self.visits {
            marks.bytes[node as usize] = 0;
        }
        let mut visits = std::mem::take(&mut self.visits);
        visits.clear();
        marks.visits = visits;
        marks.queue = std::mem::take(&mut self.queue);
        // A thread being torn down has no pool any more; the marks are then simply freed.
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < POOL_SIZE {
                pool.push(marks);
            }
        });
    }
}

impl Walk {
    fn new(nodes: usize) -> Self {
        let mut marks = Marks::take(nodes);
        let visits = std::mem::take(&mut marks.visits);
        let mut queue = std::mem::take(&mut marks.queue);
        queue.clear();
        Self {
            marks,
            visits,
            queue,
            via: NodeMap::default(),
            places: OnceCell::new(),
            scanned: Cell::new(0),
            discovered: 0,
            capped: false,
        }
    }

    fn record(&mut self, node: u32, visit: Visit) {
        self.marks.bytes[node as usize] = mark_of(visit.dist);
        self.visits.push((node, visit));
    }

    pub fn contains(&self, node: u32) -> bool {
        self.marks.get(node) != 0
    }

    /// The distance at which `node` was recorded, if it was.
    pub fn dist(&self, node: u32) -> Option<u32> {
        match self.marks.get(node) {
            0 => None,
            FAR => self.place(node).map(|i| self.visits[i].1.dist),
            mark => Some(u32::from(mark) - 1),
        }
    }

    pub fn visit(&self, node: u32) -> Option<Visit> {
        self.place(node).map(|i| self.visits[i].1)
    }

    /// Where `node` is in the recorded list: a scan of the nodes recorded at its distance (the list
    /// is sorted by distance), or of the far end of the list for a saturated mark. Once the scans
    /// have read as many entries as the list holds, a map of every place is built and read instead,
    /// so many lookups in a wide layer (every match of a hub's alert kept) or in the far end cost
    /// at most twice the list, not a scan each.
    fn place(&self, node: u32) -> Option<usize> {
        let mark = self.marks.get(node);
        if mark == 0 {
            return None;
        }
        if let Some(places) = self.places.get() {
            return places.get(&node).map(|&i| i as usize);
        }
        let (low, high) = if mark == FAR {
            (u32::from(FAR) - 1, u32::MAX)
        } else {
            (u32::from(mark) - 1, u32::from(mark) - 1)
        };
        let start = self.visits.partition_point(|v| v.1.dist < low);
        let end = self.visits.partition_point(|v| v.1.dist <= high);
        let found = self.visits[start..end].iter().position(|v| v.0 == node);
        let scanned = self.scanned.get() + found.map_or(end - start, |i| i + 1);
        self.scanned.set(scanned);
        if scanned >= self.visits.len() {
            // A walk records at most one entry per map node, and node ids fit in a u32.
            let places = self
                .visits
                .iter()
                .enumerate()
                .map(|(i, v)| (v.0, u32::try_from(i).unwrap_or(u32::MAX)))
                .collect();
            let _ = self.places.set(places);
        }
        found.map(|i| start + i)
    }

    /// The recorded nodes, sources included, in discovery order.
    pub fn nodes(&self) -> impl Iterator<Item = u32> + '_ {
        self.visits.iter().map(|v| v.0)
    }

    /// Nodes from a source to `node` (which must be recorded), following the edges the walk expanded.
    pub fn path_to(&self, node: u32) -> Vec<u32> {
        let mut path = vec![node];
        let mut parent = self.visit(node).and_then(|v| v.parent);
        while let Some(p) = parent {
            path.push(p);
            parent = match self.via.get(&p) {
                Some(&v) => Some(v),
                None => self.visit(p).and_then(|v| v.parent),
            };
        }
        path.reverse();
        path
    }
}

/// `Scope` as a const generic parameter of `Graph::walk_in`.
const MIXED: u8 = 0;
const PURE: u8 = 1;
const REGION: u8 = 2;

impl Graph {
    /// On a large map, warms both edge lists of the nodes the walks of an event start from, so that the
    /// up walk's first misses are in flight while the down walk runs.
    pub(crate) fn warm_both(&self, sources: &[u32]) {
        if self.node_count() >= WARM_FROM_NODES {
            self.warm(true, sources);
            self.warm(false, sources);
        }
    }

    /// Runs one bounded walk from `sources` (repeats ignored) as described in the module note.
    pub(crate) fn walk(&self, sources: &[u32], direction: WalkDirection, scope: Scope, limits: Limits) -> Walk {
        // One compiled loop per direction and scope: their tests then cost nothing per scanned edge.
        match (direction, scope) {
            (WalkDirection::Down, Scope::Mixed) => self.walk_in::<true, MIXED>(sources, limits),
            (WalkDirection::Down, Scope::Pure) => self.walk_in::<true, PURE>(sources, limits),
            (WalkDirection::Down, Scope::Region) => self.walk_in::<true, REGION>(sources, limits),
            (WalkDirection::Up, Scope::Mixed) => self.walk_in::<false, MIXED>(sources, limits),
            (WalkDirection::Up, Scope::Pure) => self.walk_in::<false, PURE>(sources, limits),
            (WalkDirection::Up, Scope::Region) => self.walk_in::<false, REGION>(sources, limits),
        }
    }

    fn walk_in<const DOWN: bool, const SCOPE: u8>(&self, sources: &[u32], limits: Limits) -> Walk {
        let mut walk = Walk::new(self.node_count());
        let mut queue = std::mem::take(&mut walk.queue);
        for &s in sources {
            if SCOPE == PURE && self.kind(s) != SERVICE {
                continue;
            }
            if !walk.contains(s) {
                walk.record(s, Visit { dist: 0, parent: None });
                queue.push((s, 0u32));
            }
        }

        // Nodes recorded through a terminal edge of a down walk and not yet expanded.
        let mut unexpanded = NodeSet::default();
        let down = DOWN;
        // How many of the next pops were warmed: the queue is FIFO, so the entries at its front.
        let mut warm = 0usize;
        let mut chunk = [0u32; WARM_CHUNK];
        let big = self.node_count() >= WARM_FROM_NODES;
        // The queue is a list read from `head` on: every entry is pushed once and popped once.
        let mut head = 0usize;
        while let Some(&(u, dist)) = queue.get(head) {
            head += 1;
            if warm == 0 && big {
                warm = 1 + (queue.len() - head).min(WARM_CHUNK - 1);
                let mut expanding = 0;
                for &(node, d) in &queue[head - 1..head - 1 + warm] {
                    if d < limits.depth {
                        chunk[expanding] = node;
                        expanding += 1;
                    }
                }
                self.warm(down, &chunk[..expanding]);
            }
            warm = warm.saturating_sub(1); // stays 0 on a small map, where nothing is warmed
            if dist >= limits.depth {
                continue;
            }
            for (node, kind) in self.neighbours(DOWN, u) {
                if SCOPE == PURE && !is_pure(kind) {
                    continue;
                }
                let terminal = SCOPE != REGION && is_terminal(kind);
                if !DOWN && terminal && dist != 0 {
                    continue;
                }
                // The node's mark, read once: 0 while it is not recorded (node ids come from the graph).
                let mark = &mut walk.marks.bytes[node as usize];
                if *mark == 0 {
                    if walk.discovered == limits.work_cap {
                        walk.capped = true;
                        walk.queue = queue;
                        return walk;
                    }
                    walk.discovered += 1;
                    *mark = mark_of(dist + 1);
                    walk.visits.push((
                        node,
                        Visit {
                            dist: dist + 1,
                            parent: Some(u),
                        },
                    ));
                    if terminal && down {
                        unexpanded.insert(node);
                    } else {
                        queue.push((node, dist + 1));
                    }
                } else if down && !terminal && unexpanded.remove(&node) {
                    walk.via.insert(node, u);
                    queue.push((node, dist + 1));
                }
            }
        }
        walk.queue = queue;
        walk
    }
}

impl Graph {
    /// The mixed down and up walks from `footprint(x)`, as `decide` runs them: the nodes each
    /// discovered and whether either hit the work cap. What the benchmarks time as "a walk".
    ///
    /// # Errors
    /// `UnknownNode`, then `NegativeLimit`.
    pub fn reach(&self, x: i64, depth: i64, work_cap: i64) -> Result<(usize, usize, bool), EngineError> {
        let x = self.node_id(x, "")?;
        let limits = Limits::new(depth, work_cap)?;
        let footprint = self.footprint_of(x);
        self.warm_both(&footprint);
        let down = self.walk(&footprint, WalkDirection::Down, Scope::Mixed, limits);
        let up = self.walk(&footprint, WalkDirection::Up, Scope::Mixed, limits);
        Ok((down.discovered, up.discovered, down.capped || up.capped))
    }
}

#[cfg(test)]
mod tests;
