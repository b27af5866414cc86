//! Reading YAML streams into JSON values the way kustomize reads them: plain scalars resolved
//! by [`Schema`], anchors and aliases expanded, merge keys (`<<`) applied, duplicate keys
//! rejected, and the values of `metadata.annotations` kept as the text they were written as.
//!
//! Every document is bounded, so no input exhausts memory, time or the stack: aliases may not
//! expand into more nodes than go-yaml (kustomize's parser) allows, collections nest at most
//! [`MAX_DEPTH`] deep, and a document holds at most [`MAX_NODES`] nodes once expanded.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::map::Entry;
use serde_json::{Map, Value};
use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle, ScanError, Span, Tag};

use super::scalar::{Resolved, Schema, resolve};

/// How deep collections may nest in one document (the parser's own limit for block and for
/// flow collections alike). Real manifests, CRD schemas included, stay below 50.
pub const MAX_DEPTH: usize = 255;

/// How many nodes (scalars, sequences, mappings) one document may hold once its aliases are
/// expanded: about 40 MiB of YAML, far more than any Kubernetes object (the API server stores
/// at most 1.5 MiB per object).
pub const MAX_NODES: usize = 2_000_000;

/// Below this many nodes, up to 99% of a document may come from alias expansion; above
/// [`ALIAS_RATIO_HIGH`], 10%; in between the share falls linearly (go-yaml's rule).
const ALIAS_RATIO_LOW: usize = 400_000;
const ALIAS_RATIO_HIGH: usize = 4_000_000;

/// A YAML syntax or structure error, with the position it was found at (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// One document of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub value: Value,
    /// The line the document's content starts on.
    pub line: usize,
    /// The keys of a top-level mapping with the line each one is on.
    pub key_lines: Vec<(String, usize)>,
    /// Annotations set to null (in patches), with the text the null was written as.
    pub null_annotations: Vec<(String, String)>,
    /// Keys given again in the same mapping, with the line of the later one (only when read
    /// with [`parse_last_key_wins`]; otherwise a duplicate key is an error).
    pub duplicate_keys: Vec<(String, usize)>,
}

/// Parses every document of `text`; empty documents are returned as `Value::Null`.
pub fn parse_documents(text: &str, schema: Schema) -> Result<Vec<Document>, YamlError> {
    load(text, schema, false, false)
}

/// Parses documents where a key given twice in a mapping is no error: the later value wins,
/// as kustomize reads a kustomization file. The duplicates are listed in
/// [`Document::duplicate_keys`].
pub fn parse_last_key_wins(text: &str, schema: Schema) -> Result<Vec<Document>, YamlError> {
    load(text, schema, false, true)
}

/// Parses patch documents: like manifests, except that an annotation set to null stays null
/// (so that it deletes), its text recorded in [`Document::null_annotations`].
pub fn parse_patch_documents(text: &str) -> Result<Vec<Document>, YamlError> {
    load(text, Schema::Core, true, false)
}

fn load(
    text: &str,
    schema: Schema,
    keep_null_annotations: bool,
    last_key_wins: bool,
) -> Result<Vec<Document>, YamlError> {
    let mut options = Options::default();
    options.emit_comments = false;
    options.flow_nesting_limit = MAX_DEPTH;
    options.block_nesting_limit = MAX_DEPTH;
    let mut loader = Loader {
        events: match super::fast::events(text) {
            Some(events) => Events::Fast(events),
            None => Events::Full(Box::new(Parser::new_from_str_with_options(text, options))),
        },
        schema,
        anchors: HashMap::new(),
        budget: Budget::default(),
        depth: 0,
        key_lines: Vec::new(),
        keep_null_annotations,
        null_annotations: Vec::new(),
        null_text: None,
        last_key_wins,
        duplicate_keys: Vec::new(),
    };
    let mut documents = Vec::new();
    while let Some((event, _)) = loader.next()? {
        match event {
            Event::DocumentStart(..) => documents.push(loader.document()?),
            Event::StreamEnd => break,
            _ => {}
        }
    }
    Ok(documents)
}

