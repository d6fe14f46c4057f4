//! Scoring an event against the live incidents: which incidents it links to, and how strongly.
//!
//! Algorithm: four bounded walks from the event's footprint (mixed down, mixed up, pure down,
//! pure up). Each member of each candidate is then classified by looking its footprint up in the
//! event's footprint (`service`), then in the pure walks (`dependency`), then in the mixed walks
//! (`infrastructure`); the best member of a candidate is scored with time decay and severity
//! matching, and the candidates clearing the threshold are sorted by score.
//!
//! Cost: the four walks (bounded by depth and work cap) plus, per member, a footprint and a few
//! hash lookups; nothing depends on the map size.
//!
//! Invariants: every float is computed in the order the contract states, so the pure-Python
//! fallback yields bit-identical scores; ties resolve by the documented keys only, never by hash
//! order.

use std::cmp::Ordering;

use crate::error::EngineError;
use crate::graph::Graph;
use crate::walk::{Limits, Scope, Walk, WalkDirection};

/// Weights of the three link classes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub service: f64,
    pub dependency: f64,
    pub infrastructure: f64,
}

/// The event being correlated and the scoring settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecideQuery {
    pub node: i64,
    pub severity: i64,
    pub time: f64,
    pub depth: i64,
    pub work_cap: i64,
    pub threshold: f64,
    pub window_s: f64,
    pub weights: Weights,
}

/// A live incident: its severity rank, latest member activity (`None`: a member is still
/// triggered) and its members' node ids in join order (`-1` for an unmapped member).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub severity: i64,
    pub last_activity: Option<f64>,
    pub members: Vec<i64>,
}

/// How an event is linked to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Service,
    Dependency,
    Infrastructure,
}

impl Link {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Dependency => "dependency",
            Self::Infrastructure => "infrastructure",
        }
    }
}

/// Where the member sits relative to the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Same,
    Downstream,
    Upstream,
}

impl Direction {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Same => "same",
            Self::Downstream => "downstream",
            Self::Upstream => "upstream",
        }
    }
}

/// One candidate the event links to, with the score and the member that linked it. `candidate`
/// is the position in the candidate list for `Graph::decide`, the incident's key for an index.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub candidate: i64,
    pub score: f64,
    pub link: Link,
    pub weight: f64,
    pub decay: f64,
    pub severity_factor: f64,
    pub member: usize,
    pub path: Vec<u32>,
    pub direction: Direction,
}

/// The answer of `decide`: matches best first, whether a walk hit the work cap, nodes discovered.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub matches: Vec<Match>,
    pub capped: bool,
    pub visited: usize,
}

/// The event's footprint and its four walks.
pub(crate) struct EventWalks {
    /// A handful of nodes: a linear scan beats hashing.
    footprint: Vec<u32>,
    pub mixed: [Walk; 2],
    pub pure: [Walk; 2],
}

impl EventWalks {
    pub fn capped(&self) -> bool {
        self.mixed.iter().chain(&self.pure).any(|w| w.capped)
    }

    pub fn visited(&self) -> usize {
        self.mixed.iter().chain(&self.pure).map(|w| w.discovered).sum()
    }

    /// The four walks: mixed down, mixed up, pure down, pure up.
    pub fn all(&self) -> [&Walk; 4] {
        [&self.mixed[0], &self.mixed[1], &self.pure[0], &self.pure[1]]
    }
}

/// What scoring needs of one candidate besides its members.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Standing {
    pub key: i64,
    pub severity: i64,
    pub last_activity: Option<f64>,
}

/// A candidate's match before its path is traced: `anchor` is where the path ends.
pub(crate) struct Scored {
    found: Match,
    anchor: u32,
}

/// How one member links: the class, its distance, and where its path ends.
struct MemberLink {
    link: Link,
    weight: f64,
    dist: u32,
    anchor: u32,
    direction: Direction,
}

