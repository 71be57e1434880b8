//! Parses the file's text (TOML or YAML) into one position-carrying tree, so that every later
//! check can name the line and column of what it complains about. Knows no acrlink field.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::diagnostic::FieldPath;

/// Where a node starts in the file, 1-based, with the length of its token in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// u32, not usize: a fleet's file has millions of positions (a 4 GB file is refused long
    /// before any count overflows).
    pub line: u32,
    pub column: u32,
    pub length: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Integer(i64),
    /// An integer beyond i64, kept as written so range checks can name it.
    BigInteger(String),
    Float(f64),
    String(String),
    /// TOML date-times have no JSON equivalent; kept as text so type errors can name them.
    Datetime(String),
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: NodeValue,
    pub position: Position,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_position: Position,
    pub value: Node,
}

/// The code of a file refused for holding too many keys and values.
pub const TOO_LARGE: &str = "too-large";

/// The one syntax error that stops parsing, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Diagnostic code: "syntax", or "duplicate-key" for a key written twice.
    pub code: &'static str,
    /// The field concerned, when known (duplicate keys); the document otherwise.
    pub path: FieldPath,
    pub message: String,
    pub hint: Option<String>,
    pub position: Position,
}

impl SyntaxError {
    fn new(message: String, position: Position) -> Self {
        SyntaxError { code: "syntax", path: FieldPath::root(), message, hint: None, position }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
}

impl Format {
    /// The format is chosen by extension; anything that is not .yaml/.yml is TOML.
    pub fn from_path(path: &std::path::Path) -> Format {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase) {
            Some(ext) if ext == "yaml" || ext == "yml" => Format::Yaml,
            _ => Format::Toml,
        }
    }
}

pub fn parse(text: &str, format: Format) -> Result<Node, SyntaxError> {
    match format {
        Format::Toml => parse_toml(text),
        Format::Yaml => parse_yaml(text),
    }
}

/// Turns byte offsets into line/column (columns count characters, as editors do).
///
/// Built once per file, so a lookup costs a binary search plus at most one block of bytes:
/// counting characters from the line's start instead made a file with one long line (a
/// 1,000,000-element array) quadratic.
pub struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    /// Characters before the start of each `BLOCK`-byte block of the text.
    chars_before_block: Vec<usize>,
}

/// Bytes per character-count checkpoint: small enough that a lookup scans little, large
/// enough that the checkpoints cost a small fraction of the text's size.
const BLOCK: usize = 64;

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let mut chars_before_block = Vec::with_capacity(text.len() / BLOCK + 1);
        let mut chars = 0;
        for block in text.as_bytes().chunks(BLOCK) {
            chars_before_block.push(chars);
            chars += count_chars(block);
        }
        chars_before_block.push(chars);
        LineIndex { text, line_starts, chars_before_block }
    }

    /// Characters in `text[..offset]`; `offset` is at most the text's length.
    fn chars_before(&self, offset: usize) -> usize {
        let block = offset / BLOCK;
        self.chars_before_block[block] + count_chars(&self.text.as_bytes()[block * BLOCK..offset])
    }

    /// Characters in `text[start..end]`, or None when either end is not a character boundary.
    fn chars_between(&self, start: usize, end: usize) -> Option<usize> {
        let boundaries = self.text.is_char_boundary(start) && self.text.is_char_boundary(end);
        boundaries.then(|| self.chars_before(end) - self.chars_before(start))
    }

    pub fn position(&self, span: std::ops::Range<usize>) -> Position {
        let start = span.start.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= start);
        let line_start = self.line_starts[line - 1];
        let column = self.chars_between(line_start, start).unwrap_or(start - line_start) + 1;
        let end = span.end.clamp(start, self.text.len());
        let length = self.chars_between(start, end).unwrap_or(0);
        Position { line: narrow(line), column: narrow(column), length: narrow(length) }
    }
}

/// A count as a position field (u32): saturating, a file never comes near it.
pub(super) fn narrow(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Characters in a run of UTF-8 bytes: every byte that does not continue a character starts one.
fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| (b & 0xC0) != 0x80).count()
}