/// Where in a resource a value sits, as far as reading cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Root,
    Metadata,
    Annotations,
    AnnotationValue,
    Other,
}

impl Place {
    fn child(self, key: &str) -> Place {
        match (self, key) {
            (Place::Root, "metadata") => Place::Metadata,
            (Place::Metadata, "annotations") => Place::Annotations,
            (Place::Annotations, _) => Place::AnnotationValue,
            _ => Place::Other,
        }
    }
}

/// What one document has cost so far.
#[derive(Debug, Default)]
struct Budget {
    /// Nodes produced, those of expanded aliases included.
    nodes: usize,
    /// Nodes produced by expanding aliases.
    aliased: usize,
}

impl Budget {
    /// Counts `nodes` more nodes (`aliased` when they come from an alias) and refuses a
    /// document that grew too large or that is mostly aliases, the way go-yaml refuses it.
    fn spend(&mut self, nodes: usize, aliased: bool) -> Result<(), &'static str> {
        self.nodes = self.nodes.saturating_add(nodes);
        if aliased {
            self.aliased = self.aliased.saturating_add(nodes);
        }
        if self.aliased > 100
            && self.nodes > 1000
            && self.aliased as f64 / self.nodes as f64 > allowed_alias_ratio(self.nodes)
        {
            return Err("document contains excessive aliasing");
        }
        if self.nodes > MAX_NODES {
            return Err("document has more than 2,000,000 nodes (aliases expanded)");
        }
        Ok(())
    }
}

/// The share of a document's nodes that may come from alias expansion.
fn allowed_alias_ratio(nodes: usize) -> f64 {
    if nodes <= ALIAS_RATIO_LOW {
        0.99
    } else if nodes >= ALIAS_RATIO_HIGH {
        0.10
    } else {
        let range = (ALIAS_RATIO_HIGH - ALIAS_RATIO_LOW) as f64;
        0.99 - 0.89 * ((nodes - ALIAS_RATIO_LOW) as f64 / range)
    }
}

/// Where a [`Loader`]'s events come from: the fast reader when the text is in its subset
/// (see [`super::fast`]), else the full parser.
enum Events<'a> {
    Fast(super::fast::Events<'a>),
    Full(Box<Parser<'a, serde_saphyr::granit_parser::StrInput<'a>>>),
}

struct Loader<'a> {
    events: Events<'a>,
    schema: Schema,
    /// Anchored values with the number of nodes each expands to.
    anchors: HashMap<usize, (Value, usize)>,
    budget: Budget,
    /// How many collections enclose the node being read.
    depth: usize,
    key_lines: Vec<(String, usize)>,
    keep_null_annotations: bool,
    null_annotations: Vec<(String, String)>,
    /// The text of the last annotation value read as null.
    null_text: Option<String>,
    last_key_wins: bool,
    duplicate_keys: Vec<(String, usize)>,
}

type Next<'a> = Option<(Event<'a>, Span)>;

