//! Impact questions over an incident's members: which is most upstream, and what is down or degraded.
//!
//! `rank_upstream`: one mixed down walk per member; a member's count is how many other members'
//! footprints that walk reaches. Cost: `k` bounded walks plus `O(k^2 * footprint)` lookups for
//! `k` members.
//!
//! `blast_radius`: a region walk (down, every edge kind, no terminal rule), then the least
//! fixpoint of "down" by a worklist: each node that becomes down pushes along its out-edges into
//! the region, taking a child down through a hard edge (DEPENDS, HOSTS, CABLE, SUPPORTS) or
//! counting down one member of the child's group (one REDUNDANT group id, all `CLUSTER_MEMBER`
//! edges, all CARRIES edges); a group whose count reaches zero takes the child down. A region
//! node that is not down but has a group with a down member is degraded. Cost: the region walk
//! plus one pass over the out-edges of the down nodes and the in-edges of the touched children.
//!
//! Invariants: every edge is unique after building, so each group member counts down exactly
//! once; the fixpoint does not depend on worklist order; parents outside the region stay up, so
//! nothing beyond the region is ever touched.

use crate::error::EngineError;
use crate::graph::Graph;
use crate::kinds::{is_hard, APPLICATION, CARRIES, CLUSTER_MEMBER, REDUNDANT, SERVICE};
use crate::walk::{Limits, NodeMap, NodeSet, Scope, WalkDirection};

/// What fails with the failing nodes: services and applications down or degraded, ascending.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlastRadius {
    pub down: Vec<u32>,
    pub degraded: Vec<u32>,
    pub capped: bool,
}

/// Which in-edges of a node form one redundancy group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Group {
    Redundant(i64),
    ClusterHosts,
    Carriers,
}

impl Group {
    fn of(kind: u8, group: i64) -> Option<Self> {
        match kind {
            REDUNDANT => Some(Self::Redundant(group)),
            CLUSTER_MEMBER => Some(Self::ClusterHosts),
            CARRIES => Some(Self::Carriers),
            _ => None,
        }
    }
}

impl Graph {
    /// For each entry, how many other entries' footprints its mixed down walk reaches.
    ///
    /// # Errors
    /// `UnknownNode` for an entry that is neither `-1` nor a node, then `NegativeLimit`.
    pub fn rank_upstream(&self, nodes: &[i64], depth: i64, work_cap: i64) -> Result<Vec<usize>, EngineError> {
        let ids = self.optional_nodes(nodes, "nodes")?;
        let limits = Limits::new(depth, work_cap)?;
        let footprints: Vec<Vec<u32>> = ids
            .iter()
            .map(|id| id.map_or_else(Vec::new, |x| self.footprint_of(x)))
            .collect();

        let mut counts = vec![0; ids.len()];
        for (i, footprint) in footprints.iter().enumerate() {
            if footprint.is_empty() {
                continue;
            }
            let walk = self.walk(footprint, WalkDirection::Down, Scope::Mixed, limits);
            counts[i] = footprints
                .iter()
                .enumerate()
                .filter(|(j, other)| *j != i && other.iter().any(|n| walk.contains(*n)))
                .count();
        }
        Ok(counts)
    }

