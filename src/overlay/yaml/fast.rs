//! A fast reader for the YAML that manifests and kustomizations are nearly always written in:
//! block mappings and sequences, one-line plain and quoted scalars, literal blocks, one-line
//! flow collections of such scalars (`upstream: [dev]`, `- {name: dev, overlay: envs/dev}`),
//! comments and `---` separators. It produces the same events the full parser produces for
//! such a text, with the same positions for every node and document start, or declines
//! (`None`) at the first thing outside that subset (anchors, aliases, tags, folded and
//! multi-line scalars, flow collections over several lines or with empty scalars,
//! escapes, tabs, directives, …), and the full parser reads the whole text instead.
//!
//! The full parser spends hundreds of instructions a byte; this one a few dozen, which is most
//! of reading a repository's files. Declining is always safe: the subset is chosen so that
//! every text it accepts is one the full parser reads without error, and a test compares the
//! two on every YAML file of the test suite and on cases made to sit at the subset's edges.
//! Only the spans of node and document-start events are kept exact: the reader of these
//! events uses no other (end events carry the position where the next token starts).

use std::borrow::Cow;

use serde_saphyr::granit_parser::{Event, Marker, ScalarStyle, Span, StructureStyle};

/// How deep this reader nests collections before it leaves a text to the full parser (whose
/// own limit, and its error, apply then).
const MAX_DEPTH: usize = 64;

/// The events of `text`, or `None` when it is not in the subset this reader reads.
pub fn events(text: &str) -> Option<Events<'_>> {
    // Positions count characters: with ASCII only, they are byte offsets (kept as `u32`).
    if !text.is_ascii() || text.contains(['\t', '\r']) || u32::try_from(text.len()).is_err() {
        return None;
    }
    let lines = lines(text);
    // A line makes at most three events but for the ends of collections, which a line that
    // dedents closes: three a line, and the stream's own, mostly spares the vector's growth.
    let capacity = lines.len() * 3 + 8;
    let mut reader = Reader {
        text,
        lines,
        next: 0,
        events: Vec::with_capacity(capacity),
        depth: 0,
    };
    reader.stream()?;
    Some(Events {
        events: reader.events.into_iter(),
        lines: reader.lines,
        line: 0,
    })
}

/// The texts of `field` in each mapping of the sequence reached from the root of a
/// one-document `text` through the mapping keys `path` (`spec`, `stages`; `overlay`), or `None`
/// when the text is outside this reader's subset or not shaped so (another node where a
/// mapping or sequence is expected, an entry without the field or whose field is no scalar).
/// A quick look: no values are built and no positions computed, and a key given twice (which
/// the loader refuses) is found where it is first given.
pub fn field_of_each<'a>(text: &'a str, path: &[&str], field: &str) -> Option<Vec<Cow<'a, str>>> {
    if !text.is_ascii() || text.contains(['\t', '\r']) || u32::try_from(text.len()).is_err() {
        return None;
    }
    let mut reader = Reader {
        text,
        lines: lines(text),
        next: 0,
        events: Vec::new(),
        depth: 0,
    };
    reader.stream()?;
    let events = &reader.events;
    // StreamStart, DocumentStart, the root, DocumentEnd, StreamEnd: one document.
    if !matches!(events.get(1)?.kind, Kind::DocumentStart { .. })
        || skip(events, 2)? + 2 != events.len()
    {
        return None;
    }
    let mut at = 2;
    for key in path {
        at = value_of(events, at, key)?;
    }
    if !matches!(events[at].kind, Kind::SequenceStart(_)) {
        return None;
    }
    let mut found = Vec::new();
    at += 1;
    while !matches!(events.get(at)?.kind, Kind::SequenceEnd) {
        let value = &events[value_of(events, at, field)?];
        if !matches!(value.kind, Kind::Scalar(_)) {
            return None;
        }
        found.push(value.text.clone());
        at = skip(events, at)?;
    }
    Some(found)
}

