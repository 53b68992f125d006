//! # flowbench-engine
//!
//! The stage engine of flowbench: GenStage's demand-driven protocol as a sans-IO state
//! machine ([`StageCore`]), the three dispatchers, the producer buffer, the scenario model,
//! and a threads runtime that runs a topology's stages as tasks on a pool of worker threads
//! (or each on a thread of its own).
//!
//! **Should I be using this crate?** Use it to build a pipeline in Rust code and run it on
//! threads, or to drive stage cores from your own scheduler (the `flowbench-sim` crate does
//! that in virtual time). To run scenario files from the command line, use the `flowbench`
//! binary instead.
//!
//! The rules the engine implements are those of GenStage 1.3, written down in the
//! project's `SEMANTICS.md`; module [`core`] says where flowbench departs from them.

pub mod buffer;
pub mod core;
pub mod demand;
pub mod dispatcher;
#[cfg(feature = "scenario")]
pub mod fifo;
#[cfg(not(flowbench_loom))]
pub mod flow;
pub mod hash;
pub mod logic;
pub mod observe;
pub mod opts;
#[cfg(feature = "scenario")]
pub mod plan;
pub mod protocol;
pub mod report;
#[cfg(feature = "scenario")]
pub mod scenario;
mod sync;
#[cfg(not(flowbench_loom))]
pub mod threads;
/// Under `--cfg flowbench_loom` only the runtime's synchronisation primitives are built,
/// for the loom models (`threads/loom_models.rs`).
#[cfg(flowbench_loom)]
pub mod threads {
    #[path = "mailbox.rs"]
    mod mailbox;
    #[path = "probe.rs"]
    mod probe;
    #[path = "sched.rs"]
    #[allow(dead_code)]
    mod sched;
    #[path = "watch.rs"]
    mod watch;
    pub use mailbox::Mailbox;
    pub use probe::{ProbeReading, StageProbe};
    #[cfg(test)]
    #[path = "loom_models.rs"]
    mod loom_models;
}

pub use crate::buffer::{Buffer, Keep};
pub use crate::core::{
    CoreConfig, DemandMode, Effects, InLinkConfig, InLinkStats, Input, Logic, OutLinkConfig,
    OutLinkStats, OutputConfig, StageCore, StageKind, StageStats, Status,
};
pub use crate::demand::{AutoAsk, PoolAsk};
pub use crate::dispatcher::{Dispatcher, DispatcherSpec, OnMissing, PartitionFn};
pub use crate::logic::{Chunk, Consumer, Ctx, Emit, Job, Producer, ProducerConsumer};
pub use crate::observe::{DropCause, LostCause, NoObserver, Observer};
pub use crate::opts::{AskMode, CancelMode, Demand, DemandError, Selector, SubscribeOpts};
pub use crate::protocol::{
    CancelReason, Downstream, LinkId, Outgoing, Rejection, StageId, SubRef, Upstream,
};
#[cfg(feature = "scenario")]
pub use crate::scenario::{Scenario, ScenarioError};

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
