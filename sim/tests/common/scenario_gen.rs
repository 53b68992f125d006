//! A swarm-style generator of whole scenarios for the property tests
//! (`tests/properties.rs`).
//!
//! A generated [`Case`] is a scenario **TOML text** (so every case is also a replayable
//! file) plus the simulator options it runs with. The text is built from a seed-driven
//! plan: the seed draws the topology (1–3 producers, 0–2 layers of producer-consumers,
//! 1–8 consumers and consumer pools) and every setting, and a set of swarm [`Features`]
//! switches whole families of settings on or off (faults, latency, push sources, …), so
//! that most cases exercise only a few features at once and proptest can shrink a failure
//! by switching features off. Event counts stay small (at most 2 000 per source) so that
//! a case takes milliseconds.
//!
//! The generator only writes valid scenarios (every partition taken exactly once, no
//! duplicate subscription, acyclic, selectors only on broadcast, …); the tests assert that
//! each text parses, so a generator bug shows up as such.
//!
//! This module never runs anything: it only writes text.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::fmt::{self, Write as _};

use flowbench_engine::hash::SplitMix64;
use proptest::prelude::*;

/// The most events one source emits in a generated scenario.
pub const MAX_EVENTS_PER_SOURCE: u64 = 2_000;

/// Which family of scenarios a property draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Every feature, faults included.
    Full,
    /// No faults, and no subscription that stops its consumer before its producers are
    /// done (a stage with several inputs cancels `transient` or `temporary`): a finite
    /// pipeline of this kind must drain.
    Live,
}

/// Swarm switches: each enables one family of settings. proptest shrinks them towards
/// `false`, so a minimal failing case names the features it needs.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Features {
    /// Layers of producer-consumers between the producers and the consumers.
    pub layers: bool,
    /// Push sources (`poisson`, `bursts`, `script`).
    pub push: bool,
    /// `counter` sources and event limits (`SimOptions::events`).
    pub limits: bool,
    /// Crashes and slowdowns (only with [`Profile::Full`]).
    pub faults: bool,
    /// Crashed stages restart (with `faults`).
    pub restarts: bool,
    /// Link latency.
    pub latency: bool,
    /// `cores = K`.
    pub cores: bool,
    /// Service times (`per_event`, `per_batch`).
    pub service: bool,
    /// Broadcast selectors.
    pub selectors: bool,
    /// `demand = "accumulate"` producers.
    pub accumulate: bool,
    /// Tiny buffers (0, 1, 2, …) and `buffer_keep`.
    pub tiny_buffers: bool,
    /// Many consumers (up to 8) and more inputs per stage.
    pub wide: bool,
}

impl Features {
    /// From twelve switches, in field order.
    pub fn from_bits(b: [bool; 12]) -> Self {
        Features {
            layers: b[0],
            push: b[1],
            limits: b[2],
            faults: b[3],
            restarts: b[4],
            latency: b[5],
            cores: b[6],
            service: b[7],
            selectors: b[8],
            accumulate: b[9],
            tiny_buffers: b[10],
            wide: b[11],
        }
    }
}

impl fmt::Debug for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on: Vec<&str> = [
            (self.layers, "layers"),
            (self.push, "push"),
            (self.limits, "limits"),
            (self.faults, "faults"),
            (self.restarts, "restarts"),
            (self.latency, "latency"),
            (self.cores, "cores"),
            (self.service, "service"),
            (self.selectors, "selectors"),
            (self.accumulate, "accumulate"),
            (self.tiny_buffers, "tiny_buffers"),
            (self.wide, "wide"),
        ]
        .iter()
        .filter(|(b, _)| *b)
        .map(|(_, n)| *n)
        .collect();
        write!(f, "[{}]", on.join(", "))
    }
}

