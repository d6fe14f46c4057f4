//! Integer codes for node and edge kinds, equal to those of `business_application/correlation/kinds.py`.
//!
//! Kinds are plain `u8` codes rather than enums because they arrive as integers from Python and
//! are stored one byte per node or edge in the compact graph.

/// Node kinds.
pub const SERVICE: u8 = 0;
pub const DEVICE: u8 = 1;
pub const VM: u8 = 2;
pub const CLUSTER: u8 = 3;
pub const APPLICATION: u8 = 4;
/// Number of node kinds; a kind is valid when below it.
pub const NODE_KINDS: u8 = 5;

/// Edge kinds: an edge `src -> dst` means `dst` depends on `src`.
pub const DEPENDS: u8 = 0;
pub const REDUNDANT: u8 = 1;
pub const CARRIES: u8 = 2;
pub const HOSTS: u8 = 3;
pub const CLUSTER_MEMBER: u8 = 4;
pub const CABLE: u8 = 5;
pub const SUPPORTS: u8 = 6;
/// Number of edge kinds; a kind is valid when below it.
pub const EDGE_KINDS: u8 = 7;

/// The group of every edge that is not REDUNDANT.
pub const NO_GROUP: i64 = -1;

/// A link may end on a terminal edge but never continue past it.
#[must_use]
pub fn is_terminal(kind: u8) -> bool {
    kind == REDUNDANT || kind == CLUSTER_MEMBER
}

/// Pure walks follow only service-to-service edges.
#[must_use]
pub fn is_pure(kind: u8) -> bool {
    kind == DEPENDS || kind == REDUNDANT
}

/// Edges through which a down parent takes its child down on its own, without a group.
#[must_use]
pub fn is_hard(kind: u8) -> bool {
    matches!(kind, DEPENDS | HOSTS | CABLE | SUPPORTS)
}
