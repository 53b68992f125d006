//! The messages stages exchange, modelled on GenStage's producer/consumer protocol.
//!
//! A subscription is a *link* between one producer and one consumer. Consumers talk to
//! producers with [`Upstream`] messages (subscribe, ask, cancel); producers talk to
//! consumers with [`Downstream`] messages (events, cancel). Every message names the
//! subscription it belongs to with a [`SubRef`]: the link plus a generation, so that a
//! message from an earlier incarnation of a subscription (before a crash and restart) is
//! recognised as stale instead of being mistaken for a current one.
//!
//! This module holds plain data only: no clocks, threads or queues.

use std::fmt;
use std::sync::Arc;

/// Index of a stage in its topology.
pub type StageId = u32;

/// Index of a subscription (producer → consumer link) in its topology.
pub type LinkId = u32;

/// One incarnation of a subscription: the link and how many times it was (re)subscribed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubRef {
    /// The link this subscription runs on.
    pub link: LinkId,
    /// Incremented each time the consumer subscribes again on the same link.
    pub gen: u32,
}

impl SubRef {
    /// The first incarnation of a link.
    pub const fn first(link: LinkId) -> Self {
        SubRef { link, gen: 0 }
    }
}

/// Why a subscription ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// A bounded producer ran out, or a stage finished its work.
    Normal,
    /// An orderly shutdown requested from outside the stage.
    Shutdown,
    /// The producer refused the subscription (see [`Rejection`]); the producer keeps running.
    Rejected(Rejection),
    /// The peer crashed or a user callback panicked; the text says why.
    Error(Arc<str>),
}

impl CancelReason {
    /// Builds an [`CancelReason::Error`] from any text.
    pub fn error(text: impl Into<String>) -> Self {
        CancelReason::Error(Arc::from(text.into()))
    }

    /// `true` for `normal` and `shutdown`, the reasons a `transient` subscription survives.
    pub fn is_orderly(&self) -> bool {
        matches!(self, CancelReason::Normal | CancelReason::Shutdown)
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelReason::Normal => f.write_str("normal"),
            CancelReason::Shutdown => f.write_str("shutdown"),
            CancelReason::Rejected(r) => write!(f, "rejected: {r}"),
            CancelReason::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// Why a producer refused a subscription. The producer and its other consumers go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Broadcast: this consumer is already subscribed to the producer.
    AlreadySubscribed,
    /// Partition dispatcher: the subscription named no partition.
    PartitionMissing,
    /// Partition dispatcher: the partition is not in `0..partitions`.
    PartitionOutOfRange {
        /// The partition asked for.
        partition: u32,
        /// The number of partitions the producer has.
        partitions: u32,
    },
    /// Partition dispatcher: another live subscription holds the partition.
    PartitionTaken {
        /// The partition asked for.
        partition: u32,
    },
    /// A selector was given to a producer whose dispatcher is not broadcast.
    SelectorNotBroadcast,
    /// A partition was given to a producer whose dispatcher is not partition.
    PartitionNotPartitioned,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::AlreadySubscribed => f.write_str("already_subscribed"),
            Rejection::PartitionMissing => {
                f.write_str("the partition dispatcher needs a `partition` on every subscription")
            }
            Rejection::PartitionOutOfRange {
                partition,
                partitions,
            } => write!(
                f,
                "partition {partition} is out of range 0..={}",
                partitions.saturating_sub(1)
            ),
            Rejection::PartitionTaken { partition } => {
                write!(f, "partition {partition} is already taken")
            }
            Rejection::SelectorNotBroadcast => {
                f.write_str("a selector applies only to a broadcast dispatcher")
            }
            Rejection::PartitionNotPartitioned => {
                f.write_str("a partition applies only to a partition dispatcher")
            }
        }
    }
}

/// A message from a consumer to its producer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// Opens the subscription; the options come from the link.
    Subscribe {
        /// The subscription being opened.
        sub: SubRef,
    },
    /// Asks for `n` more events.
    Ask {
        /// The subscription asking.
        sub: SubRef,
        /// How many events.
        n: u64,
    },
    /// The consumer ends the subscription.
    Cancel {
        /// The subscription ending.
        sub: SubRef,
        /// Why.
        reason: CancelReason,
    },
    /// A producer's note to itself: a broadcast selector rejected `n` events for this
    /// subscription, so its demand is given back. Handled like an ask, but not sent by the
    /// consumer (GenStage sends the producer an `ask` message for this).
    Refund {
        /// The subscription whose demand comes back.
        sub: SubRef,
        /// How many events were rejected.
        n: u64,
    },
    /// A producer's note to itself: its partition hash dropped `n` events its source made
    /// for demand that is still open (dropped events use no demand), so the source is
    /// asked for `n` more. `sub` only routes the note (any live subscription of the
    /// producer). Without it a bounded pipeline could stall with consumers still waiting.
    Resupply {
        /// A live subscription of the producer, for routing.
        sub: SubRef,
        /// How many events were dropped.
        n: u64,
    },
}

impl Upstream {
    /// The subscription the message belongs to.
    pub fn sub(&self) -> SubRef {
        match *self {
            Upstream::Subscribe { sub }
            | Upstream::Ask { sub, .. }
            | Upstream::Cancel { sub, .. }
            | Upstream::Refund { sub, .. }
            | Upstream::Resupply { sub, .. } => sub,
        }
    }
}

/// A message from a producer to one of its consumers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Downstream<T> {
    /// A batch of events, never more than the subscription's outstanding demand.
    Events {
        /// The subscription the batch travels on.
        sub: SubRef,
        /// The events, in dispatch order.
        batch: Vec<T>,
    },
    /// The producer ends the subscription (after its last batch when `normal`).
    Cancel {
        /// The subscription ending.
        sub: SubRef,
        /// Why.
        reason: CancelReason,
    },
}

impl<T> Downstream<T> {
    /// The subscription the message belongs to.
    pub fn sub(&self) -> SubRef {
        match self {
            Downstream::Events { sub, .. } | Downstream::Cancel { sub, .. } => *sub,
        }
    }
}

/// A message a stage core asks its runtime to deliver.
#[derive(Debug, PartialEq, Eq)]
pub enum Outgoing<T> {
    /// To the producer end of `sub.link` (possibly this very stage, for a refund).
    Up(Upstream),
    /// To the consumer end of `sub.link`.
    Down(Downstream<T>),
}
