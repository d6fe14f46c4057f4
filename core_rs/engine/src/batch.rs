//! Deciding many events in one call, optionally on several threads.
//!
//! Algorithm: every event is checked first (node, then severity, in input order), then the limits;
//! then the calling thread and `threads - 1` scoped threads claim runs of at most 64 events from a
//! shared counter and decide them against the same index; the decisions are reassembled in input
//! order. No event sees another's
//! outcome: each is scored against the incidents as they stand when the call starts.
//!
//! Cost: the sum of the single decisions, divided over the threads; the graph and the index are
//! only read, so the threads share them without locks. A worker thread hands its walks' scratch
//! marks to the next call's workers when it ends, so only the first multi-threaded call pays for
//! them. Results never depend on `threads`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::decide::{check_severity, DecideQuery, Decision};
use crate::error::EngineError;
use crate::graph::Graph;
use crate::index::IncidentIndex;
use crate::walk::{release_thread_marks, Limits};

/// One event of a batch: its node, severity rank and arrival time in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchEvent {
    pub node: i64,
    pub severity: i64,
    pub time: f64,
}

impl IncidentIndex {
    /// Decides every event as `decide` would (`max_matches` included), the scoring settings taken
    /// from `settings` (its `node`, `severity` and `time` are ignored), the answers in input order.
    ///
    /// # Errors
    /// `ThreadCount` when `threads` is 0, then `UnknownNode` or `Severity` naming the event, then
    /// `NegativeLimit`; nothing is decided when an argument is wrong.
    pub fn decide_batch(
        &self,
        graph: &Graph,
        events: &[BatchEvent],
        settings: &DecideQuery,
        max_matches: Option<usize>,
        threads: usize,
    ) -> Result<Vec<Decision>, EngineError> {
        if threads == 0 {
            return Err(EngineError::ThreadCount { value: 0 });
        }
        let mut nodes = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let context = format!("events[{i}]: ");
            nodes.push(graph.node_id(event.node, &context)?);
            check_severity(event.severity, &context)?;
        }
        let limits = Limits::new(settings.depth, settings.work_cap)?;

        let decide_one = |(event, node): (&BatchEvent, &u32)| {
            let query = DecideQuery {
                node: event.node,
                severity: event.severity,
                time: event.time,
                ..*settings
            };
            self.decide_checked(graph, &query, *node, limits, max_matches)
        };
        let threads = threads.min(events.len()).max(1);
        if threads == 1 {
            return Ok(events.iter().zip(&nodes).map(decide_one).collect());
        }

        // Workers claim small runs of events from a shared counter, so a burst of expensive
        // events (a storm behind a core switch) is spread over every thread instead of stalling
        // the one that owns its contiguous share; each run's decisions land in their own slots.
        let next = AtomicUsize::new(0);
        let run = (events.len() / (threads * 16)).clamp(1, 64);
        let slots: Vec<Mutex<Option<Vec<Decision>>>> =
            (0..events.len().div_ceil(run)).map(|_| Mutex::new(None)).collect();
        let work = || loop {
            let claimed = next.fetch_add(1, Ordering::Relaxed);
            if claimed >= slots.len() {
                break;
            }
            let range = claimed * run..((claimed + 1) * run).min(events.len());
            let part: Vec<Decision> = events[range.clone()]
                .iter()
                .zip(&nodes[range])
                .map(decide_one)
                .collect();
            *slots[claimed].lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(part);
        };
        let outcome = std::thread::scope(|scope| {
            let handles: Vec<_> = (1..threads)
                .map(|_| {
                    scope.spawn(|| {
                        work();
                        release_thread_marks();
                    })
                })
                .collect();
            work();
            handles
                .into_iter()
                .map(std::thread::ScopedJoinHandle::join)
                .collect::<Result<Vec<()>, _>>()
        });
        if let Err(payload) = outcome {
            // A panicking worker is a bug; carry its panic on to the caller unchanged.
            std::panic::resume_unwind(payload);
        }
        let mut decisions = Vec::with_capacity(events.len());
        for slot in slots {
            let part = slot.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            decisions.extend(part.unwrap_or_default());
        }
        Ok(decisions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::Weights;

    #[test]
    fn batches_report_work_cap_hits_per_event_in_input_order_for_any_thread_count() {
        // A star: service 0 depended on by 1..=20; service 21 alone.
        let n = 22;
        let src: Vec<i64> = vec![0; 20];
        let dst: Vec<i64> = (1..=20).collect();
        let g = Graph::build(&vec![0; n], &src, &dst, &[0; 20], &[-1; 20]).unwrap();
        let mut index = IncidentIndex::new();
        index.add_incident(&g, 5, 3, None, &[3]).unwrap();
        let settings = DecideQuery {
            node: 0,
            severity: 0,
            time: 0.0,
            depth: 5,
            work_cap: 10,
            threshold: 0.0,
            window_s: 600.0,
            weights: Weights {
                service: 0.8,
                dependency: 0.6,
                infrastructure: 0.4,
            },
        };
        let events: Vec<BatchEvent> = [0, 21, 3, 0, 21]
            .iter()
            .map(|&node| BatchEvent {
                node,
                severity: 3,
                time: 1.0,
            })
            .collect();
        let one = index.decide_batch(&g, &events, &settings, None, 1).unwrap();
        assert_eq!(
            one.iter().map(|d| d.capped).collect::<Vec<_>>(),
            vec![true, false, false, true, false]
        );
        assert_eq!(one[2].matches[0].candidate, 5);
        for threads in [2, 3, 64] {
            assert_eq!(index.decide_batch(&g, &events, &settings, None, threads).unwrap(), one);
        }
        let mut bad = events.clone();
        bad[3].severity = 9;
        assert_eq!(
            index
                .decide_batch(&g, &bad, &settings, None, 2)
                .unwrap_err()
                .to_string(),
            "events[3]: severity 9 is outside 0..3"
        );
        assert_eq!(
            index
                .decide_batch(&g, &events, &settings, None, 0)
                .unwrap_err()
                .to_string(),
            "threads must be >= 1, got 0"
        );
    }
}