/// One generated scenario and the options to run it with.
#[derive(Clone, PartialEq, Eq)]
pub struct Case {
    /// The seed the plan was drawn from.
    pub seed: u64,
    /// The swarm switches.
    pub features: Features,
    /// Event-count scale: 0 (≤ 20 per source), 1 (≤ 200), 2 (≤ 2 000).
    pub scale: u8,
    /// The profile the case was drawn for.
    pub profile: Profile,
    /// The scenario, as TOML.
    pub text: String,
    /// The root seed of the simulated run (`--seed`).
    pub sim_seed: u64,
    /// The per-producer event limit (`--events`), if any.
    pub events: Option<u64>,
}

/// One line (proptest's regression file); with `{:#?}` (its failure message) the
/// scenario text follows.
impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Case {{ seed: {}, features: {:?}, scale: {}, profile: {:?}, sim_seed: {}, events: {:?} }}",
            self.seed, self.features, self.scale, self.profile, self.sim_seed, self.events
        )?;
        if f.alternate() {
            write!(f, "\n--- scenario ---\n{}--- end ---", self.text)?;
        }
        Ok(())
    }
}

/// The proptest strategy of cases for `profile`.
pub fn cases(profile: Profile) -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        proptest::array::uniform12(any::<bool>()),
        0u8..3,
    )
        .prop_map(move |(seed, bits, scale)| {
            generate(seed, Features::from_bits(bits), scale, profile)
        })
}

// ---- the plan ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Producer,
    Pc,
    Consumer,
    Pool,
}

impl Kind {
    fn produces(self) -> bool {
        matches!(self, Kind::Producer | Kind::Pc)
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Producer => "producer",
            Kind::Pc => "producer_consumer",
            Kind::Consumer => "consumer",
            Kind::Pool => "consumer_pool",
        }
    }
}

struct StagePlan {
    name: String,
    kind: Kind,
    layer: usize,
    keys: Vec<String>,
    faults: Vec<Vec<String>>,
}

struct LinkPlan {
    producer: usize,
    consumer: usize,
    keys: Vec<String>,
}

struct Rng(SplitMix64);

impl Rng {
    /// `true` with probability `pct` %.
    fn chance(&mut self, pct: u64) -> bool {
        self.0.below(100) < pct
    }