/// The index of the value of `key` in the mapping starting at event `at`.
fn value_of(events: &[Recorded<'_>], at: usize, key: &str) -> Option<usize> {
    if !matches!(events.get(at)?.kind, Kind::MappingStart(_)) {
        return None;
    }
    let mut at = at + 1;
    loop {
        let entry = events.get(at)?;
        match entry.kind {
            Kind::MappingEnd => return None,
            Kind::Scalar(_) if entry.text == key => return Some(at + 1),
            _ => at = skip(events, skip(events, at)?)?,
        }
    }
}

/// The index of the event after the node starting at event `at`.
fn skip(events: &[Recorded<'_>], at: usize) -> Option<usize> {
    let mut open = 0usize;
    let mut at = at;
    loop {
        match events.get(at)?.kind {
            Kind::MappingStart(_) | Kind::SequenceStart(_) => open += 1,
            Kind::MappingEnd | Kind::SequenceEnd => open = open.checked_sub(1)?,
            Kind::Scalar(_) => {}
            _ => return None,
        }
        at += 1;
        if open == 0 {
            return Some(at);
        }
    }
}

/// The events of a text the reader read, each made into the full parser's event and span as
/// it is taken: recorded, an event is a fifth of that size, which is most of what recording
/// and reading them back cost.
pub struct Events<'a> {
    events: std::vec::IntoIter<Recorded<'a>>,
    lines: Vec<Line>,
    /// The line the last position was found on: positions come nearly always in order, so
    /// the next one is usually on it or a little after.
    line: usize,
}

impl Events<'_> {
    /// The position of byte `index` (a character, the text being ASCII).
    fn marker(&mut self, index: usize) -> Marker {
        let lines = &self.lines;
        let mut at = self.line;
        if lines[at].start > index {
            at = lines
                .partition_point(|l| l.start <= index)
                .saturating_sub(1);
        } else {
            while lines.get(at + 1).is_some_and(|next| next.start <= index) {
                at += 1;
            }
        }
        self.line = at;
        let line = lines[at];
        Marker::new(index, line.number, index - line.start).with_byte_offset(Some(index))
    }
}

impl<'a> Iterator for Events<'a> {
    type Item = (Event<'a>, Span);

    fn next(&mut self) -> Option<Self::Item> {
        let recorded = self.events.next()?;
        let event = match recorded.kind {
            Kind::StreamStart => Event::StreamStart,
            Kind::StreamEnd => Event::StreamEnd,
            Kind::DocumentStart { explicit } => Event::DocumentStart(explicit, None),
            Kind::DocumentEnd => Event::DocumentEnd,
            Kind::MappingStart(style) => Event::MappingStart(style, 0, None),
            Kind::MappingEnd => Event::MappingEnd,
            Kind::SequenceStart(style) => Event::SequenceStart(style, 0, None),
            Kind::SequenceEnd => Event::SequenceEnd,
            Kind::Scalar(style) => Event::Scalar(recorded.text, style, 0, None),
        };
        let start = self.marker(recorded.start as usize);
        let mut span = Span::new(start, self.marker(recorded.end as usize));
        if recorded.key {
            span.indent = Some(span.start.col());
        }
        Some((event, span))
    }
}

/// One event as the reader records it.
struct Recorded<'a> {
    kind: Kind,
    /// A scalar's value (empty for other events).
    text: Cow<'a, str>,
    start: u32,
    end: u32,
    /// A mapping key, whose span carries its indentation.
    key: bool,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    StreamStart,
    StreamEnd,
    DocumentStart { explicit: bool },
    DocumentEnd,
    MappingStart(StructureStyle),
    MappingEnd,
    SequenceStart(StructureStyle),
    SequenceEnd,
    Scalar(ScalarStyle),
}

/// One line of the text: where it starts and ends (without its newline), and its indentation.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
    indent: usize,
    /// 1-based.
    number: usize,
}

impl Line {
    /// Where the line's content starts.
    fn content(&self) -> usize {
        self.start + self.indent
    }
}

fn lines(text: &str) -> Vec<Line> {
    let mut out = Vec::with_capacity(text.len() / 24 + 1);
    let mut start = 0;
    for (number, line) in text.split('\n').enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        out.push(Line {
            start,
            end: start + line.len(),
            indent,
            number: number + 1,
        });
        start += line.len() + 1;
    }
    out
}

struct Reader<'a> {
    text: &'a str,
    lines: Vec<Line>,
    /// The next line to read.
    next: usize,
    events: Vec<Recorded<'a>>,
    depth: usize,
}

/// A scalar's value and style.
type Scalar<'a> = (Cow<'a, str>, ScalarStyle);

/// A scalar, with where it starts and ends.
type Token<'a> = (Scalar<'a>, usize, usize);

/// What a line's content is, as far as choosing a node goes.
enum Start {
    /// `- ` (a sequence entry).
    Entry,
    /// `---`.
    DocumentMarker,
    Other,
}