fn parse_toml(text: &str) -> Result<Node, SyntaxError> {
    let index = LineIndex::new(text);
    // Section by section holds a fraction of DeTable's memory; anything that path does not take
    // as plainly valid goes through DeTable whole, which names the exact error.
    use super::toml_sections::Parsed;
    match super::toml_sections::parse(text, &index) {
        Parsed::Tree(root) => Ok(root),
        Parsed::Whole => parse_toml_whole(text, &index),
        Parsed::TooLarge(position) => Err(SyntaxError {
            code: TOO_LARGE,
            path: FieldPath::root(),
            message: "the file holds more than a million keys and values; it is not read further".into(),
            hint: Some(
                "a file describing 50,000 clusters holds about 670,000: check what generated this one, or split the fleet across files"
                    .into(),
            ),
            position,
        }),
    }
}

/// The whole file through DeTable.
pub(super) fn parse_toml_whole(text: &str, index: &LineIndex<'_>) -> Result<Node, SyntaxError> {
    let root = toml::de::DeTable::parse(text).map_err(|err| toml_error(text, index, &err))?;
    let span = root.span();
    Ok(Node {
        value: NodeValue::Table(convert_table(root.get_ref(), 0, index)),
        position: index.position(span.start..span.start),
    })
}

/// A parsed table's entries; spans are of a text that starts `offset` bytes into the file.
fn convert_table(table: &toml::de::DeTable<'_>, offset: usize, index: &LineIndex<'_>) -> Vec<Entry> {
    // Exactly sized: collecting from a map's iterator allocates room for at least four
    // entries, and most tables of a fleet file hold one or two.
    let mut entries = Vec::with_capacity(table.len());
    entries.extend(table.iter().map(|(key, value)| Entry {
        key: key.get_ref().to_string(),
        key_position: index.position(shifted(key.span(), offset)),
        value: convert_value(value.get_ref(), shifted(value.span(), offset), offset, index),
    }));
    entries
}

fn shifted(span: std::ops::Range<usize>, offset: usize) -> std::ops::Range<usize> {
    span.start + offset..span.end + offset
}