    /// The services and applications down or degraded when `failing` fail (`-1` entries ignored).
    ///
    /// # Errors
    /// `UnknownNode` for an entry that is neither `-1` nor a node, then `NegativeLimit`.
    pub fn blast_radius(&self, failing: &[i64], depth: i64, work_cap: i64) -> Result<BlastRadius, EngineError> {
        let ids: Vec<u32> = self.optional_nodes(failing, "failing")?.into_iter().flatten().collect();
        let limits = Limits::new(depth, work_cap)?;
        let sources: Vec<u32> = ids.iter().flat_map(|&x| self.footprint_of(x)).collect();
        let region = self.walk(&sources, WalkDirection::Down, Scope::Region, limits);

        let mut down = NodeSet::default();
        let mut worklist: Vec<u32> = ids.into_iter().filter(|&x| down.insert(x)).collect();
        // Per touched (node, group): how many of the group's members are not known to be down.
        let mut remaining: NodeMap<Vec<(Group, usize)>> = NodeMap::default();
        while let Some(u) = worklist.pop() {
            for e in self.out_edges(u) {
                if !region.contains(e.node) || down.contains(&e.node) {
                    continue;
                }
                let falls = if is_hard(e.kind) {
                    true
                } else if let Some(group) = Group::of(e.kind, e.group) {
                    self.count_down(&mut remaining, e.node, group)
                } else {
                    false
                };
                if falls {
                    down.insert(e.node);
                    worklist.push(e.node);
                }
            }
        }

        let listed = |node: &u32| matches!(self.kind(*node), SERVICE | APPLICATION);
        let mut down_list: Vec<u32> = down.iter().copied().filter(listed).collect();
        let mut degraded: Vec<u32> = remaining
            .keys()
            .copied()
            .filter(|n| !down.contains(n))
            .filter(listed)
            .collect();
        for node in down_list.iter_mut().chain(&mut degraded) {
            *node = self.external(*node);
        }
        down_list.sort_unstable();
        degraded.sort_unstable();
        Ok(BlastRadius {
            down: down_list,
            degraded,
            capped: region.capped,
        })
    }

    /// Counts one more down member of `node`'s `group`; true when none of the group is left up.
    fn count_down(&self, remaining: &mut NodeMap<Vec<(Group, usize)>>, node: u32, group: Group) -> bool {
        let groups = remaining.entry(node).or_default();
        let slot = if let Some(i) = groups.iter().position(|(g, _)| *g == group) {
            i
        } else {
            let size = self
                .in_edges(node)
                .filter(|e| Group::of(e.kind, e.group) == Some(group))
                .count();
            groups.push((group, size));
            groups.len() - 1
        };
        groups[slot].1 -= 1;
        groups[slot].1 == 0
    }

    /// Node ids of a query list where `-1` stands for an unmapped entry.
    fn optional_nodes(&self, nodes: &[i64], name: &str) -> Result<Vec<Option<u32>>, EngineError> {
        nodes
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                if id == -1 {
                    Ok(None)
                } else {
                    self.node_id(id, &format!("{name}[{i}]: ")).map(Some)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 0 db-a, 1 db-b, 2 orders (redundant on 0 and 1, group 7), 3 reporting (depends on 2),
    /// 4 app supported by 3; 5 vm carrying 0, 6 vm carrying 1.
    fn map() -> Graph {
        let kinds = [0, 0, 0, 0, 4, 2, 2];
        let src = [0, 1, 2, 3, 5, 6];
        let dst = [2, 2, 3, 4, 0, 1];
        let kind = [1, 1, 0, 6, 2, 2];
        let group = [7, 7, -1, -1, -1, -1];
        Graph::build(&kinds, &src, &dst, &kind, &group).unwrap()
    }

    #[test]
    fn one_provider_down_degrades() {
        let r = map().blast_radius(&[5], 10, 100).unwrap();
        assert_eq!(
            r,
            BlastRadius {
                down: vec![0],
                degraded: vec![2],
                capped: false
            }
        );
    }

    #[test]
    fn all_providers_down_takes_dependents_down() {
        let r = map().blast_radius(&[5, -1, 6], 10, 100).unwrap();
        assert_eq!(
            r,
            BlastRadius {
                down: vec![0, 1, 2, 3, 4],
                degraded: vec![],
                capped: false
            }
        );
        let r = map().blast_radius(&[5, 6], 1, 100).unwrap();
        assert_eq!(r.down, vec![0, 1, 2]);
        let r = map().blast_radius(&[5, 6], 10, 1).unwrap();
        assert!(r.capped);
    }

    #[test]
    fn rank_upstream_counts_members_reached() {
        let g = map();
        assert_eq!(g.rank_upstream(&[3, 0, -1, 5], 10, 100).unwrap(), vec![0, 1, 0, 1]);
        assert_eq!(
            g.rank_upstream(&[9], 1, 1).unwrap_err().to_string(),
            "nodes[0]: node 9 is outside the map's 7 nodes"
        );
    }
}
