//! Checks of the topology as a whole: every stage connected, every partition taken, and
//! no cycle among the subscriptions.

use super::error::{Issue, Issues};
use super::link::Seen;
use super::model::{DispatcherDef, LinkDef};
use super::stage::{produces, Checked};
use crate::core::StageKind;

/// Every stage that takes events is the consumer of some subscription, and every stage
/// that sends events the producer of one. Run only when every subscription is fine, since a
/// misspelt or misplaced stage name would otherwise be reported a second time here.
pub(super) fn check_connected(
    stages: &[Checked],
    links: &[(usize, LinkDef, usize)],
    issues: &mut Issues,
) {
    let mut has_in = vec![false; stages.len()];
    let mut has_out = vec![false; stages.len()];
    for (_, l, _) in links {
        if let Some(x) = has_in.get_mut(l.consumer) {
            *x = true;
        }
        if let Some(x) = has_out.get_mut(l.producer) {
            *x = true;
        }
    }
    for (i, stage) in stages.iter().enumerate() {
        let name = stage.def.name.as_str();
        let kind = stage.def.kind;
        let field = format!("stage[{i}]");
        if kind != StageKind::Producer && !has_in[i] {
            let message = format!(
                "{} `{name}` has no subscription: add a [[subscription]] with consumer = \
                 \"{name}\"",
                kind.name()
            );
            issues.push(Issue::new(stage.offset, field.clone(), message));
        }
        if produces(kind) && !has_out[i] {
            let message = format!(
                "{} `{name}` has no subscriber: add a [[subscription]] with producer = \
                 \"{name}\"",
                kind.name()
            );
            issues.push(Issue::new(stage.offset, field, message));
        }
    }
}

/// Every partition of a partition dispatcher has a subscriber.
pub(super) fn check_partitions(stages: &[Checked], seen: &Seen, issues: &mut Issues) {
    for (i, stage) in stages.iter().enumerate() {
        let Some(DispatcherDef::Partition { partitions, .. }) = stage.dispatcher else {
            continue;
        };
        if seen.troubled.contains(&i) {
            continue;
        }
        let missing: Vec<String> = (0..partitions)
            .filter(|p| !seen.partitions.contains_key(&(i, *p)))
            .map(|p| p.to_string())
            .collect();
        if missing.is_empty() {
            continue;
        }
        let (noun, verb) = if missing.len() == 1 {
            ("partition", "has")
        } else {
            ("partitions", "have")
        };
        let message = format!(
            "{noun} {} of `{}` {verb} no subscriber; each of its {partitions} partitions \
             (0 to {}) needs exactly one subscription",
            missing.join(", "),
            stage.def.name,
            partitions - 1
        );
        let field = format!("stage[{i}].partitions");
        issues.push(Issue::new(stage.partitions_offset, field, message));
    }
}

/// No stage may, through its subscriptions, feed itself. Reports the cycle through the
/// subscription that comes first in the file.
pub(super) fn check_acyclic(
    stage_names: &[&str],
    links: &[(usize, LinkDef, usize)],
    issues: &mut Issues,
) {
    let n = stage_names.len();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (_, link, _) in links {
        out[link.producer].push(link.consumer);
    }
    let component = strong_components(&out);
    let Some((index, link, offset)) = links
        .iter()
        .find(|(_, l, _)| component[l.producer] == component[l.consumer])
    else {
        return;
    };
    let path = path_within(&out, &component, link.consumer, link.producer);
    let mut names: Vec<String> = vec![format!("`{}`", stage_names[link.producer])];
    names.extend(path.iter().map(|&s| format!("`{}`", stage_names[s])));
    let message = format!(
        "subscriptions form a cycle: {}; events must flow from producers towards consumers \
         without coming back",
        names.join(" -> ")
    );
    issues.push(Issue::new(
        *offset,
        format!("subscription[{index}]"),
        message,
    ));
}

/// The strongly connected component of every node (Kosaraju, without recursion so that a
/// long chain of stages cannot overflow the stack).
fn strong_components(out: &[Vec<usize>]) -> Vec<usize> {
    let n = out.len();
    let mut order = Vec::with_capacity(n);
    let mut visited = vec![false; n];
    for root in 0..n {
        if visited[root] {
            continue;
        }
        visited[root] = true;
        let mut stack = vec![(root, 0usize)];
        while let Some((node, next)) = stack.pop() {
            if let Some(&child) = out[node].get(next) {
                stack.push((node, next + 1));
                if !visited[child] {
                    visited[child] = true;
                    stack.push((child, 0));
                }
            } else {
                order.push(node);
            }
        }
    }
    let mut back: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (from, tos) in out.iter().enumerate() {
        for &to in tos {
            back[to].push(from);
        }
    }
    let mut component = vec![usize::MAX; n];
    for (id, &root) in order.iter().rev().enumerate() {
        if component[root] != usize::MAX {
            continue;
        }
        component[root] = id;
        let mut stack = vec![root];
        while let Some(node) = stack.pop() {
            for &prev in &back[node] {
                if component[prev] == usize::MAX {
                    component[prev] = id;
                    stack.push(prev);
                }
            }
        }
    }
    component
}

/// A shortest path `from → … → to` inside one component (breadth-first), `from` and `to`
/// included. Both must be in the same component, so the path exists.
fn path_within(out: &[Vec<usize>], component: &[usize], from: usize, to: usize) -> Vec<usize> {
    let mut parent = vec![usize::MAX; out.len()];
    let mut queue = std::collections::VecDeque::from([from]);
    parent[from] = from;
    while let Some(node) = queue.pop_front() {
        if node == to {
            break;
        }
        for &next in &out[node] {
            if parent[next] == usize::MAX && component[next] == component[from] {
                parent[next] = node;
                queue.push_back(next);
            }
        }
    }
    let mut path = vec![to];
    let mut node = to;
    while node != from && parent[node] != usize::MAX {
        node = parent[node];
        path.push(node);
    }
    path.reverse();
    path
}
