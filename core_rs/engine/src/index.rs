//! An index from nodes to the live incidents whose members' footprints hold them, so an event is
//! scored only against the incidents its walks reach.
//!
//! Algorithm: each incident keeps its severity, last activity and members (join order, `None` for
//! an unmapped member) and a slot, a small number reused once the incident is removed; `by_node`
//! maps every node of every mapped member's footprint to the `(slot, member index)` pairs it
//! belongs to, each packed in one `u64` (half the bytes of the key and index) so collecting and
//! sorting them moves little. `decide` runs the event's four walks as `Graph::decide` does,
//! collects the pairs of every recorded node, sorts them, and scores each touched incident over
//! its touched members only, in ascending member order. A member none of whose footprint nodes was
//! recorded has no link, so leaving it out changes nothing: the decision equals `Graph::decide`
//! given the incidents as candidates in ascending key order, with `candidate` set to the key.
//!
//! Cost: `decide` costs the walks plus one bit test per recorded node, and for the nodes holding
//! pairs an array read and the pairs found (once per node, whichever walks recorded it);
//! nothing depends on the number of incidents or the map size. Adding a member costs its
//! footprint; removing an incident costs its members' footprints times the pairs on those nodes.
//!
//! Invariants: a pair `(slot, m)` is in `by_node[n]` exactly when member `m` of the incident
//! holding `slot` is mapped and `n` is in its footprint (a node repeated in a footprint is listed once per
//! occurrence, which the sort and dedup in `decide` absorb). Every mutation checks all of its
//! arguments before changing anything. The index must always be used with the graph it was
//! filled from: footprints are read from that graph.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::decide::{check_severity, DecideQuery, Decision, Standing};
use crate::error::EngineError;
use crate::graph::Graph;
use crate::walk::Limits;

/// One live incident as the index keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub severity: i64,
    pub last_activity: Option<f64>,
    /// External node ids (the caller's), `None` for an unmapped member.
    pub members: Vec<Option<u32>>,
}

/// The live incidents, keyed by the caller's incident id, and where their footprints lie.
#[derive(Debug, Clone, Default)]
pub struct IncidentIndex {
    /// Each incident's slot, by key (ascending: the order of `keys`).
    slot_of: BTreeMap<i64, u32>,
    /// Each slot's incident and its key (`None`: free, listed in `free_slots`): a decision finds an
    /// incident by the slot of its pairs with one array read.
    by_slot: Vec<Option<(i64, Incident)>>,
    free_slots: Vec<u32>,
    by_node: ByNode,
}

/// A `(slot, member index)` pair as `by_node` keeps it: sorting the words sorts by slot, then member.
fn pair(slot: u32, m: u32) -> u64 {
    (u64::from(slot) << 32) | u64::from(m)
}

/// The slot and member index of a packed pair.
fn unpair(word: u64) -> (u32, u32) {
    // The high and low halves of the word, each a u32 by construction.
    #[allow(clippy::cast_possible_truncation)]
    ((word >> 32) as u32, word as u32)
}

/// Node -> pairs, as a dense array of list numbers (one `u32` per node up to the highest node
/// seen) into a pool of lists: a lookup per recorded node is one array read, not a hash. A list
/// that empties keeps its number, so the pool never holds more lists than nodes ever used.
#[derive(Debug, Clone, Default)]
struct ByNode {
    list_of: Vec<u32>,
    /// A bit per node, set with its list number: most recorded nodes have none, and 128 KB of bits
    /// at 1M nodes stay in the cache where the numbers (4 MB) do not.
    has_list: Vec<u64>,
    lists: Vec<Vec<u64>>,
}

const NO_LIST: u32 = u32::MAX;