/// A parsed value as a node; `span` is already shifted, the spans inside it are `offset` short.
pub(super) fn convert_value(
    value: &toml::de::DeValue<'_>,
    span: std::ops::Range<usize>,
    offset: usize,
    index: &LineIndex<'_>,
) -> Node {
    use toml::de::DeValue;
    let value = match value {
        DeValue::String(s) => NodeValue::String(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            match i64::from_str_radix(
                digits.trim_start_matches("0x").trim_start_matches("0o").trim_start_matches("0b"),
                i.radix(),
            ) {
                Ok(n) => NodeValue::Integer(n),
                // Out of i64 range: keep the text, the range check reports it.
                Err(_) => NodeValue::BigInteger(i.as_str().to_string()),
            }
        }
        DeValue::Float(f) => NodeValue::Float(f.as_str().replace('_', "").parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => NodeValue::Bool(*b),
        DeValue::Datetime(d) => NodeValue::Datetime(d.to_string()),
        DeValue::Array(items) => NodeValue::Array(
            items
                .iter()
                .map(|item| convert_value(item.get_ref(), shifted(item.span(), offset), offset, index))
                .collect(),
        ),
        DeValue::Table(table) => NodeValue::Table(convert_table(table, offset, index)),
    };
    Node { value, position: index.position(span) }
}

fn toml_error(text: &str, index: &LineIndex<'_>, err: &toml::de::Error) -> SyntaxError {
    let message = err.message().trim().to_string();
    let Some(span) = err.span() else {
        return SyntaxError::new(message, end_of_text(index, text));
    };
    let position = index.position(span.clone());
    if message == "duplicate key"
        && let Some(error) = toml_duplicate_key(text, span.clone(), position)
    {
        return error;
    }
    // "version =" and nothing after it: the parser complains about quoting; say what is missing.
    let before = text.get(..span.start).unwrap_or_default();
    let line_before = before.rsplit('\n').next().unwrap_or_default().trim_end();
    let rest_of_line = text.get(span.start..).unwrap_or_default().split('\n').next().unwrap_or_default().trim();
    if line_before.ends_with('=') && (rest_of_line.is_empty() || rest_of_line.starts_with('#')) {
        let mut error = SyntaxError::new("missing value after `=`".to_string(), position);
        error.hint = Some("write a value: a \"string\", a number, true or false, [a list] or { a = table }".into());
        return error;
    }
    SyntaxError::new(message, position)
}

fn end_of_text(index: &LineIndex<'_>, text: &str) -> Position {
    index.position(text.len()..text.len())
}

/// A TOML key written twice: names the key's path by re-parsing with a marker in its place.
fn toml_duplicate_key(text: &str, span: std::ops::Range<usize>, position: Position) -> Option<SyntaxError> {
    use super::diagnostic::Segment;
    use toml::de::{DeTable, DeValue};
    const MARKER: &str = "acrlink-duplicate-key-marker";
    let written = text.get(span.clone())?;
    let key = match DeTable::parse(&format!("{written} = 0")) {
        Ok(table) => table.get_ref().iter().next().map(|(k, _)| k.get_ref().to_string())?,
        Err(_) => written.to_string(),
    };
    let patched = format!("{}{MARKER}{}", text.get(..span.start)?, text.get(span.end..)?);
    let (root, _) = DeTable::parse_recoverable(&patched);

    fn find(value: &DeValue<'_>, path: &mut Vec<Segment>, depth: usize) -> bool {
        if depth > 256 {
            return false;
        }
        match value {
            DeValue::Table(table) => table.iter().any(|(k, v)| {
                path.push(Segment::Key(k.get_ref().to_string()));
                if k.get_ref() == MARKER || find(v.get_ref(), path, depth + 1) {
                    return true;
                }
                path.pop();
                false
            }),
            DeValue::Array(items) => items.iter().enumerate().any(|(i, v)| {
                path.push(Segment::Index(i));
                if find(v.get_ref(), path, depth + 1) {
                    return true;
                }
                path.pop();
                false
            }),
            _ => false,
        }
    }
    let mut segments = Vec::new();
    let root = DeValue::Table(root.into_inner());
    if !find(&root, &mut segments, 0) {
        return None;
    }
    if let Some(last) = segments.last_mut() {
        *last = Segment::Key(key.clone());
    }
    let path = FieldPath(segments);
    let parent = FieldPath(path.0[..path.0.len() - 1].to_vec());
    let line = text[..span.start].rsplit('\n').next().unwrap_or_default();
    let (message, hint) = if line.trim_start().starts_with('[') {
        (format!("table [{path}] is defined twice"), "merge the two tables into one")
    } else if parent.0.is_empty() {
        (format!("duplicate key `{key}` at the top level"), "a key may appear once in a table; remove one of them")
    } else {
        (format!("duplicate key `{key}` in `{parent}`"), "a key may appear once in a table; remove one of them")
    };
    Some(SyntaxError { code: "duplicate-key", path, message, hint: Some(hint.to_string()), position })
}

fn parse_yaml(text: &str) -> Result<Node, SyntaxError> {
    // An empty document is an empty table, as an empty TOML file is.
    if text.trim().is_empty() || text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Ok(Node { value: NodeValue::Table(Vec::new()), position: Position { line: 1, column: 1, length: 0 } });
    }
    let options = serde_saphyr::options! { strict_booleans: true };
    let node: YamlNode = serde_saphyr::from_str_with_options(text, options).map_err(|err| yaml_error(text, &err))?;
    Ok(node.0)
}

fn yaml_error(text: &str, err: &serde_saphyr::Error) -> SyntaxError {
    use serde_saphyr::MessageFormatter as _;
    let inner = err.without_snippet();
    let mut position = match err.location() {
        Some(l) if l.line() > 0 => {
            Position { line: narrow(l.line() as usize), column: narrow(l.column() as usize).max(1), length: 1 }
        }
        // No location: the end of the document is where the parser gave up.
        _ => end_of_text(&LineIndex::new(text), text),
    };
    // The user-facing wording, without the library's location prefix or its own snippet.
    let formatted = serde_saphyr::UserMessageFormatter.format_message(inner);
    let message = formatted.lines().next().unwrap_or("invalid YAML").trim().to_string();
    if let serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } = inner
        && let Some(error) = yaml_duplicate_key(text, key, position)
    {
        return error;
    }
    // The scanner reports a tab after consuming it; point at the tab itself.
    if message.contains("tab")
        && let Some(line) = text.lines().nth(position.line as usize - 1)
        && let Some(at) = line.chars().take(position.column as usize).position(|c| c == '\t')
    {
        position.column = narrow(at + 1);
    }
    SyntaxError::new(message, position)
}