impl<'a> Loader<'a> {
    fn next(&mut self) -> Result<Next<'a>, YamlError> {
        loop {
            let next = match &mut self.events {
                Events::Fast(events) => events.next().map(Ok),
                Events::Full(parser) => parser.next_event(),
            };
            match next {
                None => return Ok(None),
                Some(Err(err)) => return Err(scan_error(&err)),
                Some(Ok((Event::Comment(..), _))) => continue,
                Some(Ok(pair)) => return Ok(Some(pair)),
            }
        }
    }

    fn expect_next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        self.next()?.ok_or_else(|| YamlError {
            line: 0,
            column: 0,
            message: "unexpected end of input".to_string(),
        })
    }

    fn document(&mut self) -> Result<Document, YamlError> {
        self.anchors.clear();
        self.budget = Budget::default();
        self.depth = 0;
        self.key_lines.clear();
        self.null_annotations.clear();
        self.duplicate_keys.clear();
        let (event, span) = self.expect_next()?;
        let line = span.start.line();
        let value = match event {
            Event::DocumentEnd => {
                return Ok(Document {
                    value: Value::Null,
                    line,
                    key_lines: Vec::new(),
                    null_annotations: Vec::new(),
                    duplicate_keys: Vec::new(),
                });
            }
            event => self.node(event, span, Place::Root)?,
        };
        match self.expect_next()? {
            (Event::DocumentEnd, _) => {}
            (_, span) => return Err(error_at(&span, "expected the end of the document")),
        }
        let key_lines = std::mem::take(&mut self.key_lines);
        let null_annotations = std::mem::take(&mut self.null_annotations);
        let duplicate_keys = std::mem::take(&mut self.duplicate_keys);
        Ok(Document {
            value,
            line,
            key_lines,
            null_annotations,
            duplicate_keys,
        })
    }

    fn node(&mut self, event: Event<'a>, span: Span, place: Place) -> Result<Value, YamlError> {
        if let Event::Alias(id) = event {
            let Some((value, nodes)) = self.anchors.get(&id) else {
                return Err(error_at(&span, "unknown alias"));
            };
            let nodes = *nodes;
            // Counted before the copy is made, so a bomb stops before it takes memory.
            self.budget
                .spend(nodes, true)
                .map_err(|message| error_at(&span, message))?;
            return Ok(value.clone());
        }
        self.budget
            .spend(1, false)
            .map_err(|message| error_at(&span, message))?;
        let before = self.budget.nodes;
        let (value, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => (
                self.scalar(text, style, tag.as_deref(), place, &span)?,
                anchor,
            ),
            Event::SequenceStart(_, anchor, _) => {
                self.enter(&span)?;
                let items = self.sequence()?;
                self.depth -= 1;
                (items, anchor)
            }
            Event::MappingStart(_, anchor, _) => {
                self.enter(&span)?;
                let map = self.mapping(place)?;
                self.depth -= 1;
                (map, anchor)
            }
            _ => return Err(error_at(&span, "unexpected YAML event")),
        };
        if anchor != 0 {
            let nodes = self.budget.nodes - before + 1;
            self.anchors.insert(anchor, (value.clone(), nodes));
        }
        Ok(value)
    }

    /// Enters one more level of nesting, refusing to go deeper than [`MAX_DEPTH`].
    fn enter(&mut self, span: &Span) -> Result<(), YamlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(error_at(span, "collections nested deeper than 255 levels"));
        }
        Ok(())
    }

    /// The value of a scalar event; its text becomes the value's string without a copy when
    /// the parser already had to build it.
    fn scalar(
        &mut self,
        text: Cow<'a, str>,
        style: ScalarStyle,
        tag: Option<&Tag>,
        place: Place,
        span: &Span,
    ) -> Result<Value, YamlError> {
        if place == Place::AnnotationValue {
            let plain = style == ScalarStyle::Plain && tag.is_none();
            let text = if plain && span.start.index() == span.end.index() {
                Cow::Borrowed("")
            } else {
                text
            };
            if self.keep_null_annotations && plain && resolve(&text, self.schema) == Resolved::Null
            {
                self.null_text = Some(text.into_owned());
                return Ok(Value::Null);
            }
            return Ok(Value::String(text.into_owned()));
        }
        let resolved = match tag {
            Some(tag) => tagged(tag, &text, self.schema),
            None if style == ScalarStyle::Plain => resolve(&text, self.schema),
            None => Resolved::Str,
        };
        match resolved {
            Resolved::Str | Resolved::Merge => Ok(Value::String(text.into_owned())),
            resolved => resolved
                .into_value(&text)
                .ok_or_else(|| error_at(span, &format!("unsupported number {text:?}"))),
        }
    }

    fn sequence(&mut self) -> Result<Value, YamlError> {
        let mut items = Vec::new();
        loop {
            let (event, span) = self.expect_next()?;
            if matches!(event, Event::SequenceEnd) {
                return Ok(Value::Array(items));
            }
            items.push(self.node(event, span, Place::Other)?);
        }
    }

    fn mapping(&mut self, place: Place) -> Result<Value, YamlError> {
        let mut map = Map::new();
        let mut merges = Vec::new();
        loop {
            let (event, span) = self.expect_next()?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let is_merge = matches!(
                &event,
                Event::Scalar(text, ScalarStyle::Plain, _, None) if text == "<<"
            );
            let key = key_text(self.node(event, span, Place::Other)?);
            let (event, value_span) = self.expect_next()?;
            let value = self.node(event, value_span, place.child(&key))?;
            if let Some(text) = self.null_text.take() {
                self.null_annotations.push((key.clone(), text));
            }
            if is_merge {
                merges.push(value);
                continue;
            }
            // One look-up (one hash of the key) finds a duplicate and places a new key.
            match map.entry(key) {
                Entry::Vacant(entry) => {
                    if place == Place::Root {
                        self.key_lines
                            .push((entry.key().clone(), span.start.line()));
                    }
                    entry.insert(value);
                }
                Entry::Occupied(entry) if self.last_key_wins => {
                    // The later value wins, in the place of the later key.
                    let (key, _) = entry.shift_remove_entry();
                    self.duplicate_keys.push((key.clone(), span.start.line()));
                    if place == Place::Root {
                        self.key_lines.retain(|(k, _)| *k != key);
                        self.key_lines.push((key.clone(), span.start.line()));
                    }
                    map.insert(key, value);
                }
                Entry::Occupied(entry) => {
                    return Err(error_at(
                        &span,
                        &format!("mapping key {:?} already defined", entry.key()),
                    ));
                }
            }
        }
        for merged in merges {
            merge_into(&mut map, merged);
        }
        Ok(Value::Object(map))
    }
}

