//! The engine's errors: a malformed map or an argument outside the contract.
//!
//! Every variant becomes `business_application.correlation.errors.GraphError` in Python; the
//! messages are the same words the pure-Python fallback uses, so callers see one text whichever
//! backend runs. Each message names the offending index or id.

use std::fmt;

/// Why a map could not be built or a query could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// `src`, `dst`, `kind` and `group` do not have one entry per edge.
    LengthMismatch {
        src: usize,
        dst: usize,
        kind: usize,
        group: usize,
    },
    /// An array that must match another's length (named in `expected`'s place) does not.
    ArrayLength {
        name: &'static str,
        len: usize,
        expected: usize,
    },
    /// More nodes than a packed edge can name (`MAX_NODES`, `2^29`).
    TooManyNodes { count: usize },
    /// More distinct edges than a `u32` offset can index.
    TooManyEdges { count: usize },
    /// `kinds[node]` is not a node kind.
    UnknownNodeKind { node: usize, kind: i64 },
    /// An edge endpoint (`end` is `"src"` or `"dst"`) is not a node of the map.
    EdgeEndpoint {
        edge: usize,
        end: &'static str,
        id: i64,
        nodes: usize,
    },
    /// `kind[edge]` is not an edge kind.
    UnknownEdgeKind { edge: usize, kind: i64 },
    /// A node id given to a query is not a node of the map; `context` says which argument.
    UnknownNode { context: String, id: i64, nodes: usize },
    /// A severity rank outside `0..=3`; `context` says which argument.
    Severity { context: String, value: i64 },
    /// `depth` or `work_cap` is negative.
    NegativeLimit { name: &'static str, value: i64 },
    /// An incident key given to an index is already there.
    DuplicateIncident { key: i64 },
    /// An incident key given to an index is not there.
    UnknownIncident { key: i64 },
    /// A batch asked for no thread at all.
    ThreadCount { value: i64 },
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LengthMismatch { src, dst, kind, group } => {
                write!(
                    f,
                    "edge sequences differ in length: src {src}, dst {dst}, kind {kind}, group {group}"
                )
            }
            Self::ArrayLength { name, len, expected } => write!(f, "{name} has {len} entries, expected {expected}"),
            Self::TooManyNodes { count } => write!(
                f,
                "the map has {count} nodes; at most {} are supported",
                crate::graph::MAX_NODES
            ),
            Self::TooManyEdges { count } => {
                write!(
                    f,
                    "the map has {count} distinct edges; at most {} are supported",
                    u32::MAX
                )
            }
            Self::UnknownNodeKind { node, kind } => write!(f, "node {node} has unknown kind {kind}"),
            Self::EdgeEndpoint { edge, end, id, nodes } => {
                write!(f, "edge {edge}: {end} {id} is outside the map's {nodes} nodes")
            }
            Self::UnknownEdgeKind { edge, kind } => write!(f, "edge {edge} has unknown kind {kind}"),
            Self::UnknownNode { context, id, nodes } => {
                write!(f, "{context}node {id} is outside the map's {nodes} nodes")
            }
            Self::Severity { context, value } => write!(f, "{context}severity {value} is outside 0..3"),
            Self::NegativeLimit { name, value } => write!(f, "{name} must be >= 0, got {value}"),
            Self::DuplicateIncident { key } => write!(f, "incident {key} already exists"),
            Self::UnknownIncident { key } => write!(f, "incident {key} is not in the index"),
            Self::ThreadCount { value } => write!(f, "threads must be >= 1, got {value}"),
        }
    }
}

impl std::error::Error for EngineError {}
