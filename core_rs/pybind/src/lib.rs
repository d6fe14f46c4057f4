//! `business_application._core`: the Python face of `nba_engine`, and the only crate that knows Python.
//!
//! It converts arguments (a bad element is reported by its index, in the fallback's words),
//! releases the GIL while a query walks the map, and turns every `EngineError` into
//! `business_application.correlation.errors.GraphError`, the class the fallback raises too.

use std::sync::{PoisonError, RwLock};

use nba_engine::{BatchEvent, Candidate, DecideQuery, Decision, EngineError, Graph, IncidentIndex, Weights};
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

pyo3::import_exception!(business_application.correlation.errors, GraphError);

/// One exhaustive match, so a new engine error has to choose its Python class here.
fn engine_error(err: &EngineError) -> PyErr {
    match err {
        EngineError::LengthMismatch { .. }
        | EngineError::ArrayLength { .. }
        | EngineError::TooManyNodes { .. }
        | EngineError::UnknownNodeKind { .. }
        | EngineError::EdgeEndpoint { .. }
        | EngineError::UnknownEdgeKind { .. }
        | EngineError::UnknownNode { .. }
        | EngineError::Severity { .. }
        | EngineError::NegativeLimit { .. }
        | EngineError::TooManyEdges { .. }
        | EngineError::DuplicateIncident { .. }
        | EngineError::UnknownIncident { .. }
        | EngineError::ThreadCount { .. } => GraphError::new_err(err.to_string()),
    }
}

/// A sequence of integers as `i64`s: a copy of a buffer of native 64-bit integers (such as
/// `array('q')`) first, then the list conversion, then an element-wise pass that names the first
/// element that is not a 64-bit integer.
fn int_list(values: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<i64>> {
    if let Ok(buffer) = PyBuffer::<i64>::get(values) {
        if let Ok(list) = buffer.to_vec(values.py()) {
            return Ok(list);
        }
    }
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

/// The items of a tuple or a list, or none for anything else (a record of `decide`'s or
/// `decide_batch`'s arguments, whose length the caller checks).
fn tuple_fields<'py>(item: &Bound<'py, PyAny>) -> Vec<Bound<'py, PyAny>> {
    if let Ok(tuple) = item.cast::<PyTuple>() {
        tuple.iter().collect()
    } else if let Ok(items) = item.cast::<PyList>() {
        items.iter().collect()
    } else {
        Vec::new()
    }
}

