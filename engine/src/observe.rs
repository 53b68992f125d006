//! Hooks through which a runtime sees what happens inside a stage core.
//!
//! The sim folds these into its trace hash and trace file; the threads runtime passes
//! [`NoObserver`], whose empty methods compile away.

use crate::protocol::SubRef;

/// Why events were dropped by a producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropCause {
    /// The buffer was full (`buffer_keep` chose these events).
    BufferFull,
    /// The partition hash said "drop".
    Hash,
}

impl DropCause {
    /// The name used in traces and summaries.
    pub fn name(self) -> &'static str {
        match self {
            DropCause::BufferFull => "buffer_full",
            DropCause::Hash => "hash",
        }
    }
}

/// Why events were lost (taken out of the pipeline without being delivered or dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostCause {
    /// They arrived on a subscription that had already ended.
    Stale,
    /// They waited in a partition queue whose subscriber went away.
    PartitionCancelled,
    /// They were held by a stage (buffer, input queue) when it stopped or crashed.
    StageDown,
    /// A message carrying them could not be delivered (the receiver was gone).
    Undeliverable,
}

impl LostCause {
    /// The name used in traces and summaries.
    pub fn name(self) -> &'static str {
        match self {
            LostCause::Stale => "stale",
            LostCause::PartitionCancelled => "partition_cancelled",
            LostCause::StageDown => "stage_down",
            LostCause::Undeliverable => "undeliverable",
        }
    }
}

/// Receives a stage core's internal happenings, in the order they happen.
///
/// `I` is the stage's input event type, `O` its output event type. Every method has an
/// empty default.
pub trait Observer<I, O> {
    /// `handle_demand(n)` is about to be called.
    fn demand(&mut self, _n: u64) {}
    /// `handle_events` is about to be called on `events` received on `from`.
    fn handled(&mut self, _from: SubRef, _events: &[I]) {}
    /// The producer dropped `events`.
    fn dropped(&mut self, _cause: DropCause, _events: &[O]) {}
    /// Output events held by this stage were lost.
    fn lost_out(&mut self, _cause: LostCause, _events: &[O]) {}
    /// Input events that reached this stage on `from` were lost.
    fn lost_in(&mut self, _from: SubRef, _cause: LostCause, _events: &[I]) {}
}

/// An observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl<I, O> Observer<I, O> for NoObserver {}