impl<'a> Reader<'a> {
    fn push(&mut self, kind: Kind, start: usize, end: usize) {
        self.record(kind, Cow::Borrowed(""), start, end, false);
    }

    fn push_scalar(&mut self, (text, style): Scalar<'a>, start: usize, end: usize) {
        self.record(Kind::Scalar(style), text, start, end, false);
    }

    fn push_key(&mut self, (text, style): Scalar<'a>, start: usize, end: usize) {
        self.record(Kind::Scalar(style), text, start, end, true);
    }

    fn record(&mut self, kind: Kind, text: Cow<'a, str>, start: usize, end: usize, key: bool) {
        // `events` takes no text of 4 GiB or more, so positions fit.
        self.events.push(Recorded {
            kind,
            text,
            start: start as u32,
            end: end as u32,
            key,
        });
    }

    /// Where the next token starts: the next content line's content, or the end of the text.
    fn next_token(&mut self) -> usize {
        match self.peek() {
            Some(line) => line.content(),
            None => self.text.len(),
        }
    }

    /// The next line with content (not blank, not only a comment), skipping the others.
    fn peek(&mut self) -> Option<Line> {
        while let Some(&line) = self.lines.get(self.next) {
            let content = &self.text[line.content()..line.end];
            if content.is_empty() || content.starts_with('#') {
                self.next += 1;
                continue;
            }
            return Some(line);
        }
        None
    }

    fn start_of(&self, line: Line) -> Start {
        let content = &self.text[line.content()..line.end];
        if line.indent == 0 && (content == "---" || content.starts_with("--- #")) {
            Start::DocumentMarker
        } else if content.starts_with("- ") {
            Start::Entry
        } else {
            Start::Other
        }
    }

    fn stream(&mut self) -> Option<()> {
        self.push(Kind::StreamStart, 0, 0);
        let mut first = true;
        while let Some(line) = self.peek() {
            let explicit = matches!(self.start_of(line), Start::DocumentMarker);
            if explicit {
                self.push(
                    Kind::DocumentStart { explicit: true },
                    line.start,
                    line.start + 3,
                );
                self.next += 1;
                let after = line.start + 3;
                match self.peek() {
                    Some(next) if !matches!(self.start_of(next), Start::DocumentMarker) => {
                        self.block(next, 0)?;
                    }
                    _ => self.push_scalar((Cow::Borrowed("~"), ScalarStyle::Plain), after, after),
                }
            } else {
                // Content before any `---` is an implicit first document; after a document,
                // only a `---` starts another.
                if !first {
                    return None;
                }
                self.push(
                    Kind::DocumentStart { explicit: false },
                    line.content(),
                    line.content(),
                );
                self.block(line, 0)?;
            }
            first = false;
            let end = self.next_token();
            self.push(Kind::DocumentEnd, end, end);
            if let Some(line) = self.peek()
                && !matches!(self.start_of(line), Start::DocumentMarker)
            {
                return None;
            }
        }
        let end = self.text.len();
        self.push(Kind::StreamEnd, end, end);
        Some(())
    }

