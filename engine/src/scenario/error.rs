//! [`ScenarioError`]: the one problem reported for a scenario file, and where it is.
//!
//! Checks inside the module record an [`Issue`] (a byte offset, a field path and a
//! message); only the public entry points turn it into a [`ScenarioError`], because only
//! they know the file name and the text that the offset points into.

use std::fmt;

/// The first problem in a scenario file: where it is, which key, and what is allowed.
///
/// `Display` prints `{file}:{line}:{column}: {field}: {message}`, the form editors and
/// terminals turn into a link.
///
/// ```
/// use flowbench_engine::scenario::parse_str;
/// let err = parse_str("[[stage]]\nname = \"s\"\nkind = \"sink\"\n", "x.toml").unwrap_err();
/// assert_eq!((err.line(), err.column(), err.field()), (3, 8, "stage[0].kind"));
/// assert!(err.message().contains("expected one of `producer`"));
/// assert!(err.to_string().starts_with("x.toml:3:8: stage[0].kind: "));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    file: String,
    line: usize,
    column: usize,
    field: String,
    message: String,
}

impl ScenarioError {
    /// The file name given to [`parse_str`](super::parse_str) or the path given to
    /// [`load`](super::load).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line of the offending value, counted from 1.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The column of the offending value, counted from 1 in characters (not bytes).
    pub fn column(&self) -> usize {
        self.column
    }

    /// The key the problem is about, as a path such as `subscription[1].min_demand` or
    /// `stage[0].source`; `(syntax)`, `(file)` or `(encoding)` when no key is to blame.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong and what is allowed, e.g.
    /// `min_demand must be at most 9 (max_demand - 1), got 10`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A file that could not be read: reported at line 1, column 1.
    pub(super) fn io(file: &str, err: &std::io::Error) -> Self {
        ScenarioError {
            file: file.to_owned(),
            line: 1,
            column: 1,
            field: "(file)".to_owned(),
            message: format!("cannot read the scenario file: {err}"),
        }
    }

    /// A file over the size cap: reported at line 1, column 1.
    pub(super) fn too_large(file: &str, cap: u64) -> Self {
        ScenarioError {
            file: file.to_owned(),
            line: 1,
            column: 1,
            field: "(file)".to_owned(),
            message: format!(
                "the scenario file is larger than {} MiB; a scenario is a few kilobytes of TOML \
                 (is this the right file?)",
                cap >> 20
            ),
        }
    }

    /// A file that is not UTF-8: reported at its first invalid byte.
    pub(super) fn not_utf8(file: &str, bytes: &[u8], err: std::str::Utf8Error) -> Self {
        let valid = err.valid_up_to();
        // The prefix is valid UTF-8 by definition, so the lossy conversion changes nothing.
        let prefix = String::from_utf8_lossy(&bytes[..valid]);
        let (line, column) = line_column(&prefix, valid);
        let byte = bytes.get(valid).copied().unwrap_or_default();
        ScenarioError {
            file: file.to_owned(),
            line,
            column,
            field: "(encoding)".to_owned(),
            message: format!(
                "the file is not valid UTF-8 (byte 0x{byte:02x}); scenario files must be UTF-8 text"
            ),
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.field, self.message
        )
    }
}

impl std::error::Error for ScenarioError {}

/// A problem found by a check, located by byte offset into the file's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Issue {
    /// Byte offset of the offending value (or key, or table header).
    pub offset: usize,
    /// The field path, e.g. `stage[0].source`.
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl Issue {
    /// An issue at `offset`.
    pub fn new(offset: usize, field: impl Into<String>, message: impl Into<String>) -> Self {
        Issue {
            offset,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The public error, with the offset turned into a line and column of `text`.
    pub fn into_error(self, file: &str, text: &str) -> ScenarioError {
        let (line, column) = line_column(text, self.offset);
        ScenarioError {
            file: file.to_owned(),
            line,
            column,
            field: self.field,
            message: self.message,
        }
    }
}

/// The 1-based line and column (in characters) of byte `offset` of `text`. An offset past
/// the end, or inside a character, is moved back to the nearest character start.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// A list of issues of which only the one earliest in the file is reported.
///
/// Checks record every problem they find and go on, so that the report does not depend on
/// the order in which the checks run: a problem on line 3 always wins over one on line 40.
#[derive(Debug, Default)]
pub(super) struct Issues(Vec<Issue>);

impl Issues {
    /// Records an issue.
    pub fn push(&mut self, issue: Issue) {
        self.0.push(issue);
    }

    /// Records the error of `result`, if any, and passes its value on.
    pub fn take<T>(&mut self, result: Result<T, Issue>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(issue) => {
                self.push(issue);
                None
            }
        }
    }

    /// How many issues were recorded so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The issue earliest in the file (the first recorded among equals), if any.
    pub fn first(self) -> Option<Issue> {
        // `min_by_key` keeps the first of equal elements.
        self.0.into_iter().min_by_key(|issue| issue.offset)
    }
}