/// Applies a merge key's value: keys already present win, earlier sources win.
fn merge_into(map: &mut Map<String, Value>, merged: Value) {
    match merged {
        Value::Object(source) => {
            for (key, value) in source {
                map.entry(key).or_insert(value);
            }
        }
        Value::Array(sources) => {
            for source in sources {
                merge_into(map, source);
            }
        }
        _ => {}
    }
}

/// The text of a mapping key: strings as they are, other scalars as written.
fn key_text(key: Value) -> String {
    match key {
        Value::String(s) => s,
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

fn tagged(tag: &Tag, text: &str, schema: Schema) -> Resolved {
    if !tag.is_yaml_core_schema() {
        return Resolved::Str;
    }
    let resolved = resolve(text, schema);
    match (tag.suffix(), &resolved) {
        ("null", Resolved::Null)
        | ("bool", Resolved::Bool(_))
        | ("int", Resolved::Int(_) | Resolved::Uint(_))
        | ("float", Resolved::Float(_)) => resolved,
        ("float", Resolved::Int(i)) => Resolved::Float(*i as f64),
        _ => Resolved::Str,
    }
}

fn error_at(span: &Span, message: &str) -> YamlError {
    YamlError {
        line: span.start.line(),
        column: span.start.col() + 1,
        message: message.to_string(),
    }
}

fn scan_error(err: &ScanError) -> YamlError {
    let marker = err.marker();
    YamlError {
        line: marker.line(),
        column: marker.col() + 1,
        message: err.info(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one(text: &str) -> Value {
        let mut docs = parse_documents(text, Schema::Core).expect("valid YAML");
        docs.remove(0).value
    }

    #[test]
    fn reads_scalars_with_core_rules() {
        let value = one("a: yes\nb: 1.0\nc: \"1\"\nd: ~\ne: 2001-12-14\nf: !!str 5\n");
        assert_eq!(
            value,
            json!({"a": "yes", "b": 1.0, "c": "1", "d": null, "e": "2001-12-14T00:00:00Z", "f": "5"})
        );
    }

    #[test]
    fn keeps_annotation_values_as_written() {
        let value = one("metadata:\n  annotations:\n    a: 1.0\n    b: ~\n    c: true\n");
        assert_eq!(
            value,
            json!({"metadata": {"annotations": {"a": "1.0", "b": "~", "c": "true"}}})
        );
    }

    #[test]
    fn expands_aliases_and_merge_keys() {
        let value = one("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\nlist: [*b]\n");
        assert_eq!(
            value,
            json!({"base": {"x": 1, "y": 2}, "derived": {"x": 1, "y": 3}, "list": [{"x": 1, "y": 2}]})
        );
    }

    #[test]
    fn splits_documents_and_reports_lines() {
        let docs = parse_documents("a: 1\n---\n---\nb: 2\n", Schema::Core).expect("valid");
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[1].value, Value::Null);
        assert_eq!(docs[2].line, 4);
        assert_eq!(docs[0].key_lines, vec![("a".to_string(), 1)]);
    }

    #[test]
    fn rejects_duplicate_keys_and_bad_syntax_with_a_line() {
        let err = parse_documents("a: 1\na: 2\n", Schema::Core).expect_err("duplicate");
        assert_eq!(err.line, 2);
        let err = parse_documents("a: [1\nb: 2\n", Schema::Core).expect_err("unclosed");
        assert!(err.line >= 1, "{err:?}");
    }

    #[test]
    fn aliases_may_repeat_small_anchors_but_not_explode() {
        // 1,800 nodes from aliases and 57 written out: less than 99% aliases, as go-yaml allows.
        let filler: Vec<String> = (0..50).map(|i| i.to_string()).collect();
        let mut text = format!(
            "filler: [{}]\nbase: &b {{x: 1, y: [1, 2, 3]}}\nlist:\n",
            filler.join(", ")
        );
        for _ in 0..300 {
            text.push_str("- *b\n");
        }
        let value = one(&text);
        assert_eq!(value["list"].as_array().map(Vec::len), Some(300));
        let mut bomb = String::from("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n");
        for (prev, next) in "abcdefgh".chars().zip("bcdefghi".chars()) {
            let aliases = vec![format!("*{prev}"); 10].join(", ");
            bomb.push_str(&format!("{next}: &{next} [{aliases}]\n"));
        }
        let err = parse_documents(&bomb, Schema::Core).expect_err("a bomb");
        assert_eq!(err.message, "document contains excessive aliasing");
        assert_eq!(err.line, 4);
    }

    #[test]
    fn the_alias_share_allowed_falls_with_the_document_size() {
        assert_eq!(allowed_alias_ratio(1000), 0.99);
        assert_eq!(allowed_alias_ratio(ALIAS_RATIO_HIGH), 0.10);
        let middle = allowed_alias_ratio((ALIAS_RATIO_LOW + ALIAS_RATIO_HIGH) / 2);
        assert!((middle - 0.545).abs() < 1e-9, "{middle}");
    }

    #[test]
    fn nesting_deeper_than_the_bound_is_an_error() {
        let ok = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        parse_documents(&ok, Schema::Core).expect("within the bound");
        let mut mixed = String::new();
        for level in 0..200 {
            mixed.push_str(&format!("{}a:\n", " ".repeat(level)));
        }
        mixed.push_str(&format!(
            "{}{}1{}\n",
            " ".repeat(200),
            "[".repeat(100),
            "]".repeat(100)
        ));
        let err = parse_documents(&mixed, Schema::Core).expect_err("too deep");
        assert_eq!(err.message, "collections nested deeper than 255 levels");
    }
}