    /// The block node whose first line is `line`, at least `min_indent` deep.
    fn block(&mut self, line: Line, min_indent: usize) -> Option<()> {
        if line.indent < min_indent {
            return None;
        }
        match self.start_of(line) {
            Start::Entry => self.sequence(line.indent, false),
            Start::DocumentMarker => None,
            Start::Other => self.mapping(line.content(), line.indent),
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// A block mapping whose first key starts at `first` (which may be inside a line, after
    /// `- `), with its keys in column `column`.
    fn mapping(&mut self, first: usize, column: usize) -> Option<()> {
        self.enter()?;
        self.push(Kind::MappingStart(StructureStyle::Block), first, first);
        let mut at = first;
        loop {
            let line = self.lines[self.next];
            let (key, value) = self.key(at, line.end)?;
            self.push_key(key.0, key.1, key.2);
            self.value(line, column, value)?;
            match self.peek() {
                Some(next) if matches!(self.start_of(next), Start::DocumentMarker) => break,
                Some(next)
                    if next.indent == column && matches!(self.start_of(next), Start::Other) =>
                {
                    at = next.content();
                }
                Some(next) if next.indent >= column => return None,
                _ => break,
            }
        }
        let end = self.next_token();
        self.push(Kind::MappingEnd, end, end);
        self.depth -= 1;
        Some(())
    }

    /// The value after the key of a mapping in column `column`, whose `:` is at `colon`.
    fn value(&mut self, line: Line, column: usize, colon: usize) -> Option<()> {
        let start = skip_spaces(self.text, colon + 1, line.end);
        if start < line.end && !self.text[start..].starts_with('#') {
            if start == colon + 1 {
                return None;
            }
            if self.text.as_bytes()[start] == b'|' {
                return self.literal(line, column, start);
            }
            self.inline(start, line.end)?;
            self.next += 1;
            // A more indented line after would continue the scalar: left to the full parser.
            return match self.peek() {
                Some(next) if next.indent > column => None,
                _ => Some(()),
            };
        }
        if start < line.end && start == colon + 1 {
            // `key:#…` is not a comment.
            return None;
        }
        self.next += 1;
        match self.peek() {
            Some(next) if next.indent > column => self.block(next, column + 1),
            Some(next) if next.indent == column && matches!(self.start_of(next), Start::Entry) => {
                self.sequence(column, true)
            }
            _ => {
                self.push_scalar((Cow::Borrowed("~"), ScalarStyle::Plain), colon, colon);
                Some(())
            }
        }
    }

    /// A literal block scalar (`|` or `|-`) whose header is at `header` on `line`, the value of
    /// a key in column `column`. Its lines are those indented as its first one, which must
    /// follow the header directly; explicit indentation, `|+`, and lines of spaces deeper than
    /// the content are left to the full parser.
    fn literal(&mut self, line: Line, column: usize, header: usize) -> Option<()> {
        let text = self.text;
        let rest = &text[header + 1..line.end];
        let (strip, rest) = match rest.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let rest = rest.trim_start_matches(' ');
        if !(rest.is_empty() || rest.starts_with('#') && text.as_bytes()[header + 1] != b'#') {
            return None;
        }
        let first = *self.lines.get(self.next + 1)?;
        let indent = first.indent;
        if first.content() == first.end || indent <= column {
            return None;
        }
        let mut value = String::new();
        let mut pending = 0;
        let mut at = self.next + 1;
        while let Some(&l) = self.lines.get(at) {
            if l.content() == l.end {
                if l.end - l.start > indent {
                    return None;
                }
                pending += 1;
            } else if l.indent >= indent {
                if !printable(&text[l.start..l.end]) {
                    return None;
                }
                value.extend(std::iter::repeat_n('\n', pending));
                pending = 0;
                value.push_str(&text[l.start + indent..l.end]);
                value.push('\n');
                if at + 1 == self.lines.len() {
                    // The last line, without a line break to end it.
                    return None;
                }
            } else {
                break;
            }
            at += 1;
        }
        if strip {
            value.pop();
        }
        let start = first.content();
        let end = self.lines.get(at).map_or(text.len(), Line::content);
        self.push_scalar((Cow::Owned(value), ScalarStyle::Literal), start, end);
        self.next = at;
        match self.peek() {
            Some(next) if next.indent > column => None,
            _ => Some(()),
        }
    }

    /// A block sequence with its `- ` in column `column`. An indentless one (at the column of
    /// the key it is the value of) starts where its first entry's content does.
    fn sequence(&mut self, column: usize, indentless: bool) -> Option<()> {
        self.enter()?;
        let line = self.lines[self.next];
        let dash = line.content();
        let first = skip_spaces(self.text, dash + 1, line.end);
        self.push(
            Kind::SequenceStart(StructureStyle::Block),
            if indentless { first } else { dash },
            if indentless { first } else { dash },
        );
        loop {
            let line = self.lines[self.next];
            let content = skip_spaces(self.text, line.content() + 1, line.end);
            if content >= line.end || self.text[content..].starts_with(['#', '-']) {
                return None;
            }
            let entry_column = content - line.start;
            if self.is_key(content, line.end) {
                self.mapping(content, entry_column)?;
            } else {
                self.inline(content, line.end)?;
                self.next += 1;
                if let Some(next) = self.peek()
                    && next.indent > column
                {
                    return None;
                }
            }
            match self.peek() {
                Some(next) if matches!(self.start_of(next), Start::DocumentMarker) => break,
                Some(next)
                    if next.indent == column && matches!(self.start_of(next), Start::Entry) => {}
                Some(next) if next.indent > column => return None,
                // An indentless sequence ends at the next key of its mapping.
                Some(next) if next.indent == column && !indentless => return None,
                _ => break,
            }
        }
        let end = self.next_token();
        self.push(Kind::SequenceEnd, end, end);
        self.depth -= 1;
        Some(())
    }

    /// A node that ends its line (but for a comment): a scalar, or a flow collection.
    fn inline(&mut self, at: usize, end: usize) -> Option<()> {
        if matches!(self.text.as_bytes()[at], b'[' | b'{') {
            let after = self.flow(at, end)?;
            let rest = skip_spaces(self.text, after, end);
            // Only a comment may follow, after a space.
            return (rest == end || (rest > after && self.text.as_bytes()[rest] == b'#'))
                .then_some(());
        }
        let (event, from, to) = self.scalar(at, end, false)?;
        self.push_scalar(event, from, to);
        Some(())
    }

    /// The flow collection opening at `at` and closing on the same line (ending at `end`):
    /// plain scalars, and collections nested in it. Returns where it ends (after its closing
    /// bracket).
    fn flow(&mut self, at: usize, end: usize) -> Option<usize> {
        self.enter()?;
        let bytes = self.text.as_bytes();
        let mapping = bytes[at] == b'{';
        let close = if mapping { b'}' } else { b']' };
        if mapping {
            self.push(Kind::MappingStart(StructureStyle::Flow), at, at + 1);
        } else {
            self.push(Kind::SequenceStart(StructureStyle::Flow), at, at + 1);
        }
        let mut next = skip_spaces(self.text, at + 1, end);
        if next < end && bytes[next] == close {
            self.push(end_kind(mapping), next, next + 1);
            self.depth -= 1;
            return Some(next + 1);
        }
        loop {
            if mapping {
                let (key, from, to) = self.flow_scalar(next, end)?;
                // `key: value`, the colon right after the key and followed by a space.
                if to >= end || bytes[to] != b':' || bytes.get(to + 1) != Some(&b' ') {
                    return None;
                }
                self.push_scalar(key, from, to);
                next = skip_spaces(self.text, to + 1, end);
            }
            next = match bytes.get(next)? {
                b'[' | b'{' => self.flow(next, end)?,
                _ => {
                    let (value, from, to) = self.flow_scalar(next, end)?;
                    self.push_scalar(value, from, to);
                    to
                }
            };
            next = skip_spaces(self.text, next, end);
            match bytes.get(next)? {
                b',' => {
                    next = skip_spaces(self.text, next + 1, end);
                    // A trailing comma, or none between entries, is left to the full parser.
                    if next >= end || matches!(bytes[next], b',' | b']' | b'}') {
                        return None;
                    }
                }
                &b if b == close => {
                    self.push(end_kind(mapping), next, next + 1);
                    self.depth -= 1;
                    return Some(next + 1);
                }
                _ => return None,
            }
        }
    }

    /// A scalar inside a flow collection, starting at `at`: quoted on one line, or plain.
    fn flow_scalar(&self, at: usize, end: usize) -> Option<Token<'a>> {
        match self.text.as_bytes().get(at)? {
            b'"' | b'\'' => self.scalar(at, end, true),
            _ => self.flow_plain(at, end),
        }
    }

    /// A plain scalar inside a flow collection, starting at `at`: it ends before a flow
    /// indicator or a `:`, with its trailing spaces left out. Scalars holding a `:` or a
    /// comment, and empty ones, are left to the full parser.
    fn flow_plain(&self, at: usize, end: usize) -> Option<Token<'a>> {
        let text = self.text;
        if at >= end {
            return None;
        }
        let bytes = text.as_bytes();
        let mut stop = at;
        while stop < end && !matches!(bytes[stop], b',' | b'[' | b']' | b'{' | b'}' | b':') {
            if bytes[stop] == b'#' && bytes[stop - 1] == b' ' {
                return None;
            }
            stop += 1;
        }
        if stop < end && matches!(bytes[stop], b'[' | b'{') {
            return None;
        }
        let value = text[at..stop].trim_end_matches(' ');
        if starts_badly(value) || !printable(value) {
            return None;
        }
        let event = (Cow::Borrowed(value), ScalarStyle::Plain);
        Some((event, at, at + value.len()))
    }