impl Graph {
    /// Scores an event against each candidate incident (see `docs/engine-api.md`, "decide").
    ///
    /// # Errors
    /// `UnknownNode`, `Severity` or `NegativeLimit`, checked in argument order: node, severity,
    /// each candidate's severity then members, depth, work cap.
    pub fn decide(&self, query: &DecideQuery, candidates: &[Candidate]) -> Result<Decision, EngineError> {
        let node = self.node_id(query.node, "")?;
        check_severity(query.severity, "")?;
        let members = self.candidate_members(candidates)?;
        let limits = Limits::new(query.depth, query.work_cap)?;

        let walks = self.event_walks(node, limits);
        let mut matches = Vec::new();
        for (index, (candidate, members)) in candidates.iter().zip(&members).enumerate() {
            let standing = Standing {
                key: i64::try_from(index).unwrap_or(i64::MAX),
                severity: candidate.severity,
                last_activity: candidate.last_activity,
            };
            let mapped = members.iter().enumerate().filter_map(|(m, id)| id.map(|id| (m, id)));
            if let Some(found) = self.score_candidate(query, &walks, standing, mapped) {
                matches.push(found);
            }
        }
        Ok(self.finish(matches, &walks, None))
    }

    /// Validates each candidate's severity and members; unmapped members become `None`.
    fn candidate_members(&self, candidates: &[Candidate]) -> Result<Vec<Vec<Option<u32>>>, EngineError> {
        let mut all = Vec::with_capacity(candidates.len());
        for (c, candidate) in candidates.iter().enumerate() {
            check_severity(candidate.severity, &format!("candidate {c}: "))?;
            let mut members = Vec::with_capacity(candidate.members.len());
            for (m, &id) in candidate.members.iter().enumerate() {
                members.push(if id == -1 {
                    None
                } else {
                    Some(self.node_id(id, &format!("candidate {c}, member {m}: "))?)
                });
            }
            all.push(members);
        }
        Ok(all)
    }

    pub(crate) fn event_walks(&self, node: u32, limits: Limits) -> EventWalks {
        let footprint = self.footprint_of(node);
        self.warm_both(&footprint);
        let walk = |direction, scope| self.walk(&footprint, direction, scope, limits);
        EventWalks {
            mixed: [
                walk(WalkDirection::Down, Scope::Mixed),
                walk(WalkDirection::Up, Scope::Mixed),
            ],
            pure: [
                walk(WalkDirection::Down, Scope::Pure),
                walk(WalkDirection::Up, Scope::Pure),
            ],
            footprint,
        }
    }

    /// The best-linked member of one candidate, scored, its path left for `finish` to trace; `None`
    /// without a link or below threshold. `members` yields `(member index, node)` for the mapped
    /// members in ascending index order; members that cannot link may be left out, which changes
    /// nothing.
    pub(crate) fn score_candidate(
        &self,
        query: &DecideQuery,
        walks: &EventWalks,
        candidate: Standing,
        members: impl Iterator<Item = (usize, u32)>,
    ) -> Option<Scored> {
        let mut best: Option<(usize, MemberLink)> = None;
        for (m, member) in members {
            let Some(link) = self.link_member(member, walks, &query.weights) else {
                continue;
            };
            // Exact float equality is the contract: equal weights tie and fall to distance.
            #[allow(clippy::float_cmp)]
            let better = match &best {
                None => true,
                Some((_, b)) => link.weight > b.weight || (link.weight == b.weight && link.dist < b.dist),
            };
            if better {
                best = Some((m, link));
            }
        }
        let (member, link) = best?;

        let decay = decay(query.time, candidate.last_activity, query.window_s);
        let severity_factor = severity_factor(query.severity, candidate.severity);
        let score = (link.weight * decay) * severity_factor;
        let clears = score >= query.threshold;
        if !clears {
            return None;
        }
        Some(Scored {
            found: Match {
                candidate: candidate.key,
                score,
                link: link.link,
                weight: link.weight,
                decay,
                severity_factor,
                member,
                path: Vec::new(),
                direction: link.direction,
            },
            anchor: link.anchor,
        })
    }

    /// The path of a match from the event's footprint to its member's `anchor` (external ids).
    fn match_path(&self, walks: &EventWalks, found: &Match, anchor: u32) -> Vec<u32> {
        let mut path = match found.direction {
            Direction::Same => vec![anchor],
            direction => {
                let pair = if found.link == Link::Dependency {
                    &walks.pure
                } else {
                    &walks.mixed
                };
                pair[usize::from(direction == Direction::Upstream)].path_to(anchor)
            }
        };
        for node in &mut path {
            *node = self.external(*node);
        }
        path
    }