thread_local! {
    /// Each thread's buffer of a decision's pairs, kept between decisions so that collecting them
    /// allocates nothing once it has grown.
    static TOUCHED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

impl ByNode {
    fn get(&self, node: u32) -> &[u64] {
        let listed = self
            .has_list
            .get(node as usize / 64)
            .is_some_and(|bits| bits & (1 << (node % 64)) != 0);
        if !listed {
            return &[];
        }
        match self.list_of.get(node as usize) {
            Some(&list) if list != NO_LIST => &self.lists[list as usize],
            _ => &[],
        }
    }

    fn push(&mut self, node: u32, pair: u64) {
        let node = node as usize;
        if self.list_of.len() <= node {
            self.list_of.resize(node + 1, NO_LIST);
        }
        if self.list_of[node] == NO_LIST {
            // At most one list per node, and node ids are u32.
            self.list_of[node] = u32::try_from(self.lists.len()).unwrap_or(NO_LIST - 1);
            self.lists.push(Vec::new());
            if self.has_list.len() <= node / 64 {
                self.has_list.resize(node / 64 + 1, 0);
            }
            self.has_list[node / 64] |= 1 << (node % 64);
        }
        self.lists[self.list_of[node] as usize].push(pair);
    }

    fn remove_slot(&mut self, node: u32, slot: u32) {
        if let Some(&list) = self.list_of.get(node as usize) {
            if list != NO_LIST {
                self.lists[list as usize].retain(|&word| unpair(word).0 != slot);
            }
        }
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.lists.iter().all(Vec::is_empty)
    }
}

impl IncidentIndex {
    /// An empty index.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of incidents.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// The incident under `key`, if any.
    #[must_use]
    pub fn incident(&self, key: i64) -> Option<&Incident> {
        let slot = *self.slot_of.get(&key)?;
        self.by_slot[slot as usize].as_ref().map(|(_, incident)| incident)
    }

    /// The keys, ascending.
    pub fn keys(&self) -> impl Iterator<Item = i64> + '_ {
        self.slot_of.keys().copied()
    }

    /// Adds a live incident with its members (`-1` for an unmapped one).
    ///
    /// # Errors
    /// `DuplicateIncident` when `key` is taken, `Severity`, then `UnknownNode` naming the member.
    pub fn add_incident(
        &mut self,
        graph: &Graph,
        key: i64,
        severity: i64,
        last_activity: Option<f64>,
        members: &[i64],
    ) -> Result<(), EngineError> {
        if self.slot_of.contains_key(&key) {
            return Err(EngineError::DuplicateIncident { key });
        }
        check_severity(severity, &format!("incident {key}: "))?;
        let members = members
            .iter()
            .enumerate()
            .map(|(m, &id)| member_id(graph, key, m, id))
            .collect::<Result<Vec<_>, _>>()?;

        let slot = self.take_slot(key);
        for (m, member) in members.iter().enumerate() {
            if let Some(node) = member {
                self.link(graph, slot, m, *node);
            }
        }
        self.by_slot[slot as usize] = Some((
            key,
            Incident {
                severity,
                last_activity,
                members,
            },
        ));
        Ok(())
    }

    /// Appends a member (`-1` for an unmapped one) to incident `key`; returns its member index.
    ///
    /// # Errors
    /// `UnknownIncident`, then `UnknownNode` naming the member.
    pub fn add_member(&mut self, graph: &Graph, key: i64, member: i64) -> Result<usize, EngineError> {
        let Some((slot, incident)) = self.incident_mut(key) else {
            return Err(EngineError::UnknownIncident { key });
        };
        let m = incident.members.len();
        let node = member_id(graph, key, m, member)?;
        incident.members.push(node);
        if let Some(node) = node {
            self.link(graph, slot, m, node);
        }
        Ok(m)
    }

    /// Sets incident `key`'s severity rank and latest member activity.
    ///
    /// # Errors
    /// `UnknownIncident`, then `Severity`.
    pub fn update_incident(&mut self, key: i64, severity: i64, last_activity: Option<f64>) -> Result<(), EngineError> {
        let Some((_, incident)) = self.incident_mut(key) else {
            return Err(EngineError::UnknownIncident { key });
        };
        check_severity(severity, &format!("incident {key}: "))?;
        incident.severity = severity;
        incident.last_activity = last_activity;
        Ok(())
    }

    /// Removes incident `key` (resolved, merged or no longer live); false when it was not there.
    pub fn remove_incident(&mut self, graph: &Graph, key: i64) -> bool {
        let Some(slot) = self.slot_of.remove(&key) else {
            return false;
        };
        if let Some((_, incident)) = self.by_slot[slot as usize].take() {
            for node in incident.members.iter().flatten() {
                for n in graph.footprint_iter(graph.internal(*node)) {
                    self.by_node.remove_slot(n, slot);
                }
            }
        }
        self.free_slots.push(slot);
        true
    }

    /// Scores an event against the indexed incidents; equal to `Graph::decide` with the incidents
    /// as candidates in ascending key order, each match's `candidate` being the incident's key,
    /// and only the first `max_matches` matches kept when it is given.
    ///
    /// # Errors
    /// `UnknownNode`, `Severity` or `NegativeLimit`, in that order.
    pub fn decide(
        &self,
        graph: &Graph,
        query: &DecideQuery,
        max_matches: Option<usize>,
    ) -> Result<Decision, EngineError> {
        let node = graph.node_id(query.node, "")?;
        check_severity(query.severity, "")?;
        let limits = Limits::new(query.depth, query.work_cap)?;
        Ok(self.decide_checked(graph, query, node, limits, max_matches))
    }

    /// `decide` once the event's node and the limits are known to be valid.
    pub(crate) fn decide_checked(
        &self,
        graph: &Graph,
        query: &DecideQuery,
        node: u32,
        limits: Limits,
        max_matches: Option<usize>,
    ) -> Decision {
        let walks = graph.event_walks(node, limits);
        let mut touched = TOUCHED.with(|spare| std::mem::take(&mut *spare.borrow_mut()));
        touched.clear();
        // A node recorded by several walks lists its pairs once: the first walk holding it copies them.
        let all = walks.all();
        for (k, walk) in all.iter().enumerate() {
            for n in walk.nodes() {
                let pairs = self.by_node.get(n);
                if !pairs.is_empty() && !all[..k].iter().any(|earlier| earlier.contains(n)) {
                    touched.extend_from_slice(pairs);
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();

        // Slots group the pairs in an order unrelated to the keys: `finish` orders the matches by
        // score, then key, whatever order they arrive in.
        let mut matches = Vec::new();
        for group in touched.chunk_by(|a, b| unpair(*a).0 == unpair(*b).0) {
            let Some(Some((key, incident))) = self.by_slot.get(unpair(group[0]).0 as usize) else {
                continue;
            };
            let key = *key;
            let standing = Standing {
                key,
                severity: incident.severity,
                last_activity: incident.last_activity,
            };
            let members = group.iter().filter_map(|&word| {
                let m = unpair(word).1 as usize;
                incident.members[m].map(|node| (m, graph.internal(node)))
            });
            if let Some(found) = graph.score_candidate(query, &walks, standing, members) {
                matches.push(found);
            }
        }
        // The buffer goes back to the thread for its next decision (a thread being torn down just frees it)
        let _ = TOUCHED.try_with(|spare| *spare.borrow_mut() = touched);
        graph.finish(matches, &walks, max_matches)
    }

    /// Lists member `m` (external id `node`) of the incident holding `slot` under its footprint's nodes.
    fn link(&mut self, graph: &Graph, slot: u32, m: usize, node: u32) {
        // Member indexes fit in a u32: a u32 node id space and at most one member per add call.
        let m = u32::try_from(m).unwrap_or(u32::MAX);
        for n in graph.footprint_iter(graph.internal(node)) {
            self.by_node.push(n, pair(slot, m));
        }
    }

    /// A free slot for incident `key`: one a removed incident left, else a new one.
    fn take_slot(&mut self, key: i64) -> u32 {
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            // At most one slot per live incident; more than 2^32 live incidents cannot be held.
            let slot = u32::try_from(self.by_slot.len()).unwrap_or(u32::MAX);
            self.by_slot.push(None);
            slot
        });
        self.slot_of.insert(key, slot);
        slot
    }

    /// Incident `key`'s slot and the incident, to change.
    fn incident_mut(&mut self, key: i64) -> Option<(u32, &mut Incident)> {
        let slot = *self.slot_of.get(&key)?;
        self.by_slot[slot as usize]
            .as_mut()
            .map(|(_, incident)| (slot, incident))
    }
}

fn member_id(graph: &Graph, key: i64, m: usize, id: i64) -> Result<Option<u32>, EngineError> {
    if id == -1 {
        return Ok(None);
    }
    // Checked, then kept as the caller's (external) id.
    graph
        .node_id(id, &format!("incident {key}, member {m}: "))
        .map(|node| Some(graph.external(node)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Candidate, Weights};

    fn query(node: i64) -> DecideQuery {
        DecideQuery {
            node,
            severity: 3,
            time: 100.0,
            depth: 5,
            work_cap: 1000,
            threshold: 0.0,
            window_s: 600.0,
            weights: Weights {
                service: 0.8,
                dependency: 0.6,
                infrastructure: 0.4,
            },
        }
    }

    /// 0 db, 1 api, 2 web (services); 3 device carrying 0; 4 device carrying 2; 5 switch cabled to 3.
    fn map() -> Graph {
        Graph::build(
            &[0, 0, 0, 1, 1, 1],
            &[0, 1, 3, 4, 5],
            &[1, 2, 0, 2, 3],
            &[0, 0, 2, 2, 5],
            &[-1; 5],
        )
        .unwrap()
    }

    #[test]
    fn index_decides_like_the_candidate_list_in_key_order() {
        let g = map();
        let mut index = IncidentIndex::new();
        let incidents = [(40, vec![2]), (7, vec![-1, 5]), (12, vec![0]), (3, vec![-1])];
        for (key, members) in &incidents {
            index.add_incident(&g, *key, 3, None, members).unwrap();
        }
        let mut sorted = incidents.to_vec();
        sorted.sort();
        let candidates: Vec<Candidate> = sorted
            .iter()
            .map(|(_, members)| Candidate {
                severity: 3,
                last_activity: None,
                members: members.clone(),
            })
            .collect();
        for node in 0..6 {
            let by_index = index.decide(&g, &query(node), None).unwrap();
            let mut by_list = g.decide(&query(node), &candidates).unwrap();
            for m in &mut by_list.matches {
                m.candidate = sorted[usize::try_from(m.candidate).unwrap()].0;
            }
            assert_eq!(by_index, by_list);
        }
    }

    #[test]
    fn mutations_check_everything_first_and_keep_the_index_exact() {
        let g = map();
        let mut index = IncidentIndex::new();
        index.add_incident(&g, 1, 2, Some(5.0), &[3]).unwrap();
        assert_eq!(
            index.add_incident(&g, 1, 2, None, &[0]).unwrap_err().to_string(),
            "incident 1 already exists"
        );
        assert_eq!(
            index.add_incident(&g, 2, 2, None, &[0, 9]).unwrap_err().to_string(),
            "incident 2, member 1: node 9 is outside the map's 6 nodes"
        );
        assert_eq!(index.len(), 1);
        assert_eq!(index.add_member(&g, 1, 4).unwrap(), 1);
        assert_eq!(
            index.add_member(&g, 8, 4).unwrap_err().to_string(),
            "incident 8 is not in the index"
        );
        index.update_incident(1, 3, None).unwrap();
        assert_eq!(index.decide(&g, &query(2), None).unwrap().matches[0].member, 1);
        assert!(index.remove_incident(&g, 1));
        assert!(!index.remove_incident(&g, 1));
        assert!(index.by_node.is_empty());
        assert!(index.decide(&g, &query(2), None).unwrap().matches.is_empty());
        // A new incident takes the freed slot and is found under its own key
        index.add_incident(&g, 9, 3, None, &[4]).unwrap();
        index.add_incident(&g, 10, 3, None, &[4]).unwrap();
        assert_eq!(
            index
                .by_slot
                .iter()
                .map(|s| s.as_ref().map(|(k, _)| *k))
                .collect::<Vec<_>>(),
            vec![Some(9), Some(10)]
        );
        let found: Vec<i64> = index
            .decide(&g, &query(2), None)
            .unwrap()
            .matches
            .iter()
            .map(|m| m.candidate)
            .collect();
        assert_eq!(found, vec![9, 10]);
    }
}