    /// Whether the content at `at` is a mapping key (`key:` followed by a space or the end of
    /// the line).
    fn is_key(&self, at: usize, end: usize) -> bool {
        self.key(at, end).is_some()
    }

    /// The key scalar at `at` (its event, start and end) and where its `:` is.
    fn key(&self, at: usize, end: usize) -> Option<(Token<'a>, usize)> {
        let text = self.text;
        let bytes = text.as_bytes();
        let (event, from, to) = match bytes[at] {
            b'"' | b'\'' => self.scalar(at, end, true)?,
            _ => {
                if starts_badly(&text[at..end]) {
                    return None;
                }
                let mut i = at;
                let colon = loop {
                    match text[i..end].find([':', '#']) {
                        None => return None,
                        Some(offset) => {
                            let found = i + offset;
                            if bytes[found] == b'#' {
                                if bytes[found - 1] == b' ' {
                                    return None;
                                }
                                i = found + 1;
                                continue;
                            }
                            if found + 1 == end || bytes[found + 1] == b' ' {
                                break found;
                            }
                            i = found + 1;
                        }
                    }
                };
                let key = text[at..colon].trim_end_matches(' ');
                if key.is_empty() || !printable(key) {
                    return None;
                }
                let event = (Cow::Borrowed(key), ScalarStyle::Plain);
                return Some(((event, at, at + key.len()), colon));
            }
        };
        let colon = skip_spaces(text, to, end);
        (colon < end && bytes[colon] == b':' && (colon + 1 == end || bytes[colon + 1] == b' '))
            .then_some(((event, from, to), colon))
    }

