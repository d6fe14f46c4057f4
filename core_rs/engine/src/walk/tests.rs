//! Unit tests of the bounded walks (`walk.rs`).

use super::*;
use crate::graph::Numbering;

const ALL: Limits = Limits {
    depth: 10,
    work_cap: 100,
};

const ALL_WIDE: Limits = Limits {
    depth: 10,
    work_cap: 10_000,
};

/// Services 0..n with the given (src, dst, kind) edges.
fn services(n: usize, edges: &[(i64, i64, i64)]) -> Graph {
    let group: Vec<i64> = edges.iter().map(|e| if e.2 == 1 { 1 } else { -1 }).collect();
    let src: Vec<i64> = edges.iter().map(|e| e.0).collect();
    let dst: Vec<i64> = edges.iter().map(|e| e.1).collect();
    let kind: Vec<i64> = edges.iter().map(|e| e.2).collect();
    Graph::build_numbered(&vec![0; n], &src, &dst, &kind, &group, Numbering::Input).unwrap()
}

/// Where a walk first found a node: at `dist`, from `parent`.
fn from(parent: u32, dist: u32) -> Visit {
    Visit {
        dist,
        parent: Some(parent),
    }
}

#[test]
fn down_walk_records_but_does_not_expand_through_terminal_edges() {
    // 0 -R-> 1 -> 2; 0 -> 3
    let g = services(4, &[(0, 1, 1), (1, 2, 0), (0, 3, 0)]);
    let w = g.walk(&[0], WalkDirection::Down, Scope::Mixed, ALL);
    assert_eq!(w.visit(1), Some(from(0, 1)));
    assert!(!w.contains(2));
    assert_eq!(w.discovered, 2);
}

#[test]
fn down_walk_expands_a_terminal_node_reached_again_and_paths_avoid_the_terminal_edge() {
    // 0 -R-> 1, 0 -> 2 -> 1 -> 3
    let g = services(4, &[(0, 1, 1), (0, 2, 0), (2, 1, 0), (1, 3, 0)]);
    let w = g.walk(&[0], WalkDirection::Down, Scope::Mixed, ALL);
    assert_eq!(w.visit(1), Some(from(0, 1)));
    assert_eq!(w.visit(3), Some(from(1, 3)));
    assert_eq!(w.path_to(3), vec![0, 2, 1, 3]);
    assert_eq!(w.path_to(1), vec![0, 1]);
}

#[test]
fn up_walk_follows_terminal_edges_only_from_sources() {
    // 1 -R-> 0, 2 -> 0, 3 -R-> 2
    let g = services(4, &[(1, 0, 1), (2, 0, 0), (3, 2, 1)]);
    let w = g.walk(&[0], WalkDirection::Up, Scope::Mixed, ALL);
    assert!(w.contains(1) && w.contains(2));
    assert!(!w.contains(3));
}

#[test]
fn depth_cycles_and_work_cap() {
    let g = services(4, &[(0, 1, 0), (1, 2, 0), (2, 0, 0), (2, 3, 0)]);
    let w = g.walk(
        &[0],
        WalkDirection::Down,
        Scope::Mixed,
        Limits {
            depth: 2,
            work_cap: 100,
        },
    );
    assert!(w.contains(2) && !w.contains(3));
    let w = g.walk(&[0], WalkDirection::Down, Scope::Mixed, ALL);
    assert_eq!((w.discovered, w.capped), (3, false));
    let w = g.walk(
        &[0],
        WalkDirection::Down,
        Scope::Mixed,
        Limits { depth: 10, work_cap: 2 },
    );
    assert_eq!((w.discovered, w.capped), (2, true));
    assert!(!w.contains(3));
}

#[test]
fn walks_on_a_map_large_enough_to_warm_find_the_same_nodes_and_distances() {
    // 0 -> 1..=600, each of those -> 500 leaves of its own: a queue of hundreds at each level.
    let (hubs, leaves) = (600_i64, 500_i64);
    let mut edges = Vec::new();
    for h in 1..=hubs {
        edges.push((0, h, 0));
        for l in 0..leaves {
            edges.push((h, hubs + 1 + (h - 1) * leaves + l, 0));
        }
    }
    let g = services(usize::try_from(1 + hubs + hubs * leaves).unwrap(), &edges);
    assert!(g.node_count() >= WARM_FROM_NODES);
    let all = Limits {
        depth: 5,
        work_cap: 1_000_000,
    };
    let w = g.walk(&[0], WalkDirection::Down, Scope::Mixed, all);
    assert_eq!((w.discovered, w.capped), (300_600, false));
    let last = hubs + hubs * leaves;
    assert_eq!(w.visit(u32::try_from(last).unwrap()).map(|v| v.dist), Some(2));
    assert_eq!(
        w.path_to(u32::try_from(last).unwrap()),
        vec![0, 600, u32::try_from(last).unwrap()]
    );
    let up = g.walk(&[u32::try_from(last).unwrap()], WalkDirection::Up, Scope::Mixed, all);
    assert_eq!(
        up.nodes().collect::<Vec<_>>(),
        vec![u32::try_from(last).unwrap(), 600, 0]
    );
    let capped = g.walk(
        &[0],
        WalkDirection::Down,
        Scope::Mixed,
        Limits {
            depth: 5,
            work_cap: 1000,
        },
    );
    assert_eq!((capped.discovered, capped.capped), (1000, true));
}

