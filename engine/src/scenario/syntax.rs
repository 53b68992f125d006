//! TOML text to [`RawScenario`], with toml's errors turned into [`Issue`]s.
//!
//! toml reports a byte span and a message but no usable key path, so the path is
//! recovered here by finding the key or value of the parsed document that holds the span.
//! For syntax errors the document is the part the parser managed to read.

use serde::Deserialize;
use toml::de::{DeTable, DeValue, Deserializer, Error};
use toml::Spanned;

use super::error::{line_column, Issue};
use super::raw::RawScenario;

/// The field path of errors that no key can be blamed for.
const SYNTAX: &str = "(syntax)";

/// Parses `text` and reads it into the raw types (shape checks only).
pub(super) fn parse(text: &str) -> Result<RawScenario, Issue> {
    let (doc, errors) = DeTable::parse_recoverable(text);
    if let Some(err) = errors.iter().min_by_key(|e| offset_of(e)) {
        return Err(syntax_issue(text, &doc, err));
    }
    RawScenario::deserialize(Deserializer::from(doc)).map_err(|err| shape_issue(text, &err))
}

fn offset_of(err: &Error) -> usize {
    err.span().map_or(0, |span| span.start)
}

/// toml's limit on nesting (arrays and inline tables) and on the parts of a dotted key.
const TOML_DEPTH_LIMIT: usize = 80;

/// A TOML syntax error, in toml's words where they say what to write (see [`reword`]).
fn syntax_issue(text: &str, doc: &Spanned<DeTable<'_>>, err: &Error) -> Issue {
    let offset = offset_of(err);
    let message = err.message();
    if message == "duplicate key" {
        return duplicate_key(text, doc, err);
    }
    if message == "recursion limit" {
        // toml gives no span for a dotted key or table header with too many parts.
        let offset = long_dotted_key(text).unwrap_or(offset);
        let message = format!(
            "a dotted key or table header has {TOML_DEPTH_LIMIT} or more parts, which the \
             TOML reader refuses; scenario keys have at most two (e.g. [[stage.fault]])"
        );
        return Issue::new(offset, SYNTAX, message);
    }
    let field = locate(doc, offset).unwrap_or_else(|| SYNTAX.to_owned());
    Issue::new(offset, field, reword(text, doc, err))
}

/// toml's message, or plainer words where toml's do not say what to write.
fn reword(text: &str, doc: &Spanned<DeTable<'_>>, err: &Error) -> String {
    let message = err.message();
    let empty_span = err.span().is_some_and(|span| span.is_empty());
    let unclosed = |quote: &str| format!("the string is not closed: end it with {quote}");
    let one_line = " (only strings in \"\"\" or ''' may go on over several lines)";
    match message {
        "invalid basic string, expected `\"`" => unclosed("`\"`") + one_line,
        "invalid literal string, expected `'`" => unclosed("`'`") + one_line,
        "invalid multi-line basic string, expected `\"`" => unclosed("`\"\"\"`"),
        "invalid multi-line literal string, expected `'`" => unclosed("`'''`"),
        _ if message.starts_with("string values must be quoted") && empty_span => {
            "a value is missing after `=`: write a \"string\", a number, true or false, an \
             [array] or an { inline = \"table\" }"
                .to_owned()
        }
        _ if message.starts_with("cannot recurse further") => format!(
            "arrays and inline tables are nested more than {TOML_DEPTH_LIMIT} deep, which the \
             TOML reader refuses; scenario values nest at most three deep (e.g. source = \
             {{ script = [{{ … }}] }})"
        ),
        _ if message.starts_with("missing key for inline table element") => {
            match enclosing_inline_table(doc.get_ref(), offset_of(err)) {
                Some(open) => {
                    let (line, column) = line_column(text, open);
                    format!(
                        "expected `,` and another key, or `}}` to close the inline table \
                         opened at line {line}, column {column}"
                    )
                }
                None => message.to_owned(),
            }
        }
        _ => message.to_owned(),
    }
}

/// A key written twice: in a table (`kind` twice in one `[[stage]]`), in an inline table,
/// or a table header naming a table that is already defined.
fn duplicate_key(text: &str, doc: &Spanned<DeTable<'_>>, err: &Error) -> Issue {
    let offset = offset_of(err);
    let key = err
        .span()
        .and_then(|span| text.get(span))
        .unwrap_or_default()
        .trim();
    let before = text.get(..offset).unwrap_or_default();
    let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
    let line = text.get(line_start..).unwrap_or_default();
    let in_header = line.trim_start().starts_with('[');
    if in_header {
        let message = format!(
            "duplicate key `{key}`: a table named `{key}` is already defined above (look for \
             [{key}] with single brackets, or a [[{key}.…]] header before the first [[{key}]])"
        );
        return Issue::new(offset, key, message);
    }
    // Inside an inline table, `locate` finds that table; otherwise the key belongs to the
    // last table header before it (toml's spans of `[[stage]]` tables cover the header).
    let parent = locate(doc, offset).or_else(|| last_header_before(text, doc.get_ref(), offset));
    let field = match parent {
        Some(parent) if !parent.is_empty() => format!("{parent}.{key}"),
        _ => key.to_owned(),
    };
    let message = format!("duplicate key `{key}`: a key may appear only once in a table");
    Issue::new(offset, field, message)
}