/// The `(severity, last_activity, members)` triples of `decide`, as tuples or lists.
fn candidates(values: &Bound<'_, PyAny>) -> PyResult<Vec<Candidate>> {
    let Ok(items) = values.try_iter() else {
        return Err(GraphError::new_err("candidates is not a sequence"));
    };
    let mut list = Vec::new();
    for (i, item) in items.enumerate() {
        let item = item?;
        let fields = tuple_fields(&item);
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
type MatchTuple = (i64, f64, &'static str, f64, f64, f64, usize, Vec<u32>, &'static str);
/// A decision as the contract's `(matches, capped, visited)`.
type DecisionTuple = (Vec<MatchTuple>, bool, usize);

fn decision_tuple(decision: Decision) -> DecisionTuple {
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
    (matches, decision.capped, decision.visited)
}

/// The scoring settings of a query, the event's own fields left for the caller to fill.
#[allow(clippy::too_many_arguments)] // one argument per setting of the contract
fn settings(
    node: i64,
    severity: i64,
    time: f64,
    depth: i64,
    work_cap: i64,
    threshold: f64,
    window_s: f64,
    weights: (f64, f64, f64),
) -> DecideQuery {
    DecideQuery {
        node,
        severity,
        time,
        depth,
        work_cap,
        threshold,
        window_s,
        weights: Weights {
            service: weights.0,
            dependency: weights.1,
            infrastructure: weights.2,
        },
    }
}

/// `max_matches` as the engine takes it; a negative count is refused in the engine's words.
fn max_matches_arg(value: Option<i64>) -> PyResult<Option<usize>> {
    value
        .map(|v| {
            usize::try_from(v).map_err(|_| {
                engine_error(&EngineError::NegativeLimit {
                    name: "max_matches",
                    value: v,
                })
            })
        })
        .transpose()
}

/// The `(node, severity, time)` triples of `decide_batch`, as tuples or lists.
fn batch_events(values: &Bound<'_, PyAny>) -> PyResult<Vec<BatchEvent>> {
    if let Ok(triples) = values.extract::<Vec<(i64, i64, f64)>>() {
        return Ok(triples
            .into_iter()
            .map(|(node, severity, time)| BatchEvent { node, severity, time })
            .collect());
    }
    let Ok(items) = values.try_iter() else {
        return Err(GraphError::new_err("events is not a sequence"));
    };
    let mut list = Vec::new();
    for (i, item) in items.enumerate() {
        let item = item?;
        let fields = tuple_fields(&item);
        let triple = match fields.as_slice() {
            [node, severity, time] => match (node.extract(), severity.extract(), time.extract()) {
                (Ok(node), Ok(severity), Ok(time)) => Some((node, severity, time)),
                _ => None,
            },
            _ => None,
        };
        let Some((node, severity, time)) = triple else {
            return Err(GraphError::new_err(format!(
                "events[{i}] is not a (node, severity, time) triple of integers and a number"
            )));
        };
        list.push(BatchEvent { node, severity, time });
    }
    Ok(list)
}

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
    ) -> PyResult<DecisionTuple> {
        let candidates = self::candidates(candidates)?;
        let weights = (w_service, w_dependency, w_infrastructure);
        let query = settings(node, severity, time, depth, work_cap, threshold, window_s, weights);
        let decision = py
            .detach(|| self.graph.decide(&query, &candidates))
            .map_err(|e| engine_error(&e))?;
        Ok(decision_tuple(decision))
    }

    fn reach(&self, py: Python<'_>, x: i64, depth: i64, work_cap: i64) -> PyResult<(usize, usize, bool)> {
        py.detach(|| self.graph.reach(x, depth, work_cap))
            .map_err(|e| engine_error(&e))
    }

    #[getter]
    fn memory_bytes(&self) -> usize {
        self.graph.memory_bytes()
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

/// The live incidents of one graph, indexed by the nodes of their members' footprints.
///
/// Frozen for Python: the index sits behind a lock, so a decision (read, GIL released) and an
/// update (write, taken with the GIL released too) from different threads never race.
#[pyclass(frozen, name = "IncidentIndex", module = "business_application._core")]
struct PyIncidentIndex {
    graph: Py<PyGraph>,
    index: RwLock<IncidentIndex>,
}

impl PyIncidentIndex {
    fn read<T>(&self, py: Python<'_>, f: impl FnOnce(&Graph, &IncidentIndex) -> T + Send) -> T
    where
        T: Send,
    {
        let graph = &self.graph.get().graph;
        py.detach(|| f(graph, &self.index.read().unwrap_or_else(PoisonError::into_inner)))
    }

    fn write<T>(&self, py: Python<'_>, f: impl FnOnce(&Graph, &mut IncidentIndex) -> T + Send) -> T
    where
        T: Send,
    {
        let graph = &self.graph.get().graph;
        py.detach(|| f(graph, &mut self.index.write().unwrap_or_else(PoisonError::into_inner)))
    }
}

#[pymethods]
impl PyIncidentIndex {
    #[new]
    fn new(graph: Py<PyGraph>) -> Self {
        Self {
            graph,
            index: RwLock::new(IncidentIndex::new()),
        }
    }

    #[getter]
    fn graph(&self, py: Python<'_>) -> Py<PyGraph> {
        self.graph.clone_ref(py)
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.read(py, |_, index| index.len())
    }

    fn __contains__(&self, py: Python<'_>, key: i64) -> bool {
        self.read(py, |_, index| index.incident(key).is_some())
    }

    fn keys(&self, py: Python<'_>) -> Vec<i64> {
        self.read(py, |_, index| index.keys().collect())
    }

    /// `(severity, last_activity, members)` of incident `key` (`-1` for unmapped members), or None.
    fn incident(&self, py: Python<'_>, key: i64) -> Option<(i64, Option<f64>, Vec<i64>)> {
        self.read(py, |_, index| {
            index.incident(key).map(|i| {
                let members = i.members.iter().map(|m| m.map_or(-1, i64::from)).collect();
                (i.severity, i.last_activity, members)
            })
        })
    }

    fn add_incident(
        &self,
        py: Python<'_>,
        key: i64,
        severity: i64,
        last_activity: Option<f64>,
        members: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let members = int_list(members, "members")?;
        self.write(py, |graph, index| {
            index.add_incident(graph, key, severity, last_activity, &members)
        })
        .map_err(|e| engine_error(&e))
    }

    fn add_member(&self, py: Python<'_>, key: i64, member: i64) -> PyResult<usize> {
        self.write(py, |graph, index| index.add_member(graph, key, member))
            .map_err(|e| engine_error(&e))
    }

    fn update_incident(&self, py: Python<'_>, key: i64, severity: i64, last_activity: Option<f64>) -> PyResult<()> {
        self.write(py, |_, index| index.update_incident(key, severity, last_activity))
            .map_err(|e| engine_error(&e))
    }

    fn remove_incident(&self, py: Python<'_>, key: i64) -> bool {
        self.write(py, |graph, index| index.remove_incident(graph, key))
    }

    // The Python signature is the contract's decide without the candidates.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (
        node, severity, time, depth, work_cap, threshold, window_s,
        w_service, w_dependency, w_infrastructure, max_matches=None,
    ))]
    fn decide(
        &self,
        py: Python<'_>,
        node: i64,
        severity: i64,
        time: f64,
        depth: i64,
        work_cap: i64,
        threshold: f64,
        window_s: f64,
        w_service: f64,
        w_dependency: f64,
        w_infrastructure: f64,
        max_matches: Option<i64>,
    ) -> PyResult<DecisionTuple> {
        let weights = (w_service, w_dependency, w_infrastructure);
        let query = settings(node, severity, time, depth, work_cap, threshold, window_s, weights);
        let max_matches = max_matches_arg(max_matches)?;
        let decision = self
            .read(py, |graph, index| index.decide(graph, &query, max_matches))
            .map_err(|e| engine_error(&e))?;
        Ok(decision_tuple(decision))
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (
        events, depth, work_cap, threshold, window_s, w_service, w_dependency, w_infrastructure, threads=1,
        max_matches=None,
    ))]
    fn decide_batch(
        &self,
        py: Python<'_>,
        events: &Bound<'_, PyAny>,
        depth: i64,
        work_cap: i64,
        threshold: f64,
        window_s: f64,
        w_service: f64,
        w_dependency: f64,
        w_infrastructure: f64,
        threads: i64,
        max_matches: Option<i64>,
    ) -> PyResult<Vec<DecisionTuple>> {
        let events = batch_events(events)?;
        let max_matches = max_matches_arg(max_matches)?;
        // A negative count is the engine's error too, not an OverflowError of the conversion.
        let threads =
            usize::try_from(threads).map_err(|_| engine_error(&EngineError::ThreadCount { value: threads }))?;
        let weights = (w_service, w_dependency, w_infrastructure);
        let query = settings(0, 0, 0.0, depth, work_cap, threshold, window_s, weights);
        let decisions = self
            .read(py, |graph, index| {
                index.decide_batch(graph, &events, &query, max_matches, threads)
            })
            .map_err(|e| engine_error(&e))?;
        Ok(decisions.into_iter().map(decision_tuple).collect())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("<IncidentIndex incidents={}>", self.__len__(py))
    }
}

