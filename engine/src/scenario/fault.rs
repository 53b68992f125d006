//! A stage's `[[stage.fault]]` tables: crashes and slowdowns injected into a run.

use toml::Spanned;

use super::error::{Issue, Issues};
use super::model::{CrashTrigger, Fault};
use super::raw::RawFault;
use super::values::{exactly_one, int_in, offset_of, path, positive, start, us_to_ns};

/// One `[[stage.fault]]`; `base` is its path, e.g. `stage[2].fault[0]`.
pub(super) fn check(raw: &Spanned<RawFault>, base: &str, issues: &mut Issues) -> Option<Fault> {
    let f = raw.get_ref();
    let triggers = [
        ("crash_after_events", offset_of(&f.crash_after_events)),
        ("crash_at_us", offset_of(&f.crash_at_us)),
        ("slow_at_us", offset_of(&f.slow_at_us)),
    ];
    let trigger = exactly_one(&triggers, start(raw), base, "a fault", issues)?;
    let before = issues.len();
    let fault = if trigger == "slow_at_us" {
        slow_fault(f, start(raw), base, issues)
    } else {
        crash_fault(f, base, issues)
    };
    fault.filter(|_| issues.len() == before)
}

fn crash_fault(f: &RawFault, base: &str, issues: &mut Issues) -> Option<Fault> {
    if let Some(factor) = &f.factor {
        let message = "`factor` applies only to slow faults (with `slow_at_us`)";
        issues.push(Issue::new(start(factor), path(base, "factor"), message));
    }
    let trigger = match (&f.crash_after_events, &f.crash_at_us) {
        (Some(n), _) => issues
            .take(int_in(n, base, "crash_after_events", 1, u64::MAX))
            .map(CrashTrigger::AfterEvents),
        (None, Some(at)) => issues
            .take(us_to_ns(at, base, "crash_at_us", 0))
            .map(CrashTrigger::AtNs),
        (None, None) => None,
    };
    let restart_after_ns = match &f.restart_after_us {
        Some(d) => Some(issues.take(us_to_ns(d, base, "restart_after_us", 0))?),
        None => None,
    };
    Some(Fault::Crash {
        trigger: trigger?,
        restart_after_ns,
    })
}

fn slow_fault(f: &RawFault, table: usize, base: &str, issues: &mut Issues) -> Option<Fault> {
    if let Some(restart) = &f.restart_after_us {
        let message =
            "`restart_after_us` applies only to crash faults (with `crash_after_events` or `crash_at_us`)";
        issues.push(Issue::new(
            start(restart),
            path(base, "restart_after_us"),
            message,
        ));
    }
    let at_ns = f
        .slow_at_us
        .as_ref()
        .and_then(|at| issues.take(us_to_ns(at, base, "slow_at_us", 0)));
    let factor = match &f.factor {
        Some(factor) => issues.take(positive(factor, base, "factor")),
        None => {
            let message = "a slow fault needs `factor` (a finite number greater than 0)";
            issues.push(Issue::new(table, path(base, "factor"), message));
            None
        }
    };
    Some(Fault::Slow {
        at_ns: at_ns?,
        factor: factor?,
    })
}
