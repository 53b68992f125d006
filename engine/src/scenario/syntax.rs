//! TOML text to [`RawScenario`], with toml's errors turned into [`Issue`]s.
//!
//! toml reports a byte span and a message but no usable key path, so the path is
//! recovered here by finding the key or value of the parsed document that holds the span.
//! For syntax errors the document is the part the parser managed to read.

use serde::Deserialize;
use toml::de::{DeTable, DeValue, Deserializer, Error};
use toml::Spanned;

use super::error::Issue;
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

/// A TOML syntax error.
fn syntax_issue(text: &str, doc: &Spanned<DeTable<'_>>, err: &Error) -> Issue {
    let offset = offset_of(err);
    if err.message() == "duplicate key" {
        let key = err
            .span()
            .and_then(|span| text.get(span))
            .unwrap_or_default()
            .trim();
        let message = format!("duplicate key `{key}`: a key may appear only once in a table");
        return Issue::new(offset, key, message);
    }
    let field = locate(doc, offset).unwrap_or_else(|| SYNTAX.to_owned());
    Issue::new(offset, field, err.message())
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
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key.get_ref());
        if holds(key.span(), offset) || find_in_value(value, offset, path) {
            return true;
        }
        path.truncate(len);
    }
    false
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