/// A YAML key written twice: the path of the mapping that holds the earlier one.
fn yaml_duplicate_key(text: &str, key: &str, position: Position) -> Option<SyntaxError> {
    use super::diagnostic::Segment;
    let options = serde_saphyr::options! {
        strict_booleans: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::FirstWins,
    };
    let YamlNode(root) = serde_saphyr::from_str_with_options(text, options).ok()?;
    // Every earlier entry with this key; the nearest one in the same column is the first copy.
    fn collect(node: &Node, key: &str, path: &mut Vec<Segment>, found: &mut Vec<(Position, Vec<Segment>)>) {
        match &node.value {
            NodeValue::Table(entries) => {
                for entry in entries {
                    path.push(Segment::Key(entry.key.clone()));
                    if entry.key == key {
                        found.push((entry.key_position, path.clone()));
                    }
                    collect(&entry.value, key, path, found);
                    path.pop();
                }
            }
            NodeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Segment::Index(i));
                    collect(item, key, path, found);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    collect(&root, key, &mut Vec::new(), &mut found);
    let before = |p: &Position| (p.line, p.column) < (position.line, position.column);
    let (_, segments) = found
        .iter()
        .filter(|(p, _)| before(p))
        .max_by_key(|(p, _)| (p.column == position.column, p.line, p.column))?
        .clone();
    let path = FieldPath(segments);
    let parent = FieldPath(path.0[..path.0.len() - 1].to_vec());
    let message = if parent.0.is_empty() {
        format!("duplicate key `{key}` at the top level")
    } else {
        format!("duplicate key `{key}` in `{parent}`")
    };
    Some(SyntaxError {
        code: "duplicate-key",
        path,
        message,
        hint: Some("a key may appear once in a mapping; remove one of them".to_string()),
        position,
    })
}

fn yaml_position(location: &serde_saphyr::Location) -> Position {
    Position {
        line: narrow(location.line() as usize),
        column: narrow(location.column() as usize),
        length: narrow(location.span().len() as usize),
    }
}

struct YamlNode(Node);

impl<'de> Deserialize<'de> for YamlNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<YamlValue>::deserialize(deserializer)?;
        Ok(YamlNode(Node { value: spanned.value.0, position: yaml_position(&spanned.referenced) }))
    }
}

struct YamlValue(NodeValue);

impl<'de> Deserialize<'de> for YamlValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(YamlValueVisitor)
    }
}

struct YamlValueVisitor;

