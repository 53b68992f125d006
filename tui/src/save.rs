//! `s`: the scenario with the changes made in the view, as a new file (never over an
//! existing one). Demand bounds are written as the subscription's own (from the start);
//! slowdowns and crashes become `[[stage.fault]]` tables at the times they were made,
//! rounded down to the microsecond.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use flowbench_engine::scenario::parse_str;
use flowbench_sim::{Applied, Change};

/// Where a section of the scenario file is.
#[derive(Clone, Copy, Debug)]
struct Section {
    header: usize,
    /// The line after its last line.
    end: usize,
}

fn sections(lines: &[&str]) -> (Vec<Section>, Vec<Section>) {
    #[derive(Clone, Copy, PartialEq)]
    enum In {
        Stage,
        Sub,
        Other,
    }
    let (mut stages, mut subs) = (Vec::new(), Vec::new());
    let mut cur = In::Other;
    let close = |cur: In, i: usize, stages: &mut Vec<Section>, subs: &mut Vec<Section>| {
        let list = match cur {
            In::Stage => stages,
            In::Sub => subs,
            In::Other => return,
        };
        if let Some(s) = list.last_mut() {
            s.end = i;
        }
    };
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        if !t.starts_with('[') {
            continue;
        }
        let name: String = t
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if t.starts_with("[[") && name == "stage" {
            close(cur, i, &mut stages, &mut subs);
            stages.push(Section { header: i, end: i });
            cur = In::Stage;
        } else if t.starts_with("[[") && name == "subscription" {
            close(cur, i, &mut stages, &mut subs);
            subs.push(Section { header: i, end: i });
            cur = In::Sub;
        } else if cur == In::Stage && name.starts_with("stage.") {
            // A sub-table of the current stage.
        } else {
            close(cur, i, &mut stages, &mut subs);
            cur = In::Other;
        }
    }
    close(cur, lines.len(), &mut stages, &mut subs);
    (stages, subs)
}

fn us(t_ns: u64) -> u64 {
    t_ns / 1000
}

/// `text` (the scenario file `file`) with `changes` written in, checked by parsing it.
/// `stages` and `links` are the scenario's counts, to check that the file's tables match.
pub fn patched(
    text: &str,
    file: &str,
    stages: usize,
    links: usize,
    changes: &[Applied],
) -> Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let (st, subs) = sections(&lines);
    if st.len() != stages || subs.len() != links {
        return Err(format!(
            "{file} does not write its stages and subscriptions as [[stage]] and [[subscription]] tables: nothing saved"
        ));
    }
    // The last bounds of each subscription; the faults of each stage.
    let mut demand: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
    let mut faults: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut notes = Vec::new();
    for (i, a) in changes.iter().enumerate() {
        match a.change {
            Change::Demand {
                link,
                max_demand,
                min_demand,
            } => {
                demand.insert(link, (max_demand, min_demand));
            }
            Change::Slow { stage, factor } => {
                faults.entry(stage).or_default().push(format!(
                    "[[stage.fault]]\nslow_at_us = {}\nfactor = {factor:?}",
                    us(a.t_ns)
                ));
            }
            Change::Crash { stage } => {
                let restart = changes[i + 1..].iter().find_map(|b| match b.change {
                    Change::Restart { stage: s } if s == stage => Some(b.t_ns),
                    _ => None,
                });
                let mut f = format!("[[stage.fault]]\ncrash_at_us = {}", us(a.t_ns));
                if let Some(r) = restart {
                    f += &format!("\nrestart_after_us = {}", us(r.saturating_sub(a.t_ns)));
                }
                faults.entry(stage).or_default().push(f);
            }
            Change::Restart { stage } => {
                let ours = changes[..i]
                    .iter()
                    .any(|b| matches!(b.change, Change::Crash { stage: s } if s == stage));
                if !ours {
                    notes.push(format!(
                        "# (a restart of stage {} at {} us followed a crash the scenario made: not saved)",
                        stage + 1,
                        us(a.t_ns)
                    ));
                }
            }
        }
    }
    let mut skip = vec![false; lines.len()];
    let mut after: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (&l, &(max, min)) in &demand {
        let s = subs[l];
        for (i, line) in lines.iter().enumerate().take(s.end).skip(s.header + 1) {
            let key = line.trim_start();
            if key.starts_with("max_demand") || key.starts_with("min_demand") {
                skip[i] = true;
            }
        }
        after
            .entry(s.header)
            .or_default()
            .push(format!("max_demand = {max}\nmin_demand = {min}"));
    }
    for (&stage, list) in &faults {
        let s = st[stage];
        // After the stage's last line that says something (not a blank or a comment).
        let last = (s.header..s.end)
            .rev()
            .find(|&i| {
                let t = lines[i].trim();
                !t.is_empty() && !t.starts_with('#')
            })
            .unwrap_or(s.header);
        let block = list.join("\n\n");
        after.entry(last).or_default().push(format!("\n{block}"));
    }
    let mut out = String::with_capacity(text.len() + 512);
    out += "# Saved by flowbench tui with the changes made in the view:\n";
    for a in changes {
        out += &format!("#   at {} us: {:?}\n", us(a.t_ns), a.change);
    }
    for n in &notes {
        out += n;
        out.push('\n');
    }
    out += "# (demand bounds apply from the start; slowdowns and crashes are faults at their times)\n\n";
    for (i, line) in lines.iter().enumerate() {
        if !skip[i] {
            out += line;
            out.push('\n');
        }
        if let Some(extra) = after.get(&i) {
            for e in extra {
                out += e;
                out.push('\n');
            }
        }
    }
    parse_str(&out, file)
        .map_err(|e| format!("the saved scenario would not load ({e}): nothing saved"))?;
    Ok(out)
}

