//! `nba_engine`: the graph questions behind alert correlation, in pure Rust.
//!
//! The contract is `docs/engine-api.md`; `business_application/correlation/fallback.py` is the
//! pure-Python twin and must make identical decisions. This crate knows nothing of Python: the
//! binding crate `nba_core_py` wraps it.

#![forbid(unsafe_code)]

mod batch;
mod components;
mod decide;
mod error;
mod graph;
mod impact;
mod index;
pub mod kinds;
mod walk;

pub use batch::BatchEvent;
pub use components::{components, drop_edges_touching};
pub use decide::{Candidate, DecideQuery, Decision, Direction, Link, Match, Weights};
pub use error::EngineError;
pub use graph::Graph;
pub use impact::BlastRadius;
pub use index::{Incident, IncidentIndex};
pub use walk::Limits;
