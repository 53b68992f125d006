//! The shape of a pipeline as the view draws it: stages in layers, left to right, and the
//! subscriptions between them.

use flowbench_engine::scenario::{DispatcherDef, Scenario};
use flowbench_engine::StageKind;
use flowbench_sim::Record;

/// One stage, as drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct StageInfo {
    /// Its name.
    pub name: String,
    /// Its kind (`None` when only a trace named it).
    pub kind: Option<StageKind>,
    /// `buffer_size` (`None`: unbounded or unknown).
    pub buffer_size: Option<u64>,
    /// The dispatcher's name (`demand`, `broadcast`, `partition`) for producing stages.
    pub dispatcher: Option<&'static str>,
    /// Its layer: 0 for sources, then one more than its furthest producer.
    pub layer: usize,
    /// Its subscriptions as a consumer (link indices).
    pub inputs: Vec<usize>,
    /// Its subscriptions as a producer (link indices).
    pub outputs: Vec<usize>,
}

/// One subscription, as drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// The producing stage's index.
    pub producer: usize,
    /// The consuming stage's index.
    pub consumer: usize,
    /// `(max_demand, min_demand)` as the scenario gives them (`None` from a trace).
    pub demand: Option<(u64, u64)>,
}

/// Stages in layers and their subscriptions.
#[derive(Clone, Debug, PartialEq)]
pub struct Topo {
    /// Stages in scenario order.
    pub stages: Vec<StageInfo>,
    /// Subscriptions in scenario order.
    pub links: Vec<LinkInfo>,
    /// Stage indices per layer, in scenario order within a layer.
    pub layers: Vec<Vec<usize>>,
}

impl Topo {
    /// The topology of a scenario.
    pub fn of(s: &Scenario) -> Topo {
        let stages = s
            .stages
            .iter()
            .map(|st| StageInfo {
                name: st.name.clone(),
                kind: Some(st.kind),
                buffer_size: st.buffer_size,
                dispatcher: st.kind.produces().then_some(match st.dispatcher {
                    DispatcherDef::Demand { .. } => "demand",
                    DispatcherDef::Broadcast => "broadcast",
                    DispatcherDef::Partition { .. } => "partition",
                }),
                layer: 0,
                inputs: Vec::new(),
                outputs: Vec::new(),
            })
            .collect();
        let links = s
            .links
            .iter()
            .map(|l| LinkInfo {
                producer: l.producer,
                consumer: l.consumer,
                demand: Some((l.demand.max(), l.demand.min())),
            })
            .collect();
        Self::layered(stages, links)
    }

    /// The topology a trace shows: stages in the order the trace first names them,
    /// subscriptions from its `subscribe` records (the trace does not say kinds or
    /// buffer sizes).
    pub fn of_records(records: &[Record]) -> Topo {
        let mut names: Vec<String> = Vec::new();
        let index = |n: &str, names: &mut Vec<String>| match names.iter().position(|x| x == n) {
            Some(i) => i,
            None => {
                names.push(n.to_string());
                names.len() - 1
            }
        };
        let mut links: Vec<LinkInfo> = Vec::new();
        for r in records {
            for n in [&r.stage, &r.from, &r.to].into_iter().flatten() {
                index(n, &mut names);
            }
            if let ("subscribe", Some(c), Some(p)) = (r.kind.as_str(), &r.from, &r.to) {
                let (p, c) = (index(p, &mut names), index(c, &mut names));
                if !links.iter().any(|l| l.producer == p && l.consumer == c) {
                    links.push(LinkInfo {
                        producer: p,
                        consumer: c,
                        demand: None,
                    });
                }
            }
        }
        let stages = names
            .into_iter()
            .map(|name| StageInfo {
                name,
                kind: None,
                buffer_size: None,
                dispatcher: None,
                layer: 0,
                inputs: Vec::new(),
                outputs: Vec::new(),
            })
            .collect();
        Self::layered(stages, links)
    }

    fn layered(mut stages: Vec<StageInfo>, links: Vec<LinkInfo>) -> Topo {
        for (i, l) in links.iter().enumerate() {
            stages[l.consumer].inputs.push(i);
            stages[l.producer].outputs.push(i);
        }
        // Longest path from a source; the graph is acyclic (validated), and a cycle in a
        // trace-made topology is only cut short after `n` rounds.
        let n = stages.len();
        let mut layer = vec![0usize; n];
        for _ in 0..n {
            let mut moved = false;
            for l in &links {
                if layer[l.consumer] < layer[l.producer] + 1 && layer[l.producer] < n {
                    layer[l.consumer] = layer[l.producer] + 1;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        let depth = layer.iter().copied().max().map_or(0, |d| d + 1);
        let mut layers = vec![Vec::new(); depth];
        for (i, st) in stages.iter_mut().enumerate() {
            st.layer = layer[i];
            layers[layer[i]].push(i);
        }
        Topo {
            stages,
            links,
            layers,
        }
    }

    /// The index of the stage named `name`.
    pub fn stage(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }

    /// The first subscription from `producer` to `consumer` (by name).
    pub fn link(&self, producer: &str, consumer: &str) -> Option<usize> {
        let (p, c) = (self.stage(producer)?, self.stage(consumer)?);
        self.links
            .iter()
            .position(|l| l.producer == p && l.consumer == c)
    }

    /// `producer -> consumer` of link `l`.
    pub fn link_name(&self, l: usize) -> String {
        match self.links.get(l) {
            Some(k) => format!(
                "{} -> {}",
                self.stages[k.producer].name, self.stages[k.consumer].name
            ),
            None => format!("link {l}"),
        }
    }
}