impl<'de> Visitor<'de> for YamlValueVisitor {
    type Value = YamlValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<YamlValue, E> {
        Ok(YamlValue(NodeValue::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<YamlValue, E> {
        Ok(YamlValue(NodeValue::Integer(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<YamlValue, E> {
        Ok(YamlValue(i64::try_from(v).map_or_else(|_| NodeValue::BigInteger(v.to_string()), NodeValue::Integer)))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<YamlValue, E> {
        Ok(YamlValue(i64::try_from(v).map_or_else(|_| NodeValue::BigInteger(v.to_string()), NodeValue::Integer)))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<YamlValue, E> {
        Ok(YamlValue(i64::try_from(v).map_or_else(|_| NodeValue::BigInteger(v.to_string()), NodeValue::Integer)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<YamlValue, E> {
        Ok(YamlValue(NodeValue::Float(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<YamlValue, E> {
        Ok(YamlValue(NodeValue::String(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<YamlValue, E> {
        Ok(YamlValue(NodeValue::String(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<YamlValue, E> {
        Ok(YamlValue(NodeValue::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<YamlValue, E> {
        Ok(YamlValue(NodeValue::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<YamlValue, D::Error> {
        YamlValue::deserialize(deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YamlValue, A::Error> {
        let mut items = Vec::new();
        while let Some(YamlNode(node)) = seq.next_element()? {
            items.push(node);
        }
        Ok(YamlValue(NodeValue::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YamlValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<serde_saphyr::Spanned<String>>()? {
            let YamlNode(value) = map.next_value()?;
            entries.push(Entry { key: key.value, key_position: yaml_position(&key.referenced), value });
        }
        Ok(YamlValue(NodeValue::Table(entries)))
    }
}

impl Node {
    /// The JSON form, for schema checks and typed deserialisation.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Integer(i) => Value::from(*i),
            NodeValue::BigInteger(text) => text
                .replace('_', "")
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number),
            NodeValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            NodeValue::String(s) | NodeValue::Datetime(s) => Value::String(s.clone()),
            NodeValue::Array(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Table(entries) => {
                Value::Object(entries.iter().map(|e| (e.key.clone(), e.value.to_json())).collect())
            }
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Integer(_) | NodeValue::BigInteger(_) => "an integer",
            NodeValue::Float(_) => "a float",
            NodeValue::String(_) => "a string",
            NodeValue::Datetime(_) => "a date-time",
            NodeValue::Array(_) => "an array",
            NodeValue::Table(_) => "a table",
        }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            NodeValue::Table(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    pub fn index(&self, index: usize) -> Option<&Node> {
        match &self.value {
            NodeValue::Array(items) => items.get(index),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_counts_characters_across_blocks() {
        // Multi-byte characters straddle the index's blocks; every boundary must agree with
        // counting characters from the line's start.
        let text = format!("a\n{}\nx{}y\n", "é€😀b".repeat(40), "ü".repeat(100));
        let index = LineIndex::new(&text);
        for (offset, _) in text.char_indices().chain([(text.len(), ' ')]) {
            let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
            let want_line = text[..offset].matches('\n').count() + 1;
            let want_column = text[line_start..offset].chars().count() + 1;
            let want_length = text[offset..].chars().take(3).map(char::len_utf8).sum::<usize>();
            let position = index.position(offset..offset + want_length);
            assert_eq!((position.line as usize, position.column as usize), (want_line, want_column), "offset {offset}");
            assert_eq!(position.length as usize, text[offset..offset + want_length].chars().count(), "offset {offset}");
        }
    }

    #[test]
    fn toml_positions_are_one_based_lines_and_character_columns() {
        let node = parse("version = 1\n[azure]\ncloud = \"AzureCloud\"\n", Format::Toml).unwrap();
        let azure = node.get("azure").unwrap();
        assert_eq!(azure.key_position.line, 2);
        let cloud = azure.value.get("cloud").unwrap();
        assert_eq!((cloud.key_position.line, cloud.key_position.column), (3, 1));
        assert_eq!((cloud.value.position.line, cloud.value.position.column, cloud.value.position.length), (3, 9, 12));
    }

    #[test]
    fn yaml_and_toml_give_the_same_json() {
        let toml =
            parse("version = 1\n[clusters.a]\nresource_group = \"rg\"\nlabels = { env = \"dev\" }\n", Format::Toml)
                .unwrap();
        let yaml = parse("version: 1\nclusters:\n  a:\n    resource_group: rg\n    labels: {env: dev}\n", Format::Yaml)
            .unwrap();
        assert_eq!(toml.to_json(), yaml.to_json());
        let rg = yaml.get("clusters").unwrap().value.get("a").unwrap().value.get("resource_group").unwrap();
        assert_eq!((rg.value.position.line, rg.value.position.column), (4, 21));
    }

    #[test]
    fn yaml_rejects_yaml11_booleans() {
        let err = parse("adopt: yes\n", Format::Yaml);
        match err {
            Ok(node) => assert_eq!(node.get("adopt").unwrap().value.value, NodeValue::String("yes".into())),
            Err(e) => assert_eq!(e.position.line, 1),
        }
    }

    #[test]
    fn syntax_errors_carry_positions() {
        let err = parse("version = 1\nclusters = [\n", Format::Toml).unwrap_err();
        assert!(err.position.line >= 2, "{err:?}");
        let err = parse("a: [1, 2\nb: 3\n", Format::Yaml).unwrap_err();
        assert!(err.position.line >= 1, "{err:?}");
    }
}
