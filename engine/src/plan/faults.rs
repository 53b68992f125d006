//! Crash faults: when each one fires and what the stage is told, the one rule both runtimes
//! use.
//!
//! Every crash fault of a stage counts, in the scenario's order. A fault fires once. A
//! `crash_after_events = N` fault fires after the step in which the stage's progress (events
//! handled or emitted, whichever is larger, summed over every incarnation of the stage)
//! reaches `N`; a `crash_at_us` fault fires at its time (or, if the stage is in the middle
//! of a service then, when that service ends). A crash of a stage that is already down
//! does nothing, but still uses up its fault.

use crate::protocol::CancelReason;
use crate::scenario::model::{CrashTrigger, Fault, StageDef};

/// One crash fault of a stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashFault {
    /// What sets it off.
    pub trigger: CrashTrigger,
    /// When the stage comes back after it, ns (`restart_after_us`).
    pub restart_after_ns: Option<u64>,
    fired: bool,
}

impl CrashFault {
    /// The reason the crashed stage stops with.
    pub fn reason(&self) -> CancelReason {
        match self.trigger {
            CrashTrigger::AfterEvents(n) => {
                CancelReason::error(format!("injected crash after {n} events"))
            }
            CrashTrigger::AtNs(t) => CancelReason::error(format!("injected crash at {t} ns")),
        }
    }

    /// `true` once it has fired.
    pub fn fired(&self) -> bool {
        self.fired
    }
}

/// The crash faults of one stage, in the scenario's order.
///
/// ```
/// use flowbench_engine::plan::Crashes;
/// use flowbench_engine::scenario::CrashTrigger;
/// let mut c = Crashes::new(vec![
///     (CrashTrigger::AfterEvents(10), Some(1_000)),
///     (CrashTrigger::AtNs(5_000), None),
///     (CrashTrigger::AfterEvents(20), None),
/// ]);
/// assert_eq!(c.timers().collect::<Vec<_>>(), vec![(1, 5_000)]);
/// assert_eq!(c.due_after_events(9), None);
/// let first = c.due_after_events(25).unwrap();
/// assert_eq!(first, 0); // the earliest unfired fault whose count is reached
/// assert_eq!(c.get(first).unwrap().restart_after_ns, Some(1_000));
/// assert_eq!(c.due_after_events(25), Some(2));
/// assert_eq!(c.due_after_events(25), None);
/// assert!(c.fire_at(1));
/// assert!(!c.fire_at(1)); // a fault fires once
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Crashes {
    faults: Vec<CrashFault>,
}

impl Crashes {
    /// Crash faults from `(trigger, restart_after_ns)` pairs.
    pub fn new(faults: Vec<(CrashTrigger, Option<u64>)>) -> Self {
        Crashes {
            faults: faults
                .into_iter()
                .map(|(trigger, restart_after_ns)| CrashFault {
                    trigger,
                    restart_after_ns,
                    fired: false,
                })
                .collect(),
        }
    }

    /// The crash faults of a scenario stage.
    pub fn of(st: &StageDef) -> Self {
        Crashes::new(
            st.faults
                .iter()
                .filter_map(|f| match *f {
                    Fault::Crash {
                        trigger,
                        restart_after_ns,
                    } => Some((trigger, restart_after_ns)),
                    Fault::Slow { .. } => None,
                })
                .collect(),
        )
    }

    /// Every fault, in order.
    pub fn get_all(&self) -> impl Iterator<Item = &CrashFault> {
        self.faults.iter()
    }

    /// `true` if the stage has no crash fault.
    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }

    /// Fault `i`.
    pub fn get(&self, i: usize) -> Option<&CrashFault> {
        self.faults.get(i)
    }

    /// `(fault index, time ns)` of every `crash_at_us` fault, for the runtime's timers.
    pub fn timers(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.faults
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c.trigger {
                CrashTrigger::AtNs(t) => Some((i, t)),
                CrashTrigger::AfterEvents(_) => None,
            })
    }

    /// After a step that left the stage's progress at `progress`: the first unfired
    /// `crash_after_events` fault whose count is reached, now marked fired.
    pub fn due_after_events(&mut self, progress: u64) -> Option<usize> {
        let i = self.faults.iter().position(|c| {
            !c.fired && matches!(c.trigger, CrashTrigger::AfterEvents(n) if progress >= n)
        })?;
        self.faults[i].fired = true;
        Some(i)
    }

    /// The timer of fault `i` has gone off: marks it fired; `false` if it already had.
    pub fn fire_at(&mut self, i: usize) -> bool {
        match self.faults.get_mut(i) {
            Some(c) if !c.fired => {
                c.fired = true;
                true
            }
            _ => false,
        }
    }

    /// Adds a fault (a crash asked for while the run goes on); returns its index.
    pub fn push(&mut self, trigger: CrashTrigger, restart_after_ns: Option<u64>) -> usize {
        self.faults.push(CrashFault {
            trigger,
            restart_after_ns,
            fired: false,
        });
        self.faults.len() - 1
    }

    /// `true` if some fault can still fire.
    pub fn any_left(&self) -> bool {
        self.faults.iter().any(|c| !c.fired)
    }
}
