//! Baselines: a run's metrics saved as JSON, with what they were measured on, and read
//! back with every way they can be wrong named.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::metric::Metric;
use crate::suite::{CaseInfo, Suite};
use crate::BenchError;

/// The machine a baseline was taken on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// The CPU model (`/proc/cpuinfo`), or `unknown`.
    pub cpu: String,
    /// Available cores.
    pub cores: usize,
}

impl Machine {
    /// This machine.
    pub fn this() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        Machine { cpu, cores }
    }
}

/// A saved run of the suite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// `quick`, `full` or `scenarios`.
    pub suite: Suite,
    /// [`crate::suite::SUITE_VERSION`] when it was taken.
    pub suite_version: u32,
    /// The flowbench version.
    pub flowbench: String,
    /// `release` or `debug`: instruction counts depend on it.
    pub profile: String,
    /// Where it was measured.
    pub machine: Machine,
    /// `rustc --version`, or `unknown`.
    pub rustc: String,
    /// The commit flowbench was built from ([`crate::COMMIT`]), or `unknown`.
    pub commit: String,
    /// When, UTC (`YYYY-MM-DDTHH:MM:SSZ`).
    pub date: String,
    /// The cases, with their seeds and sizes.
    pub cases: Vec<CaseInfo>,
    /// Every metric, with its spread.
    pub metrics: Vec<Metric>,
    /// The trace hash of every simulated case.
    pub hashes: BTreeMap<String, String>,
}

impl Baseline {
    /// Reads a baseline, naming the file and what is wrong with it.
    pub fn load(path: &Path) -> Result<Baseline, BenchError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| BenchError::Baseline {
            file: file.clone(),
            message: format!("cannot read it: {e}"),
        })?;
        serde_json::from_str(&text).map_err(|e| BenchError::Baseline {
            file,
            message: format!(
                "not a flowbench baseline (line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        })
    }

    /// Writes the baseline beside `path` and renames it into place.
    pub fn save(&self, path: &Path) -> Result<(), BenchError> {
        let file = path.display().to_string();
        let err = |e: std::io::Error| BenchError::Baseline {
            file: file.clone(),
            message: format!("cannot write it: {e}"),
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| BenchError::Baseline {
            file: file.clone(),
            message: format!("cannot encode it: {e}"),
        })? + "\n";
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(path.file_name().unwrap_or_default());
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        std::fs::write(&tmp, text).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })
    }

    /// Why this baseline cannot be compared with a run of `suite` over `cases`, if it
    /// cannot.
    pub fn mismatch(&self, suite: Suite, version: u32, cases: &[CaseInfo]) -> Option<String> {
        if self.suite != suite {
            return Some(format!(
                "it is a baseline of the {} suite, and this run is of the {} suite",
                self.suite.name(),
                suite.name()
            ));
        }
        if self.suite_version != version {
            return Some(format!(
                "it was taken with suite version {}, and this flowbench runs suite version \
                 {version}: save a new baseline with this version (--save)",
                self.suite_version
            ));
        }
        if self.cases != cases {
            let theirs: Vec<String> = self.cases.iter().map(describe).collect();
            let ours: Vec<String> = cases.iter().map(describe).collect();
            return Some(format!(
                "its cases differ: baseline [{}], this run [{}]",
                theirs.join(", "),
                ours.join(", ")
            ));
        }
        None
    }
}

fn describe(c: &CaseInfo) -> String {
    let mut s = c.name.clone();
    if let Some(seed) = c.seed {
        s += &format!(" seed {seed}");
    }
    if let Some(e) = c.events {
        s += &format!(" events {e}");
    }
    s
}

/// [`utc_date`] of the current time.
pub fn utc_now() -> String {
    utc_date(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time.
pub fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_are_civil_dates() {
        assert_eq!(utc_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_date(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_date(1_796_083_200 + 3_723), "2026-12-01T01:02:03Z");
    }
}
