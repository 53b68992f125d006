//! Subscription options: demand bounds, cancel mode, ask mode, partition and selector.

use std::fmt;
use std::sync::Arc;

use crate::protocol::CancelReason;

/// GenStage's default `max_demand`.
pub const DEFAULT_MAX_DEMAND: u64 = 1000;

/// Validated demand bounds of one subscription: `max >= 1` and `min <= max - 1`.
///
/// ```
/// use flowbench_engine::Demand;
/// let d = Demand::new(10, Some(5)).unwrap();
/// assert_eq!((d.max(), d.min()), (10, 5));
/// assert_eq!(Demand::new(1000, None).unwrap().min(), 500); // default: max / 2
/// let err = Demand::new(10, Some(10)).unwrap_err();
/// assert_eq!(err.to_string(), "min_demand must be at most 9 (max_demand - 1), got 10");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Demand {
    max: u64,
    min: u64,
}

impl Default for Demand {
    fn default() -> Self {
        Demand {
            max: DEFAULT_MAX_DEMAND,
            min: DEFAULT_MAX_DEMAND / 2,
        }
    }
}

impl Demand {
    /// Checks the bounds; `min = None` means `max / 2` (integer division), as in GenStage.
    pub fn new(max: u64, min: Option<u64>) -> Result<Self, DemandError> {
        if max == 0 {
            return Err(DemandError::MaxZero);
        }
        let min = min.unwrap_or(max / 2);
        if min > max - 1 {
            return Err(DemandError::MinTooLarge { max, min });
        }
        Ok(Demand { max, min })
    }

    /// `max_demand`: the most events a subscription has outstanding.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// `min_demand`: the consumer asks again when its outstanding demand falls to this.
    pub fn min(&self) -> u64 {
        self.min
    }

    /// The size of the chunks an incoming batch is cut into: `max - min` (at least 1).
    pub fn chunk(&self) -> u64 {
        self.max - self.min
    }
}

/// A demand setting outside the allowed range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DemandError {
    /// `max_demand = 0`.
    MaxZero,
    /// `min_demand > max_demand - 1`.
    MinTooLarge {
        /// The `max_demand` given.
        max: u64,
        /// The `min_demand` given.
        min: u64,
    },
}

impl fmt::Display for DemandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DemandError::MaxZero => f.write_str("max_demand must be at least 1, got 0"),
            DemandError::MinTooLarge { max, min } => write!(
                f,
                "min_demand must be at most {} (max_demand - 1), got {min}",
                max - 1
            ),
        }
    }
}

impl std::error::Error for DemandError {}

/// Whether a consumer stops when one of its subscriptions ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CancelMode {
    /// Always stop (the default).
    #[default]
    Permanent,
    /// Stop unless the reason is `normal` or `shutdown`.
    Transient,
    /// Never stop because of this subscription.
    Temporary,
}

impl CancelMode {
    /// Does a subscription ending for `reason` stop its consumer?
    pub fn stops_on(self, reason: &CancelReason) -> bool {
        match self {
            CancelMode::Permanent => true,
            CancelMode::Transient => !reason.is_orderly(),
            CancelMode::Temporary => false,
        }
    }

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            CancelMode::Permanent => "permanent",
            CancelMode::Transient => "transient",
            CancelMode::Temporary => "temporary",
        }
    }
}

/// Who sends asks on a subscription.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AskMode {
    /// The consumer asks by the algorithm of `SEMANTICS.md` (the default).
    #[default]
    Automatic,
    /// The consumer's code asks explicitly; one incoming batch is one call.
    Manual,
}

/// A broadcast filter: a consumer sees only the events its selector accepts.
pub struct Selector<T>(Arc<dyn Fn(&T) -> bool + Send + Sync>);

impl<T> Selector<T> {
    /// Wraps a predicate.
    pub fn new(f: impl Fn(&T) -> bool + Send + Sync + 'static) -> Self {
        Selector(Arc::new(f))
    }

    /// Does the consumer want `event`?
    #[inline]
    pub fn accepts(&self, event: &T) -> bool {
        (self.0)(event)
    }
}

impl<T> Clone for Selector<T> {
    fn clone(&self) -> Self {
        Selector(Arc::clone(&self.0))
    }
}

impl<T> fmt::Debug for Selector<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Selector(..)")
    }
}

/// Everything a consumer says when it subscribes to a producer.
///
/// ```
/// use flowbench_engine::{SubscribeOpts, Demand, CancelMode};
/// let opts = SubscribeOpts::<u64>::default()
///     .demand(Demand::new(10, Some(5)).unwrap())
///     .cancel(CancelMode::Transient)
///     .partition(2);
/// assert_eq!(opts.demand.max(), 10);
/// assert_eq!(opts.partition, Some(2));
/// ```
#[derive(Debug)]
pub struct SubscribeOpts<T> {
    /// `max_demand` and `min_demand`.
    pub demand: Demand,
    /// What ending this subscription does to the consumer.
    pub cancel: CancelMode,
    /// Automatic or manual asking.
    pub mode: AskMode,
    /// The partition to take (partition dispatcher only).
    pub partition: Option<u32>,
    /// The filter (broadcast dispatcher only).
    pub selector: Option<Selector<T>>,
}

impl<T> Default for SubscribeOpts<T> {
    fn default() -> Self {
        SubscribeOpts {
            demand: Demand::default(),
            cancel: CancelMode::default(),
            mode: AskMode::default(),
            partition: None,
            selector: None,
        }
    }
}

impl<T> Clone for SubscribeOpts<T> {
    fn clone(&self) -> Self {
        SubscribeOpts {
            demand: self.demand,
            cancel: self.cancel,
            mode: self.mode,
            partition: self.partition,
            selector: self.selector.clone(),
        }
    }
}

impl<T> SubscribeOpts<T> {
    /// Sets the demand bounds.
    pub fn demand(mut self, demand: Demand) -> Self {
        self.demand = demand;
        self
    }

    /// Sets the cancel mode.
    pub fn cancel(mut self, cancel: CancelMode) -> Self {
        self.cancel = cancel;
        self
    }

    /// Sets the ask mode.
    pub fn mode(mut self, mode: AskMode) -> Self {
        self.mode = mode;
        self
    }

    /// Names the partition to take.
    pub fn partition(mut self, partition: u32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets a broadcast selector.
    pub fn selector(mut self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> Self {
        self.selector = Some(Selector::new(f));
        self
    }
}