/// A buffer of C `int`s (`array('i')`), copied out, with the buffer to write back through; an empty
/// array exposes no buffer, so it comes back as `None` with no values.
fn int32_buffer(py: Python<'_>, values: &Bound<'_, PyAny>, name: &str) -> PyResult<(Option<PyBuffer<i32>>, Vec<i32>)> {
    match PyBuffer::<i32>::get(values) {
        Ok(buffer) => {
            let copy = buffer.to_vec(py)?;
            Ok((Some(buffer), copy))
        }
        Err(_) if values.len().ok() == Some(0) => Ok((None, Vec::new())),
        Err(_) => Err(GraphError::new_err(format!(
            "{name} is not a buffer of 32-bit integers (array('i'))"
        ))),
    }
}

/// Writes `values` back through the buffer `int32_buffer` returned (nothing for an empty array).
fn write_back(py: Python<'_>, buffer: Option<PyBuffer<i32>>, values: &[i32]) -> PyResult<()> {
    buffer.map_or(Ok(()), |buffer| buffer.copy_from_slice(py, values))
}

/// `components(src, dst, parent, least)`: the snapshot's map components (see `nba_engine::components`).
/// All four are `array('i')`; `parent` and `least` (each node's own key on entry) are written in place.
#[pyfunction]
fn components(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    parent: &Bound<'_, PyAny>,
    least: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let (_, src) = int32_buffer(py, src, "src")?;
    let (_, dst) = int32_buffer(py, dst, "dst")?;
    let (parent_buffer, mut parent_values) = int32_buffer(py, parent, "parent")?;
    let (least_buffer, mut least_values) = int32_buffer(py, least, "least")?;
    py.detach(|| nba_engine::components(&src, &dst, &mut parent_values, &mut least_values))
        .map_err(|err| engine_error(&err))?;
    write_back(py, parent_buffer, &parent_values)?;
    write_back(py, least_buffer, &least_values)
}

/// `drop_edges_touching(src, dst, nodes, node_count)`: turns the edges touching `nodes` into
/// self-loops in `dst` (an `array('i')`, written in place) and returns how many changed.
#[pyfunction]
fn drop_edges_touching(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    nodes: Vec<i64>,
    node_count: usize,
) -> PyResult<usize> {
    let (_, src) = int32_buffer(py, src, "src")?;
    let (dst_buffer, mut dst_values) = int32_buffer(py, dst, "dst")?;
    let mut dead = vec![false; node_count];
    for node in nodes {
        let slot = usize::try_from(node).ok().and_then(|n| dead.get_mut(n));
        let Some(slot) = slot else {
            return Err(engine_error(&EngineError::UnknownNode {
                context: "nodes: ".to_owned(),
                id: node,
                nodes: node_count,
            }));
        };
        *slot = true;
    }
    let changed = py
        .detach(|| nba_engine::drop_edges_touching(&src, &mut dst_values, &dead))
        .map_err(|err| engine_error(&err))?;
    if changed > 0 {
        write_back(py, dst_buffer, &dst_values)?;
    }
    Ok(changed)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGraph>()?;
    m.add_class::<PyIncidentIndex>()?;
    m.add_function(wrap_pyfunction!(components, m)?)?;
    m.add_function(wrap_pyfunction!(drop_edges_touching, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
