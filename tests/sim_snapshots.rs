//! Snapshot tests of what `flowbench run SCENARIO --json` prints on the simulator, for
//! every scenario of the corpus. Wall-clock fields (`elapsed_s`, `throughput_eps`) are
//! left out; everything else is a function of the scenario and the seed.
//!
//! When a change of behaviour is intended, review the new output and bless it:
//! `FLOWBENCH_BLESS=1 cargo test --test sim_snapshots`, then read the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

fn snapshot_of(scenario: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_flowbench"))
        .args(["run", "--json", "--events", "20000"])
        .arg(scenario)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}: {}",
        scenario.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let obj = v.as_object_mut().expect("an object");
    obj.remove("elapsed_s");
    obj.remove("throughput_eps");
    serde_json::to_string_pretty(&v).expect("encodes") + "\n"
}

#[test]
fn sim_summary_of_every_scenario_matches_its_snapshot() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var_os("FLOWBENCH_BLESS").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("scenarios"))
        .expect("scenarios/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut mismatched = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&root).expect("inside the repo");
        let got = snapshot_of(rel);
        let stem = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .to_string();
        let snap = root
            .join("tests/snapshots/sim")
            .join(format!("{stem}.json"));
        if bless {
            std::fs::write(&snap, &got).expect("write snapshot");
            continue;
        }
        let want = std::fs::read_to_string(&snap).unwrap_or_default();
        if want != got {
            mismatched.push(format!(
                "{}: summary differs from {}\n--- got ---\n{got}",
                rel.display(),
                snap.display()
            ));
        }
    }
    assert!(
        mismatched.is_empty(),
        "{}\n(bless with FLOWBENCH_BLESS=1 after review)",
        mismatched.join("\n")
    );
}