    /// The scalar starting at `at` on a line ending at `end`: its event, start and end. A
    /// value must end the line (but for a comment); a key (`as_key`) may be followed by more.
    fn scalar(&self, at: usize, end: usize, as_key: bool) -> Option<Token<'a>> {
        let text = self.text;
        let bytes = text.as_bytes();
        let (event, to) = match bytes[at] {
            b'"' => {
                let close = at + 1 + text[at + 1..end].find('"')?;
                let inner = &text[at + 1..close];
                if inner.contains('\\') || !printable(inner) {
                    return None;
                }
                let event = (Cow::Borrowed(inner), ScalarStyle::DoubleQuoted);
                (event, close + 1)
            }
            b'\'' => {
                let mut close = at + 1;
                loop {
                    close += text[close..end].find('\'')?;
                    if bytes.get(close + 1) == Some(&b'\'') && close + 1 < end {
                        close += 2;
                        continue;
                    }
                    break;
                }
                let inner = &text[at + 1..close];
                if !printable(inner) {
                    return None;
                }
                let value = if inner.contains("''") {
                    Cow::Owned(inner.replace("''", "'"))
                } else {
                    Cow::Borrowed(inner)
                };
                ((value, ScalarStyle::SingleQuoted), close + 1)
            }
            _ => {
                if as_key || starts_badly(&text[at..end]) {
                    return None;
                }
                let rest = &text[at..end];
                let mut stop = rest.len();
                if let Some(comment) = rest.find(" #") {
                    stop = comment;
                }
                let value = rest[..stop].trim_end_matches(' ');
                if value.is_empty()
                    || value.contains(": ")
                    || value.ends_with(':')
                    || !printable(value)
                {
                    return None;
                }
                let event = (Cow::Borrowed(value), ScalarStyle::Plain);
                return Some((event, at, at + value.len()));
            }
        };
        if !as_key {
            let after = skip_spaces(text, to, end);
            if after < end && !(after > to && bytes[after] == b'#') {
                return None;
            }
        }
        Some((event, at, to))
    }
}

/// The end of a flow mapping or sequence.
fn end_kind(mapping: bool) -> Kind {
    if mapping {
        Kind::MappingEnd
    } else {
        Kind::SequenceEnd
    }
}

/// Whether a plain scalar may not start this way (an indicator, or `-`, `?`, `:` followed by
/// a space), or starts a document marker.
fn starts_badly(text: &str) -> bool {
    let mut chars = text.chars();
    let first = chars.next();
    let second = chars.next();
    match first {
        None => true,
        Some('-' | '?' | ':') => matches!(second, None | Some(' ' | '-' | '?' | ':')),
        Some(
            ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
            | '@' | '`',
        ) => true,
        _ => text.starts_with("...") || text.starts_with("---"),
    }
}

/// Whether `text` (ASCII) holds no control characters.
fn printable(text: &str) -> bool {
    !text.bytes().any(|b| b.is_ascii_control())
}

