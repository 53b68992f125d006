//! [`RawScenario`] to [`Scenario`]: every check of meaning, earliest problem first.
//!
//! Every check records what it finds in one [`Issues`] list and goes on, and the problem
//! earliest in the file is reported, whatever order the checks run in. A check that
//! depends on an earlier value that was rejected is skipped, so a single mistake is not
//! reported a second time, somewhere else, in other words: in particular, the checks that
//! every stage is connected run only once every subscription is fine.

use std::collections::HashMap;
use std::path::Path;

use toml::Spanned;

use super::error::{Issue, Issues};
use super::graph;
use super::link::{self, Seen, Stages};
use super::model::Scenario;
use super::raw::{Int, RawScenario};
use super::stage;
use super::values::{int_in, int_u32, start};

/// Checks `raw`; `file` gives the default name.
pub(super) fn scenario(raw: RawScenario, file: &str) -> Result<Scenario, Issue> {
    let mut issues = Issues::default();
    let name = scenario_name(raw.name.as_ref(), file, &mut issues);
    let seed = optional(
        &raw.seed,
        |v| int_in(v, "", "seed", 0, u64::MAX),
        &mut issues,
    );
    let cores = optional(
        &raw.cores,
        |v| int_u32(v, "", "cores", 1, u32::MAX),
        &mut issues,
    );
    if raw.stage.is_empty() {
        let message = "a scenario needs at least one [[stage]] table, found none";
        issues.push(Issue::new(0, "stage", message));
    }
    let checked: Vec<stage::Checked> = raw
        .stage
        .iter()
        .enumerate()
        .map(|(i, s)| stage::check(s, i, &mut issues))
        .collect();
    let by_name = unique_names(&raw, &mut issues);
    let stages = Stages {
        by_name,
        checked: &checked,
    };
    let mut seen = Seen::default();
    let links: Vec<_> = raw
        .subscription
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let link = link::check(s, i, &stages, &mut seen, &mut issues)?;
            Some((i, link, start(s)))
        })
        .collect();
    if links.len() == raw.subscription.len() {
        graph::check_connected(&checked, &links, &mut issues);
    }
    graph::check_partitions(&checked, &seen, &mut issues);
    let names: Vec<&str> = checked.iter().map(|c| c.def.name.as_str()).collect();
    graph::check_acyclic(&names, &links, &mut issues);
    if let Some(issue) = issues.first() {
        return Err(issue);
    }
    Ok(Scenario {
        name,
        description: raw.description,
        seed,
        cores,
        stages: checked.into_iter().map(|c| c.def).collect(),
        links: links.into_iter().map(|(_, link, _)| link).collect(),
    })
}

/// `name`, or the file stem.
fn scenario_name(raw: Option<&Spanned<String>>, file: &str, issues: &mut Issues) -> String {
    match raw {
        Some(name) if name.get_ref().trim().is_empty() => {
            let message = "name must not be empty (leave it out to use the file name)";
            issues.push(Issue::new(start(name), "name", message));
            String::new()
        }
        Some(name) => name.get_ref().clone(),
        None => Path::new(file)
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or(file)
            .to_owned(),
    }
}

/// Checks an optional top-level number.
fn optional<T>(
    raw: &Option<Spanned<Int>>,
    check: impl Fn(&Spanned<Int>) -> Result<T, Issue>,
    issues: &mut Issues,
) -> Option<T> {
    raw.as_ref().and_then(|v| issues.take(check(v)))
}

/// Stage index by name; a name used twice is an issue at its second use.
fn unique_names<'a>(raw: &'a RawScenario, issues: &mut Issues) -> HashMap<&'a str, usize> {
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (i, stage) in raw.stage.iter().enumerate() {
        let name = &stage.get_ref().name;
        if let Some(first) = by_name.get(name.get_ref().as_str()) {
            let message = format!(
                "duplicate stage name `{}`: stage[{first}] already uses it; stage names must \
                 be unique",
                name.get_ref()
            );
            issues.push(Issue::new(start(name), format!("stage[{i}].name"), message));
        } else {
            by_name.insert(name.get_ref().as_str(), i);
        }
    }
    by_name
}