#[test]
fn distances_past_what_a_mark_holds_are_read_from_the_list() {
    // A chain 0 -> 1 -> ... -> 299, and 0 -R-> 300.
    let mut edges: Vec<(i64, i64, i64)> = (0..299).map(|i| (i, i + 1, 0)).collect();
    edges.push((0, 300, 1));
    let g = services(301, &edges);
    let far = Limits {
        depth: 1000,
        work_cap: 1000,
    };
    let w = g.walk(&[0], WalkDirection::Down, Scope::Mixed, far);
    for n in [0, 1, 253, 254, 255, 256, 299] {
        assert_eq!(w.dist(n), Some(n));
        assert_eq!(w.visit(n).map(|v| v.dist), Some(n));
    }
    assert_eq!(w.dist(300), Some(1));
    assert_eq!(w.path_to(299), (0..300).collect::<Vec<u32>>());
    let short = g.walk(
        &[0],
        WalkDirection::Down,
        Scope::Mixed,
        Limits {
            depth: 3,
            work_cap: 1000,
        },
    );
    assert_eq!((short.dist(3), short.dist(4), short.visit(4)), (Some(3), None, None));
}

#[test]
fn the_parent_is_found_among_many_nodes_at_one_distance() {
    // 0 -> 1..=500 -> 501 (first reached from 1) and 500 -> 502.
    let mut edges: Vec<(i64, i64, i64)> = (1..=500).map(|i| (0, i, 0)).collect();
    edges.extend((1..=500).map(|i| (i, 501, 0)));
    edges.push((500, 502, 0));
    let g = services(503, &edges);
    let w = g.walk(&[0], WalkDirection::Down, Scope::Mixed, ALL_WIDE);
    assert_eq!(w.path_to(501), vec![0, 1, 501]);
    assert_eq!(w.path_to(502), vec![0, 500, 502]);
    assert_eq!(w.visit(250), Some(from(0, 1)));
}

/// The place lookups of `w` read at most about twice its recorded list in all.
fn assert_read_at_most_twice(w: &Walk) {
    let scanned = w.scanned.get();
    assert!(scanned <= 2 * w.visits.len(), "{scanned} entries scanned");
}

#[test]
fn many_lookups_in_a_wide_layer_read_the_list_at_most_about_twice() {
    // 0 -> 1..=5000: every path is [0, leaf], each leaf's place is in the one layer at distance 1.
    let leaves = 5000_i64;
    let edges: Vec<(i64, i64, i64)> = (1..=leaves).map(|i| (0, i, 0)).collect();
    let g = services(usize::try_from(leaves + 1).unwrap(), &edges);
    let w = g.walk(&[0], WalkDirection::Down, Scope::Mixed, ALL_WIDE);
    for leaf in (1..=u32::try_from(leaves).unwrap()).rev() {
        assert_eq!(w.path_to(leaf), vec![0, leaf]);
    }
    assert!(w.places.get().is_some());
    assert_read_at_most_twice(&w);
}

#[test]
fn a_deep_path_past_what_a_mark_holds_reads_the_list_at_most_about_twice() {
    let n = 3000_i64;
    let edges: Vec<(i64, i64, i64)> = (0..n - 1).map(|i| (i, i + 1, 0)).collect();
    let g = services(usize::try_from(n).unwrap(), &edges);
    let deep = Limits {
        depth: 5000,
        work_cap: 10_000,
    };
    let w = g.walk(&[0], WalkDirection::Down, Scope::Mixed, deep);
    let last = u32::try_from(n - 1).unwrap();
    assert_eq!(w.path_to(last), (0..=last).collect::<Vec<u32>>());
    assert_eq!((w.dist(last), w.dist(300), w.dist(2)), (Some(last), Some(300), Some(2)));
    assert_read_at_most_twice(&w);
}

#[test]
fn a_few_lookups_build_no_map() {
    // 0 -> 1..=600: the first leaf's path reads one entry at each distance.
    let edges: Vec<(i64, i64, i64)> = (1..=600).map(|i| (0, i, 0)).collect();
    let g = services(601, &edges);
    let w = g.walk(&[0], WalkDirection::Down, Scope::Mixed, ALL_WIDE);
    assert_eq!(w.path_to(1), vec![0, 1]);
    assert_eq!(w.visit(700), None);
    assert_eq!((w.places.get().is_none(), w.scanned.get()), (true, 2));
}

#[test]
fn region_walk_ignores_the_terminal_rule() {
    let g = services(3, &[(0, 1, 1), (1, 2, 0)]);
    let w = g.walk(&[0], WalkDirection::Down, Scope::Region, ALL);
    assert_eq!(w.path_to(2), vec![0, 1, 2]);
}

#[test]
fn negative_limits_are_rejected() {
    assert_eq!(
        Limits::new(-1, 5).unwrap_err().to_string(),
        "depth must be >= 0, got -1"
    );
    assert_eq!(
        Limits::new(1, -5).unwrap_err().to_string(),
        "work_cap must be >= 0, got -5"
    );
    assert_eq!(Limits::new(i64::MAX, 0).unwrap().depth, u32::MAX);
}