fn skip_spaces(text: &str, from: usize, end: usize) -> usize {
    let bytes = text.as_bytes();
    let mut at = from;
    while at < end && bytes[at] == b' ' {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use serde_saphyr::granit_parser::{Options, Parser};

    use super::*;

    /// The events of the full parser, with the positions compared.
    fn full(text: &str) -> Vec<String> {
        let mut options = Options::default();
        options.emit_comments = false;
        let mut parser = Parser::new_from_str_with_options(text, options);
        let mut out = Vec::new();
        while let Some(next) = parser.next_event() {
            let Ok((event, span)) = next else {
                out.push("error".to_string());
                break;
            };
            out.push(described(&event, &span));
        }
        out
    }

    fn described(event: &Event<'_>, span: &Span) -> String {
        match event {
            Event::Scalar(..)
            | Event::MappingStart(..)
            | Event::SequenceStart(..)
            | Event::DocumentStart(..) => format!(
                "{event:?} {}:{} {}..{}",
                span.start.line(),
                span.start.col(),
                span.start.index(),
                span.end.index()
            ),
            other => format!("{other:?}"),
        }
    }

    /// Checks that the fast reader either declines `text` or reads it as the full parser does;
    /// returns whether it read it.
    pub(crate) fn agrees(text: &str) -> bool {
        let Some(fast) = events(text) else {
            return false;
        };
        let fast: Vec<String> = fast.map(|(e, s)| described(&e, &s)).collect();
        assert_eq!(fast, full(text), "{text:?}");
        true
    }

    #[test]
    fn reads_manifests_as_the_full_parser_does() {
        let read = [
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a # c\n  labels:\n    x: \"1\"\n    \"y z\": 'q'\ndata:\nlist:\n- a\n- b: 1\n  c:\nempty:\n---\n# only\n---\nk: v\n",
            "# lead\n\nk: v\n",
            "---\na: 1\n---\n",
            "# only\n",
            "",
            "- a\n- b: c\n  d: e\n",
            "spec:\n  containers:\n    - name: x\n      image: y\n  k: 'it''s'\n",
            "a: b\n---\n# c\nd: e\n",
            "a:   spaced   # comment\nb: x[y] z\nc: x,y\nd: -1\ne: \"\"\nf: ''\n",
            "a: # c\nb: 1\n-x: y\n",
            "a: b\n---\nc: d\n---\n- x\n---\n",
            "k: v\n\n\n",
            "k: v",
            "a:\n  b:\n    c: d\n  e: f\ng: h\n",
            "a:\n- x\n- y\nb: z\n",
            "metadata:\n  annotations:\n    x: 'a: b'\n    y: \"c #d\"\n",
            "url: http://x/y#z\nk8s.io/name: v\n",
            "ports:\n- containerPort: 80\n  protocol: TCP\n- containerPort: 443\n",
            "a: |-\n  x\n\n    y\n  z\nb: |\n    p\n    q\n\n\nc: 1\nd: | # c\n  k\n# x\ne: |\n  # not\n  m\n",
            "patches:\n- target:\n    kind: Service\n  patch: |-\n    - op: add\n      path: /a\n- path: p.yaml\n",
            "a:\n  b: |\n    x\n  c: d\n",
            "a: |\n  text\n",
            "a: |\n  x\n  # y\n # z\nb: 1\n",
            "a:   \nb: 1   \nc:\n- x   \n- 'y'   # z\n",
            "a: b:c\nd: x#y\ne: '#'\nf: \"a: b\"\n\"g\": h\n'i': j\nk l: m n\n",
            "a:\n  - b\n  - c: d\n    e: f\ng: h\n",
            "a: [x, y]\n",
            "a: {x: 1}\n",
            "a: {x: 1, y: [p, q]}\nb: c\n",
            "s:\n- {name: a-b, overlay: e/a/b, upstream: [a-dev]}\n- {name: c}\n",
            "a: [x, y]  # c\n",
            "a: {x: 1,y: 2}\n",
            "a: {}\nb: []\n",
            "a: [ x , y ]\n",
            "- [a]\n- {b: [c, {d: e}]}\n",
            "a: [x y, -1, .5, z-]\nb: [true, ~, null]\n",
            "cmd: [serve, -v, 8080]\n",
            "output: {branch: \"env/{stage}\"}\n",
            "a: ['x', \"y, z\", 'it''s', \"[q]\"]\n",
            "b: {\"k\": v, 'l': [\"m\"]}  # c\n",
        ];
        for text in read {
            assert!(agrees(text), "declined {text:?}");
        }
    }

    #[test]
    fn declines_what_is_outside_its_subset() {
        let declined = [
            "a: [\"x\\ny\"]\n",
            "a: {\"x\":1}\n",
            "a: ['x\n  y']\n",
            "a: [x,\n  y]\n",
            "a: [x, y,]\n",
            "a: [x,, y]\n",
            "a: {x}\n",
            "a: {x: }\n",
            "a: {x:1}\n",
            "a: [x: 1]\n",
            "a: [http://x]\n",
            "a: [x #c]\n",
            "a: [x] y\n",
            "a: [x]#c\n",
            "a: [x]\n  b\n",
            "a: [x y[z]]\n",
            "[a, b]\n",
            "a: [? x]\n",
            "a: [-]\n",
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: >\n  text\n",
            "a: one\n  two\n",
            "a: \"x\\ny\"\n",
            "a:\tb\n",
            "a: b\r\n",
            "%YAML 1.2\n---\na: b\n",
            "a: b\n...\n",
            "? a\n: b\n",
            "a: b: c\n",
            "- - x\n",
            "-\n  a: b\n",
            "a: 'x\n  y'\n",
            "--- a\n",
            "a: b\nc\n",
            "a: b\n  c: d\n",
            "a:#b\n",
            "a: |+\n  x\n\n",
            "a: |2\n   x\n",
            "a: |\n\n  x\n",
            "a: |\n  x\n     \n",
            "a: |\n  x",
            "a: |\n  x\n y\n",
            "- |\n  x\n",
            "a: b\n  # c\n  d\n",
        ];
        for text in declined {
            assert!(!agrees(text), "read {text:?}");
        }
    }

    #[test]
    fn finds_a_field_of_each_entry_without_loading() {
        let text = "kind: Pipeline\nspec:\n  images: [a]\n  stages:\n  - {name: dev, overlay: envs/dev}\n  - name: qa\n    upstream: [dev]\n    overlay: 'envs/qa'\n";
        let found = field_of_each(text, &["spec", "stages"], "overlay").expect("read");
        assert_eq!(found, ["envs/dev", "envs/qa"]);
        let path = &["spec", "stages"];
        // An entry without the field, a field that is a collection, no such path, another
        // document, and a text outside the subset are all `None`.
        for text in [
            "spec:\n  stages:\n  - {name: dev}\n",
            "spec:\n  stages:\n  - {overlay: [x]}\n",
            "spec:\n  stage:\n  - {overlay: x}\n",
            "spec:\n  stages: {overlay: x}\n",
            "spec:\n  stages:\n  - {overlay: x}\n---\nk: v\n",
            "spec:\n  stages:\n  - {overlay: &a x}\n",
        ] {
            assert_eq!(field_of_each(text, path, "overlay"), None, "{text:?}");
        }
        let empty = field_of_each("spec:\n  stages: []\n", path, "overlay");
        assert_eq!(empty, Some(Vec::new()));
    }

    /// Texts made of tokens at random (from a fixed seed), many of them flow collections and
    /// most of them outside the subset: every one read is read as the full parser reads it.
    #[test]
    fn agrees_with_the_full_parser_on_texts_made_at_random() {
        let starts = ["k: ", "- ", "s:\n- ", "s:\n  t: ", "- k: "];
        let tokens = [
            "a: ", "[", "]", "{", "}", ", ", ",", ": ", ":", "x", "y-1", "'q'", "\"d\"", " ",
            " #c", "\n", "- ", "  ", "b:", "?", "-", "''", "1", "~", "*", "&", "!", "|",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut random = |below: usize| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        let mut read = 0;
        for _ in 0..50_000 {
            let mut text = String::from(starts[random(starts.len())]);
            for _ in 0..2 + random(12) {
                text.push_str(tokens[random(tokens.len())]);
            }
            text.push('\n');
            if agrees(&text) {
                read += 1;
            }
        }
        // About a sixth are in the subset.
        assert!(read > 5_000, "read {read}");
    }

    /// Every YAML file of the repository (the example, the test suite's inputs and expected
    /// outputs) is either declined or read exactly as the full parser reads it.
    #[test]
    fn agrees_with_the_full_parser_on_every_yaml_file_here() {
        fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, files);
                } else if path
                    .extension()
                    .is_some_and(|e| e == "yaml" || e == "yml" || e == "snap")
                    || path.file_name().is_some_and(|n| n == "Kustomization")
                {
                    files.push(path);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["environments", "policies", "tests"] {
            walk(&root.join(dir), &mut files);
        }
        let (mut read, mut declined) = (0, 0);
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            if agrees(&text) {
                read += 1;
            } else {
                declined += 1;
            }
        }
        // Most real files are in the subset; the rest exercise what it leaves out.
        assert!(read > declined, "read {read}, declined {declined}");
    }
}
