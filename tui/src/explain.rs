//! Trace records in plain words, for the log at the bottom of the view.

use flowbench_sim::Record;

use crate::source::State;
use crate::topo::Topo;

/// How serious a log line is (drawn with a marker as well as a colour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// The protocol at work.
    Normal,
    /// Something the user did.
    Change,
    /// Events dropped or lost, a crash.
    Bad,
}

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Virtual time, ns.
    pub t_ns: u64,
    /// The words.
    pub text: String,
    /// How serious it is.
    pub tone: Tone,
}

fn ids(r: &Record) -> String {
    match r.id_span() {
        Some((a, b)) if a == b => format!(" (id {a})"),
        Some((a, b)) if r.events.len() == 1 => format!(" (ids {a}..{b})"),
        Some((a, b)) => format!(" (ids {a}..{b}, in {} runs)", r.events.len()),
        None => String::new(),
    }
}

/// `1 event`, `2 events`.
pub fn plural(n: u64, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// `r` in plain words. `state` gives the subscription's demand bounds (as they are now),
/// to say why a consumer asks.
pub fn explain(r: &Record, topo: &Topo, state: &State) -> LogLine {
    let s = |x: &Option<String>| x.clone().unwrap_or_else(|| "?".into());
    let n = r.n.unwrap_or(0);
    let mut tone = Tone::Normal;
    let text = match r.kind.as_str() {
        "subscribe" => format!("{} subscribes to {}", s(&r.from), s(&r.to)),
        "ask" => {
            let (c, p) = (s(&r.from), s(&r.to));
            let bounds = topo
                .link(&p, &c)
                .and_then(|l| state.links.get(l))
                .and_then(|l| Some((l.max_demand?, l.min_demand?)));
            match bounds {
                Some((max, min)) if n < max => format!(
                    "{c} asks {p} for {n}: pending {} <= min {min}, so it tops up to max {max}",
                    max - n
                ),
                Some((max, _)) if n == max => {
                    format!("{c} asks {p} for {n}: its whole max_demand, nothing was pending")
                }
                _ => format!("{c} asks {p} for {n} more events"),
            }
        }
        "events" => format!(
            "{} sends {} to {}{}",
            s(&r.from),
            plural(n, "event"),
            s(&r.to),
            ids(r)
        ),
        "handle" => format!(
            "{} handled {} from {}{}",
            s(&r.stage),
            plural(n, "event"),
            s(&r.from),
            ids(r)
        ),
        "demand" => format!(
            "{} handle_demand({n}): asked for {n} more, it makes up to {n} events",
            s(&r.stage)
        ),
        "cancel" => format!(
            "{} cancels the subscription with {}: {}",
            s(&r.from),
            s(&r.to),
            s(&r.reason)
        ),
        "refund" => format!(
            "{}'s selector rejected {}: its demand goes back to the producer",
            s(&r.from),
            plural(n, "event")
        ),
        "resupply" => format!(
            "{}'s partition hash dropped {}; it asks its source for as many again",
            s(&r.from),
            plural(n, "event")
        ),
        "drop" => {
            tone = Tone::Bad;
            let why = match r.cause.as_deref() {
                Some("buffer_full") => {
                    "its buffer is full (buffer_size), and buffer_keep says which go"
                }
                Some("hash") => "the partition hash sent them to no partition",
                _ => "",
            };
            format!(
                "! {} dropped {}{}: {why}",
                s(&r.stage),
                plural(n, "event"),
                ids(r)
            )
        }
        "lost" => {
            tone = Tone::Bad;
            format!(
                "! {} lost {}{} ({})",
                s(&r.stage),
                plural(n, "event"),
                ids(r),
                s(&r.cause).replace('_', " ")
            )
        }
        "arrive" => format!(
            "{} received {} from outside{}",
            s(&r.stage),
            plural(n, "event"),
            ids(r)
        ),
        "forward" => format!(
            "{} switches to forward: the asks it held are served now",
            s(&r.stage)
        ),
        "shutdown" => format!(
            "{}'s source is exhausted: it hands out what it holds, then stops",
            s(&r.stage)
        ),
        "crash" => {
            tone = Tone::Bad;
            format!(
                "! {} crashed ({}): what it held is lost, its subscriptions are cancelled",
                s(&r.stage),
                s(&r.reason)
            )
        }
        "restart" => {
            tone = Tone::Change;
            format!(
                "{} restarts: a fresh incarnation subscribes again",
                s(&r.stage)
            )
        }
        "retune" => {
            tone = Tone::Change;
            format!(
                "you set {} -> {} to max_demand {}, min_demand {}",
                s(&r.from),
                s(&r.to),
                r.max_demand.unwrap_or(0),
                r.min_demand.unwrap_or(0)
            )
        }
        "slow" => {
            tone = Tone::Change;
            format!(
                "you changed {}'s service times by x{}",
                s(&r.stage),
                r.factor.unwrap_or(1.0)
            )
        }
        other => format!("{other} record"),
    };
    LogLine {
        t_ns: r.t_ns,
        text,
        tone,
    }
}
