//! `business_application._core`: the Python face of `nba_engine`, and the only crate that knows Python.
//!
//! It converts arguments (a bad element is reported by its index, in the fallback's words),
//! releases the GIL while a query walks the map, and turns every `EngineError` into
//! `business_application.correlation.errors.GraphError`, the class the fallback raises too.

use nba_engine::{Candidate, DecideQuery, EngineError, Graph, Weights};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

pyo3::import_exception!(business_application.correlation.errors, GraphError);

/// One exhaustive match, so a new engine error has to choose its Python class here.
fn engine_error(err: &EngineError) -> PyErr {
    match err {
        EngineError::LengthMismatch { .. }
        | EngineError::TooManyNodes { .. }
        | EngineError::UnknownNodeKind { .. }
        | EngineError::EdgeEndpoint { .. }
        | EngineError::UnknownEdgeKind { .. }
        | EngineError::UnknownNode { .. }
        | EngineError::Severity { .. }
        | EngineError::NegativeLimit { .. } => GraphError::new_err(err.to_string()),
    }
}

/// A sequence of integers as `i64`s: the fast conversion first, then an element-wise pass that
/// names the first element that is not a 64-bit integer.
fn int_list(values: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<i64>> {
    if let Ok(list) = values.extract::<Vec<i64>>() {
        return Ok(list);
    }
    let Ok(items) = values.try_iter() else {
        return Err(GraphError::new_err(format!("{name} is not a sequence of integers")));
    };
    let mut list = Vec::new();
    for (i, item) in items.enumerate() {
        let value = item?.extract::<i64>();
        list.push(value.map_err(|_| GraphError::new_err(format!("{name}[{i}] is not a 64-bit integer")))?);
    }
    Ok(list)
}

/// The `(severity, last_activity, members)` triples of `decide`, as tuples or lists.
fn candidates(values: &Bound<'_, PyAny>) -> PyResult<Vec<Candidate>> {
    let Ok(items) = values.try_iter() else {
        return Err(GraphError::new_err("candidates is not a sequence"));
    };
    let mut list = Vec::new();
    for (i, item) in items.enumerate() {
        let item = item?;
        let fields: Vec<Bound<'_, PyAny>> = if let Ok(tuple) = item.cast::<PyTuple>() {
            tuple.iter().collect()
        } else if let Ok(items) = item.cast::<PyList>() {
            items.iter().collect()
        } else {
            Vec::new()
        };
        let [severity, last_activity, members] = fields.as_slice() else {
            return Err(GraphError::new_err(format!(
                "candidates[{i}] is not a (severity, last_activity, members) triple"
            )));
        };
        let severity = severity
            .extract::<i64>()
            .map_err(|_| GraphError::new_err(format!("candidates[{i}] severity is not a 64-bit integer")))?;
        let last_activity =
            if last_activity.is_none() {
                None
            } else {
                Some(last_activity.extract::<f64>().map_err(|_| {
                    GraphError::new_err(format!("candidates[{i}] last_activity is not a number or None"))
                })?)
            };
        let members = int_list(members, &format!("candidates[{i}] members"))?;
        list.push(Candidate {
            severity,
            last_activity,
            members,
        });
    }
    Ok(list)
}

/// A decide match as the contract's 9-tuple.
type MatchTuple = (usize, f64, &'static str, f64, f64, f64, usize, Vec<u32>, &'static str);

/// The dependency map, built once and queried many times; immutable, so shared freely between threads.
#[pyclass(frozen, name = "Graph", module = "business_application._core")]
struct PyGraph {
    graph: Graph,
}

#[pymethods]
impl PyGraph {
    #[new]
    fn new(
        py: Python<'_>,
        kinds: &Bound<'_, PyAny>,
        src: &Bound<'_, PyAny>,
        dst: &Bound<'_, PyAny>,
        kind: &Bound<'_, PyAny>,
        group: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let kinds = int_list(kinds, "kinds")?;
        let src = int_list(src, "src")?;
        let dst = int_list(dst, "dst")?;
        let kind = int_list(kind, "kind")?;
        let group = int_list(group, "group")?;
        let graph = py
            .detach(|| Graph::build(&kinds, &src, &dst, &kind, &group))
            .map_err(|e| engine_error(&e))?;
        Ok(Self { graph })
    }

    #[getter]
    fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    #[getter]
    fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    #[getter]
    fn skipped_self_loops(&self) -> usize {
        self.graph.skipped_self_loops()
    }

    fn footprint(&self, x: i64) -> PyResult<Vec<u32>> {
        self.graph.footprint(x).map_err(|e| engine_error(&e))
    }

    fn maintenance_scope(&self, x: i64) -> PyResult<Vec<u32>> {
        self.graph.maintenance_scope(x).map_err(|e| engine_error(&e))
    }

    // The Python signature is fixed by docs/engine-api.md; grouping the arguments would only move
    // the same list into a Python-side object.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (
        node, severity, time, candidates, depth, work_cap, threshold, window_s,
        w_service, w_dependency, w_infrastructure,
    ))]
    fn decide(
        &self,
        py: Python<'_>,
        node: i64,
        severity: i64,
        time: f64,
        candidates: &Bound<'_, PyAny>,
        depth: i64,
        work_cap: i64,
        threshold: f64,
        window_s: f64,
        w_service: f64,
        w_dependency: f64,
        w_infrastructure: f64,
    ) -> PyResult<(Vec<MatchTuple>, bool, usize)> {
        let candidates = self::candidates(candidates)?;
        let query = DecideQuery {
            node,
            severity,
            time,
            depth,
            work_cap,
            threshold,
            window_s,
            weights: Weights {
                service: w_service,
                dependency: w_dependency,
                infrastructure: w_infrastructure,
            },
        };
        let decision = py
            .detach(|| self.graph.decide(&query, &candidates))
            .map_err(|e| engine_error(&e))?;
        let matches = decision
            .matches
            .into_iter()
            .map(|m| {
                (
                    m.candidate,
                    m.score,
                    m.link.as_str(),
                    m.weight,
                    m.decay,
                    m.severity_factor,
                    m.member,
                    m.path,
                    m.direction.as_str(),
                )
            })
            .collect();
        Ok((matches, decision.capped, decision.visited))
    }

    fn rank_upstream(
        &self,
        py: Python<'_>,
        nodes: &Bound<'_, PyAny>,
        depth: i64,
        work_cap: i64,
    ) -> PyResult<Vec<usize>> {
        let nodes = int_list(nodes, "nodes")?;
        py.detach(|| self.graph.rank_upstream(&nodes, depth, work_cap))
            .map_err(|e| engine_error(&e))
    }

    fn blast_radius(
        &self,
        py: Python<'_>,
        failing: &Bound<'_, PyAny>,
        depth: i64,
        work_cap: i64,
    ) -> PyResult<(Vec<u32>, Vec<u32>, bool)> {
        let failing = int_list(failing, "failing")?;
        let radius = py
            .detach(|| self.graph.blast_radius(&failing, depth, work_cap))
            .map_err(|e| engine_error(&e))?;
        Ok((radius.down, radius.degraded, radius.capped))
    }

    fn __repr__(&self) -> String {
        format!(
            "<Graph nodes={} edges={}>",
            self.graph.node_count(),
            self.graph.edge_count()
        )
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGraph>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