    /// Matches sorted best first (score descending, then candidate ascending), the first `keep` of
    /// them when given, each with its path, and the walks' statistics. `scored` must arrive in
    /// ascending candidate order so that equal scores keep it. Paths are traced only for the matches
    /// kept: with hundreds of candidates linked and one kept, tracing them all cost more than scoring.
    pub(crate) fn finish(&self, mut scored: Vec<Scored>, walks: &EventWalks, keep: Option<usize>) -> Decision {
        scored.sort_by(|a, b| {
            b.found
                .score
                .partial_cmp(&a.found.score)
                .unwrap_or(Ordering::Equal)
                .then(a.found.candidate.cmp(&b.found.candidate))
        });
        if let Some(keep) = keep {
            scored.truncate(keep);
        }
        let matches = scored
            .into_iter()
            .map(|Scored { mut found, anchor }| {
                found.path = self.match_path(walks, &found, anchor);
                found
            })
            .collect();
        Decision {
            matches,
            capped: walks.capped(),
            visited: walks.visited(),
        }
    }

    /// Classifies one mapped member: shared footprint, else pure walks, else mixed walks.
    fn link_member(&self, member: u32, walks: &EventWalks, weights: &Weights) -> Option<MemberLink> {
        let footprint = self.footprint_iter(member);
        if let Some(shared) = footprint.clone().find(|n| walks.footprint.contains(n)) {
            return Some(MemberLink {
                link: Link::Service,
                weight: weights.service,
                dist: 0,
                anchor: shared,
                direction: Direction::Same,
            });
        }
        let classes = [
            (Link::Dependency, &walks.pure, weights.dependency),
            (Link::Infrastructure, &walks.mixed, weights.infrastructure),
        ];
        for (link, pair, weight) in classes {
            if let Some((dist, up, anchor)) = nearest(footprint.clone(), pair) {
                let direction = if up { Direction::Upstream } else { Direction::Downstream };
                return Some(MemberLink {
                    link,
                    weight,
                    dist,
                    anchor,
                    direction,
                });
            }
        }
        None
    }
}

/// The reached footprint node with the smallest `(distance, down before up, position)`.
fn nearest(footprint: impl Iterator<Item = u32>, pair: &[Walk; 2]) -> Option<(u32, bool, u32)> {
    // Positions are distinct, so the node never takes part in the comparison.
    let mut best: Option<(u32, bool, usize, u32)> = None;
    for (position, node) in footprint.enumerate() {
        for (up, walk) in [(false, &pair[0]), (true, &pair[1])] {
            if let Some(dist) = walk.dist(node) {
                let key = (dist, up, position, node);
                if best.map_or(true, |b| key < b) {
                    best = Some(key);
                }
            }
        }
    }
    best.map(|(dist, up, _, node)| (dist, up, node))
}

/// `1 - 0.5 * min(1, d / window_s)` with `d` the time since the last activity, or a step when the
/// window is not positive. Written with explicit comparisons so NaN behaves as in the fallback.
fn decay(time: f64, last_activity: Option<f64>, window_s: f64) -> f64 {
    let d = match last_activity {
        None => 0.0,
        Some(last) => time - last,
    };
    let d = if d > 0.0 { d } else { 0.0 };
    if window_s > 0.0 {
        let ratio = d / window_s;
        let ratio = if ratio < 1.0 { ratio } else { 1.0 };
        1.0 - 0.5 * ratio
    } else if d == 0.0 {
        1.0
    } else {
        0.5
    }
}

/// `1 - 0.1 * |severity - candidate severity|`, both ranks already checked to be in `0..=3`.
fn severity_factor(severity: i64, candidate: i64) -> f64 {
    // The difference of two ranks in 0..=3 is exact in an i32, and so in an f64.
    let gap = i32::try_from((severity - candidate).abs()).unwrap_or(i32::MAX);
    1.0 - 0.1 * f64::from(gap)
}