/// The path of the table whose `[header]` or `[[header]]` is the last one before
/// `offset`, or `None` if there is none (the top level).
fn last_header_before(text: &str, doc: &DeTable<'_>, offset: usize) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    let mut path = String::new();
    headers(text, doc, &mut path, &mut |start, found| {
        if start <= offset && best.as_ref().is_none_or(|(b, _)| start >= *b) {
            best = Some((start, found.to_owned()));
        }
    });
    best.map(|(_, path)| path)
}

/// Calls `found` with the start and path of every table written with a header, which is
/// where toml's span of such a table points (inline tables start with `{` instead).
fn headers(text: &str, table: &DeTable<'_>, path: &mut String, found: &mut dyn FnMut(usize, &str)) {
    for (key, value) in table.iter() {
        let len = path.len();
        push_key(path, key.get_ref());
        match value.get_ref() {
            DeValue::Table(inner) => visit_header(text, value, inner, path, found),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let DeValue::Table(inner) = item.get_ref() {
                        let item_len = path.len();
                        path.push_str(&format!("[{i}]"));
                        visit_header(text, item, inner, path, found);
                        path.truncate(item_len);
                    }
                }
            }
            _ => {}
        }
        path.truncate(len);
    }
}

fn visit_header(
    text: &str,
    value: &Spanned<DeValue<'_>>,
    table: &DeTable<'_>,
    path: &mut String,
    found: &mut dyn FnMut(usize, &str),
) {
    let start = value.span().start;
    if text.get(start..).is_some_and(|rest| rest.starts_with('[')) {
        found(start, path);
    }
    headers(text, table, path, found);
}

/// The start of the innermost inline table (`{ … }`) whose span holds `offset`.
fn enclosing_inline_table(table: &DeTable<'_>, offset: usize) -> Option<usize> {
    table
        .iter()
        .find_map(|(_, value)| inline_table_in(value, offset))
}

fn inline_table_in(value: &Spanned<DeValue<'_>>, offset: usize) -> Option<usize> {
    match value.get_ref() {
        DeValue::Table(table) => enclosing_inline_table(table, offset)
            .or_else(|| holds(value.span(), offset).then_some(value.span().start)),
        DeValue::Array(items) => items.iter().find_map(|item| inline_table_in(item, offset)),
        _ => None,
    }
}

/// The start of the first line whose key or table header has too many dotted parts for
/// toml (which reports that without a position).
fn long_dotted_key(text: &str) -> Option<usize> {
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let key = line.split('=').next().unwrap_or_default();
        if key.matches('.').count() + 1 >= TOML_DEPTH_LIMIT {
            return Some(start + (line.len() - line.trim_start().len()));
        }
        start += line.len();
    }
    None
}

/// A well-formed document whose keys or values do not fit the scenario format.
fn shape_issue(text: &str, err: &Error) -> Issue {
    let offset = offset_of(err);
    let located = DeTable::parse(text)
        .ok()
        .and_then(|doc| locate(&doc, offset));
    let message = err.message();
    if let Some(key) = backticked(message, "missing field `") {
        let field = match located {
            Some(parent) => format!("{parent}.{key}"),
            None => key.to_owned(),
        };
        return Issue::new(offset, field, format!("required key `{key}` is missing"));
    }
    let field = located.unwrap_or_else(|| "(document)".to_owned());
    let message = plain_words(message);
    let message = match field.as_str() {
        "stage" | "subscription" if message.contains("expected an array") => format!(
            "`{field}` must be an array of tables: start each one with [[{field}]] (double \
             brackets)"
        ),
        _ if message == "integer number overflowed" => format!(
            "this whole number is too large; numbers in scenario files must be at most {}",
            u64::MAX
        ),
        _ => message,
    };
    Issue::new(offset, field, message)
}

/// serde's words for TOML's: a "sequence" is an array, and a "map" or a "struct RawDist"
/// (a private type's name) is a table.
fn plain_words(message: &str) -> String {
    let message = message
        .replace("a sequence", "an array")
        .replace("sequence,", "array,")
        .replace("type: map,", "type: table,");
    match message.split_once("expected struct ") {
        Some((head, _)) => format!("{head}expected a table"),
        None => message,
    }
}

/// The text between `prefix` and the next backtick of `message`.
fn backticked<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

/// The path (`stage[0].source.range`) of the deepest key or value that holds byte
/// `offset`; a span's end counts as inside, because syntax errors often point just past
/// the value they are about (an unclosed array, a missing value).
fn locate(doc: &Spanned<DeTable<'_>>, offset: usize) -> Option<String> {
    let mut path = String::new();
    find_in_table(doc.get_ref(), offset, &mut path).then_some(path)
}

fn holds(span: std::ops::Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset <= span.end
}

/// Appends to `path` the way to `offset` inside `table`; false if it is not there.
fn find_in_table(table: &DeTable<'_>, offset: usize, path: &mut String) -> bool {
    for (key, value) in table.iter() {
        let len = path.len();
        push_key(path, key.get_ref());
        if holds(key.span(), offset) || find_in_value(value, offset, path) {
            return true;
        }
        path.truncate(len);
    }
    false
}

/// Appends `key` to `path`, written `""` when it is empty (`= 1` is an empty key), so that
/// a field path is never empty.
fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(if key.is_empty() { "\"\"" } else { key });
}

/// Like [`find_in_table`], for a value: its children first, then the value itself.
fn find_in_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut String) -> bool {
    match value.get_ref() {
        DeValue::Table(table) if find_in_table(table, offset, path) => return true,
        DeValue::Array(array) => {
            for (i, item) in array.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                if find_in_value(item, offset, path) {
                    return true;
                }
                path.truncate(len);
            }
        }
        _ => {}
    }
    holds(value.span(), offset)
}