/// A file name beside `dir/stem` that does not exist yet: `stem.tui.toml`, then
/// `stem.tui-2.toml`, ... Written with `create_new`, so an existing file is never
/// overwritten, even by a race.
pub fn write_new(dir: &Path, stem: &str, text: &str) -> Result<PathBuf, String> {
    for n in 1..1000 {
        let name = if n == 1 {
            format!("{stem}.tui.toml")
        } else {
            format!("{stem}.tui-{n}.toml")
        };
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                f.write_all(text.as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
        }
    }
    Err(format!(
        "{}: {stem}.tui.toml .. {stem}.tui-999.toml all exist",
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"t\"\n\n[[stage]]\nname = \"p\"\nkind = \"producer\"\nsource = { range = [1, 100] }\n\n# the sink\n[[stage]]\nname = \"c\"\nkind = \"consumer\"\nper_event = { dist = \"fixed\", ns = 10 }\n\n[[stage.fault]]\ncrash_after_events = 90\n\n[[subscription]]\nproducer = \"p\"\nconsumer = \"c\"\nmax_demand = 10\n";

    #[test]
    fn changes_become_bounds_and_faults_and_the_file_still_loads() {
        let changes = [
            Applied {
                t_ns: 5_500,
                change: Change::Demand {
                    link: 0,
                    max_demand: 40,
                    min_demand: 3,
                },
            },
            Applied {
                t_ns: 7_900,
                change: Change::Slow {
                    stage: 1,
                    factor: 2.0,
                },
            },
            Applied {
                t_ns: 9_000,
                change: Change::Crash { stage: 0 },
            },
            Applied {
                t_ns: 12_000,
                change: Change::Restart { stage: 0 },
            },
        ];
        let out = patched(TEXT, "t.toml", 2, 1, &changes).expect("saved");
        let s = parse_str(&out, "t.toml").expect("loads");
        assert_eq!((s.links[0].demand.max(), s.links[0].demand.min()), (40, 3));
        assert_eq!(s.stages[1].faults.len(), 2, "{out}");
        assert_eq!(s.stages[0].faults.len(), 1, "{out}");
        assert!(out.contains("slow_at_us = 7\nfactor = 2.0"), "{out}");
        assert!(
            out.contains("crash_at_us = 9\nrestart_after_us = 3"),
            "{out}"
        );
        assert_eq!(
            out.matches("max_demand").count(),
            2,
            "one in the header note: {out}"
        );
    }

    #[test]
    fn a_file_with_inline_tables_is_refused() {
        let inline = "stage = [{ name = \"p\", kind = \"producer\", source = { range = [1, 2] } }, { name = \"c\", kind = \"consumer\" }]\nsubscription = [{ producer = \"p\", consumer = \"c\" }]\n";
        assert!(parse_str(inline, "i.toml").is_ok());
        let err = patched(inline, "i.toml", 2, 1, &[]).expect_err("refused");
        assert!(err.contains("i.toml"), "{err}");
    }

    #[test]
    fn a_new_name_is_found_and_nothing_is_overwritten() {
        let dir = std::env::temp_dir().join(format!("flowbench-tui-save-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let first = write_new(&dir, "x", "one").expect("written");
        let second = write_new(&dir, "x", "two").expect("written");
        assert_ne!(first, second);
        assert_eq!(std::fs::read_to_string(&first).expect("read"), "one");
        assert!(second.ends_with("x.tui-2.toml"));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