pub(crate) fn check_severity(value: i64, context: &str) -> Result<(), EngineError> {
    if (0..=3).contains(&value) {
        Ok(())
    } else {
        Err(EngineError::Severity {
            context: context.to_owned(),
            value,
        })
    }
}

#[cfg(test)]
// The contract fixes the order of every float operation, so results are compared exactly.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    const WEIGHTS: Weights = Weights {
        service: 0.8,
        dependency: 0.6,
        infrastructure: 0.4,
    };

    fn query(node: i64) -> DecideQuery {
        DecideQuery {
            node,
            severity: 3,
            time: 100.0,
            depth: 5,
            work_cap: 1000,
            threshold: 0.0,
            window_s: 600.0,
            weights: WEIGHTS,
        }
    }

    fn candidate(members: Vec<i64>) -> Candidate {
        Candidate {
            severity: 3,
            last_activity: None,
            members,
        }
    }

    /// 0 db, 1 api, 2 web (services); 3 device carrying 0; 4 device carrying 2; 5 switch cabled to 3.
    fn map() -> Graph {
        let kinds = [0, 0, 0, 1, 1, 1];
        let src = [0, 1, 3, 4, 5];
        let dst = [1, 2, 0, 2, 3];
        let kind = [0, 0, 2, 2, 5];
        Graph::build(&kinds, &src, &dst, &kind, &[-1; 5]).unwrap()
    }

    #[test]
    fn link_classes_and_directions() {
        let g = map();
        let d = g
            .decide(
                &query(3),
                &[
                    candidate(vec![0]),
                    candidate(vec![2]),
                    candidate(vec![-1, 5]),
                    candidate(vec![-1]),
                ],
            )
            .unwrap();
        let summary: Vec<_> = d
            .matches
            .iter()
            .map(|m| (m.candidate, m.link, m.direction, m.path.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, Link::Service, Direction::Same, vec![0]),
                (1, Link::Dependency, Direction::Downstream, vec![0, 1, 2]),
                (2, Link::Infrastructure, Direction::Upstream, vec![3, 5]),
            ]
        );
        assert_eq!(d.matches[2].member, 1);
        assert!(!d.capped);
    }

    #[test]
    fn best_member_prefers_weight_then_distance_then_index() {
        let g = map();
        let d = g.decide(&query(0), &[candidate(vec![2, 1, 3])]).unwrap();
        assert_eq!((d.matches[0].member, d.matches[0].link), (2, Link::Service));
        let d = g.decide(&query(0), &[candidate(vec![2, 1])]).unwrap();
        assert_eq!((d.matches[0].member, d.matches[0].path.clone()), (1, vec![0, 1]));
    }

    #[test]
    fn decay_severity_and_threshold() {
        assert!((decay(100.0, Some(40.0), 120.0) - 0.75).abs() < 1e-12);
        assert_eq!(decay(100.0, Some(400.0), 120.0), 1.0);
        assert_eq!(decay(100.0, Some(0.0), 10.0), 0.5);
        assert_eq!(decay(100.0, Some(50.0), 0.0), 0.5);
        assert_eq!(decay(100.0, None, 0.0), 1.0);
        assert_eq!(decay(100.0, Some(f64::NAN), 60.0), 1.0);
        assert_eq!(severity_factor(3, 1), 1.0 - 0.1 * 2.0);

        let g = map();
        let mut q = query(3);
        q.threshold = 0.7;
        let d = g.decide(&q, &[candidate(vec![0]), candidate(vec![2])]).unwrap();
        assert_eq!(d.matches.len(), 1);
        assert_eq!(d.matches[0].score, 0.8);
    }

    #[test]
    fn argument_errors_name_the_argument() {
        let g = map();
        let e = g.decide(&query(3), &[candidate(vec![-1, 9])]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "candidate 0, member 1: node 9 is outside the map's 6 nodes"
        );
        let e = g
            .decide(
                &query(3),
                &[Candidate {
                    severity: 4,
                    last_activity: None,
                    members: vec![],
                }],
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "candidate 0: severity 4 is outside 0..3");
        let mut q = query(3);
        q.severity = -1;
        assert_eq!(
            g.decide(&q, &[]).unwrap_err().to_string(),
            "severity -1 is outside 0..3"
        );
    }
}
