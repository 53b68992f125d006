//! `--trace FILE`: written beside its target under a temporary name and renamed into
//! place when the run has ended, so a refused or interrupted run leaves an existing file
//! as it was, and the scenario file itself can never be the target.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// A trace being written.
pub struct TraceFile {
    target: PathBuf,
    /// The temporary file renamed to `target` at the end; `None` when the target is not
    /// a regular file (a pipe, a device) and is written directly.
    tmp: Option<PathBuf>,
    out: Option<BufWriter<File>>,
    /// Where writes go once `out` is gone (never, while the run holds the writer).
    sink: std::io::Sink,
}

/// `path` made absolute and with its directory resolved, whether or not it exists.
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.canonicalize().ok()?,
        _ => std::env::current_dir().ok()?,
    };
    Some(dir.join(name))
}

impl TraceFile {
    /// Starts a trace for `target`; refuses the scenario file itself.
    pub fn create(target: &Path, scenario: Option<&Path>) -> anyhow::Result<Self> {
        if let (Some(s), Some(t)) = (scenario.and_then(resolved), resolved(target)) {
            if s == t {
                bail!(
                    "--trace {} is the scenario file: choose another file for the trace",
                    target.display()
                );
            }
        }
        let cannot = || format!("cannot create trace file {}", target.display());
        if std::fs::metadata(target).is_ok_and(|m| !m.is_file()) {
            // A pipe or a device: nothing to protect, and it cannot be renamed over.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(target)
                .with_context(cannot)?;
            return Ok(TraceFile {
                target: target.to_path_buf(),
                tmp: None,
                out: Some(BufWriter::new(file)),
                sink: std::io::sink(),
            });
        }
        // Through a symbolic link, the file it points to is replaced, not the link.
        let target = resolved(target).unwrap_or_else(|| target.to_path_buf());
        let name = target
            .file_name()
            .with_context(|| format!("--trace {} is not a file name", target.display()))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = target.with_file_name(tmp_name);
        let file = File::create(&tmp).with_context(cannot)?;
        Ok(TraceFile {
            target,
            tmp: Some(tmp),
            out: Some(BufWriter::new(file)),
            sink: std::io::sink(),
        })
    }

    /// Where the run writes the trace.
    pub fn writer(&mut self) -> &mut dyn Write {
        match self.out.as_mut() {
            Some(w) => w,
            None => &mut self.sink,
        }
    }

    /// The run has ended: flushes the trace and moves it into place.
    pub fn commit(mut self) -> anyhow::Result<()> {
        let Some(w) = self.out.take() else {
            return Ok(());
        };
        let file = w
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write the trace file {}", self.target.display()))?;
        let Some(tmp) = self.tmp.take() else {
            return Ok(());
        };
        file.sync_all()
            .with_context(|| format!("cannot write the trace file {}", self.target.display()))?;
        std::fs::rename(&tmp, &self.target)
            .with_context(|| format!("cannot write the trace file {}", self.target.display()))?;
        Ok(())
    }
}

impl Drop for TraceFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            // Not committed: the run was refused or failed before it ended.
            let _ = std::fs::remove_file(tmp);
        }
    }
}