    /// A value in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.0.below(hi - lo + 1)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.0.below(items.len() as u64) as usize]
    }

    /// A float in `[lo, hi)` with two decimals.
    fn float(&mut self, lo: f64, hi: f64) -> f64 {
        let steps = ((hi - lo) * 100.0) as u64;
        lo + self.0.below(steps.max(1)) as f64 / 100.0
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.0.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// A float as TOML (always with a decimal point).
fn toml_f64(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

/// A small service-time or latency distribution, as an inline table.
fn dist(r: &mut Rng, max_ns: u64) -> String {
    match r.0.below(4) {
        0 => format!("{{ dist = \"fixed\", ns = {} }}", r.range(0, max_ns)),
        1 => {
            let lo = r.range(0, max_ns / 2);
            let hi = lo + r.range(0, max_ns);
            format!("{{ dist = \"uniform\", min_ns = {lo}, max_ns = {hi} }}")
        }
        2 => format!(
            "{{ dist = \"exp\", mean_ns = {} }}",
            toml_f64(r.float(1.0, max_ns as f64 + 1.0))
        ),
        _ => format!(
            "{{ dist = \"lognormal\", median_ns = {}, sigma = {} }}",
            toml_f64(r.float(1.0, max_ns as f64 / 2.0 + 1.0)),
            toml_f64(r.float(0.0, 1.5))
        ),
    }
}

/// Builds the case drawn from `seed` with `features`, `scale` and `profile`.
pub fn generate(seed: u64, features: Features, scale: u8, profile: Profile) -> Case {
    let mut r = Rng(SplitMix64::new(seed));
    let f = Features {
        faults: features.faults && profile == Profile::Full,
        restarts: features.restarts && features.faults && profile == Profile::Full,
        ..features
    };
    let max_events = match scale {
        0 => 20,
        1 => 200,
        _ => MAX_EVENTS_PER_SOURCE,
    };

    // Stages, layer by layer: producers, producer-consumers, consumers.
    let mut stages: Vec<StagePlan> = Vec::new();
    let stage = |name: String, kind, layer| StagePlan {
        name,
        kind,
        layer,
        keys: Vec::new(),
        faults: Vec::new(),
    };
    let producers = r.range(1, 3) as usize;
    for i in 0..producers {
        stages.push(stage(format!("src{i}"), Kind::Producer, 0));
    }
    let layers = if f.layers { r.range(1, 2) as usize } else { 0 };
    for layer in 1..=layers {
        for i in 0..r.range(1, 2) {
            stages.push(stage(format!("mid{layer}_{i}"), Kind::Pc, layer));
        }
    }
    let consumers = if f.wide { r.range(1, 8) } else { r.range(1, 3) };
    for i in 0..consumers {
        let kind = if r.chance(25) {
            Kind::Pool
        } else {
            Kind::Consumer
        };
        let name = match kind {
            Kind::Pool => format!("pool{i}"),
            _ => format!("sink{i}"),
        };
        stages.push(stage(name, kind, layers + 1));
    }

    // Subscriptions: each consuming stage takes 1–3 distinct earlier producing stages.
    let mut links: Vec<LinkPlan> = Vec::new();
    for c in 0..stages.len() {
        if stages[c].kind == Kind::Producer {
            continue;
        }
        let mut candidates: Vec<usize> = (0..stages.len())
            .filter(|&p| stages[p].kind.produces() && stages[p].layer < stages[c].layer)
            .collect();
        r.shuffle(&mut candidates);
        let mut k = 1;
        if r.chance(if f.wide { 40 } else { 20 }) {
            k += 1;
            if r.chance(25) {
                k += 1;
            }
        }
        for &p in candidates.iter().take(k) {
            links.push(LinkPlan {
                producer: p,
                consumer: c,
                keys: Vec::new(),
            });
        }
    }
    // Every producing stage needs a subscriber.
    for p in 0..stages.len() {
        if !stages[p].kind.produces() || links.iter().any(|l| l.producer == p) {
            continue;
        }
        let later: Vec<usize> = (0..stages.len())
            .filter(|&c| stages[c].layer > stages[p].layer)
            .collect();
        let c = r.pick(&later);
        links.push(LinkPlan {
            producer: p,
            consumer: c,
            keys: Vec::new(),
        });
    }
    // File order of subscriptions: shuffled, so link ids do not follow the topology.
    r.shuffle(&mut links);

    // Events: disjoint id spaces per source, so an id names its source.
    let mut needs_limit = false;
    for (i, st) in stages.iter_mut().enumerate() {
        if st.kind != Kind::Producer {
            continue;
        }
        let base = (i as u64 + 1) * 10_000_000 + r.range(0, 100);
        let n = r.range(1, max_events);
        let choice = r.0.below(100);
        let source = if f.push && choice < 45 {
            match r.0.below(3) {
                0 => {
                    let rate = toml_f64(r.float(10_000.0, 5_000_000.0).round());
                    let batch = if r.chance(50) {
                        format!(", batch = {}", r.range(1, 10))
                    } else {
                        String::new()
                    };
                    let total = if f.limits && r.chance(30) {
                        needs_limit = true;
                        String::new()
                    } else {
                        format!(", total = {n}")
                    };
                    format!(
                        "source = {{ poisson = {{ rate_per_s = {rate}{batch}, first_id = {base}{total} }} }}"
                    )
                }
                1 => {
                    let count_n = r.range(1, 10);
                    let size = (n / count_n).max(1);
                    let count = if f.limits && r.chance(30) {
                        needs_limit = true;
                        String::new()
                    } else {
                        format!(", count = {count_n}")
                    };
                    format!(
                        "source = {{ bursts = {{ every_us = {}, size = {size}{count}, first_id = {base} }} }}",
                        r.range(1, 200)
                    )
                }
                _ => {
                    // Up to 5 disjoint id ranges in any order, at non-decreasing times.
                    let parts = r.range(1, 5);
                    let per = (n / parts).max(1);
                    let mut ranges: Vec<(u64, u64)> = (0..parts)
                        .map(|k| {
                            let first = base + k * (per + 10);
                            (first, first + r.range(0, per - 1))
                        })
                        .collect();
                    r.shuffle(&mut ranges);
                    let mut at = 0;
                    let entries: Vec<String> = ranges
                        .iter()
                        .map(|&(a, b)| {
                            at += r.range(0, 200);
                            format!("{{ at_us = {at}, first = {a}, last = {b} }}")
                        })
                        .collect();
                    format!("source = {{ script = [{}] }}", entries.join(", "))
                }
            }
        } else if f.limits && choice >= 80 {
            needs_limit = true;
            format!("source = {{ counter = {base} }}")
        } else {
            format!("source = {{ range = [{base}, {}] }}", base + n - 1)
        };
        st.keys.push(source);
        if f.tiny_buffers && r.chance(60) {
            let size = r.pick(&[0u64, 1, 2, 3, 5, 10, 100]);
            st.keys.push(format!("buffer_size = {size}"));
        } else if r.chance(15) {
            st.keys
                .push(format!("buffer_size = {}", r.range(1, 10_000)));
        }
        if f.accumulate && r.chance(40) {
            st.keys.push("demand = \"accumulate\"".to_string());
            if r.chance(50) {
                st.keys.push(format!("forward_at_us = {}", r.range(0, 300)));
            }
        } else if r.chance(10) {
            st.keys.push("demand = \"forward\"".to_string());
        }
    }
    let events = if needs_limit || (f.limits && r.chance(50)) {
        Some(r.range(1, max_events))
    } else {
        None
    };

    // Dispatchers, and the subscription keys that depend on them.
    for (p, st) in stages.iter_mut().enumerate() {
        if !st.kind.produces() {
            continue;
        }
        let subs: Vec<usize> = (0..links.len())
            .filter(|&l| links[l].producer == p)
            .collect();
        let roll = r.0.below(100);
        if roll < 50 || (roll >= 75 && subs.len() > 4) {
            let shuffle = r.chance(50);
            match r.0.below(4) {
                0 => st.keys.push("dispatcher = \"demand\"".to_string()),
                1 => st
                    .keys
                    .push(format!("shuffle_demands_on_first_dispatch = {shuffle}")),
                2 => {
                    st.keys.push("dispatcher = \"demand\"".to_string());
                    st.keys
                        .push(format!("shuffle_demands_on_first_dispatch = {shuffle}"));
                }
                _ => {}
            }
        } else if roll < 75 {
            st.keys.push("dispatcher = \"broadcast\"".to_string());
            for &l in &subs {
                if f.selectors && r.chance(50) {
                    let modulus = r.range(1, 4);
                    let remainder = r.range(0, modulus - 1);
                    let sel = if remainder == 0 && r.chance(50) {
                        format!("selector = {{ modulus = {modulus} }}")
                    } else {
                        format!("selector = {{ modulus = {modulus}, remainder = {remainder} }}")
                    };
                    links[l].keys.push(sel);
                }
            }
        } else {
            let partitions = subs.len() as u64;
            st.keys.push("dispatcher = \"partition\"".to_string());
            st.keys.push(format!("partitions = {partitions}"));
            match r.0.below(3) {
                0 => st.keys.push("hash = \"rem\"".to_string()),
                1 => st.keys.push("hash = \"mix\"".to_string()),
                _ => {}
            }
            if r.chance(50) {
                let modulus = partitions + r.range(0, 3);
                st.keys.push(format!("hash_modulus = {modulus}"));
            }
            let mut order: Vec<u64> = (0..partitions).collect();
            r.shuffle(&mut order);
            for (&l, part) in subs.iter().zip(order) {
                links[l].keys.push(format!("partition = {part}"));
            }
        }
        if st.kind == Kind::Pc {
            if f.tiny_buffers && r.chance(40) {
                let size = r.pick(&[0u64, 1, 2, 5, 50]);
                st.keys.push(format!("buffer_size = {size}"));
            } else if r.chance(10) {
                st.keys
                    .push(format!("buffer_size = {}", r.range(100, 10_000)));
            }
        }
        if f.tiny_buffers && r.chance(50) {
            let keep = r.pick(&["first", "last"]);
            st.keys.push(format!("buffer_keep = \"{keep}\""));
        }
    }

    // Demand, cancel mode and latency of every subscription.
    for l in 0..links.len() {
        let c = links[l].consumer;
        let inputs = links.iter().filter(|k| k.consumer == c).count();
        let mut keys = Vec::new();
        let max = match r.0.below(12) {
            0 => None,
            1 | 2 => Some(1),
            3 => Some(2),
            4 => Some(3),
            5 => Some(r.pick(&[4, 5, 8, 10])),
            6 => Some(r.pick(&[16, 50, 100])),
            7 => Some(1000),
            _ => Some(r.range(1, 64)),
        };
        if let Some(max) = max {
            keys.push(format!("max_demand = {max}"));
            match r.0.below(5) {
                0 => keys.push("min_demand = 0".to_string()),
                1 => keys.push(format!("min_demand = {}", max - 1)),
                2 => keys.push(format!("min_demand = {}", r.range(0, max - 1))),
                _ => {}
            }
        } else if r.chance(30) {
            keys.push(format!("min_demand = {}", r.range(0, 999)));
        }
        let modes: &[&str] = if profile == Profile::Live && inputs > 1 {
            &["transient", "temporary"]
        } else {
            &["", "permanent", "transient", "temporary"]
        };
        let mode = r.pick(modes);
        if !mode.is_empty() {
            keys.push(format!("cancel = \"{mode}\""));
        }
        if f.latency && r.chance(40) {
            keys.push(format!("latency = {}", dist(&mut r, 5_000)));
        }
        links[l].keys.extend(keys);
    }

    // Service times and faults.
    for st in &mut stages {
        if f.service {
            if r.chance(50) {
                st.keys.push(format!("per_event = {}", dist(&mut r, 1_000)));
            }
            if r.chance(30) {
                st.keys.push(format!("per_batch = {}", dist(&mut r, 2_000)));
            }
        }
        if f.faults && r.chance(25) {
            for _ in 0..r.range(1, 2) {
                let mut keys = Vec::new();
                if r.chance(70) {
                    if r.chance(60) {
                        keys.push(format!("crash_after_events = {}", r.range(1, max_events)));
                    } else {
                        keys.push(format!("crash_at_us = {}", r.range(0, 500)));
                    }
                    if f.restarts && r.chance(60) {
                        keys.push(format!("restart_after_us = {}", r.range(0, 300)));
                    }
                } else {
                    keys.push(format!("slow_at_us = {}", r.range(0, 500)));
                    keys.push(format!("factor = {}", toml_f64(r.float(0.1, 8.0))));
                }
                st.faults.push(keys);
            }
        }
    }

    // The text.
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# generated: seed {seed}, features {f:?}, scale {scale}"
    );
    let _ = writeln!(text, "name = \"prop-{seed:016x}\"");
    if f.cores {
        let _ = writeln!(text, "cores = {}", r.range(1, 3));
    }
    for st in &stages {
        let _ = writeln!(
            text,
            "\n[[stage]]\nname = \"{}\"\nkind = \"{}\"",
            st.name,
            st.kind.name()
        );
        for k in &st.keys {
            let _ = writeln!(text, "{k}");
        }
        for fault in &st.faults {
            let _ = writeln!(text, "\n[[stage.fault]]");
            for k in fault {
                let _ = writeln!(text, "{k}");
            }
        }
    }
    for l in &links {
        let _ = writeln!(
            text,
            "\n[[subscription]]\nproducer = \"{}\"\nconsumer = \"{}\"",
            stages[l.producer].name, stages[l.consumer].name
        );
        for k in &l.keys {
            let _ = writeln!(text, "{k}");
        }
    }
    let sim_seed = SplitMix64::new(seed ^ 0x5eed).next() % 1_000_000;
    Case {
        seed,
        features: f,
        scale,
        profile,
        text,
        sim_seed,
        events,
    }
}
