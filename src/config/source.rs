//! Parses the file's text (TOML or YAML) into one position-carrying tree, so that every later
//! check can name the line and column of what it complains about. Knows no acrlink field.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Where a node starts in the file, 1-based, with the length of its token in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
    pub length: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Integer(i64),
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

/// The one syntax error that stops parsing, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub position: Position,
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
pub struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, line_starts }
    }

    pub fn position(&self, span: std::ops::Range<usize>) -> Position {
        let start = span.start.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= start);
        let line_start = self.line_starts[line - 1];
        let column = self.text.get(line_start..start).map_or(start - line_start, |s| s.chars().count()) + 1;
        let end = span.end.clamp(start, self.text.len());
        let length = self.text.get(start..end).map_or(0, |s| s.chars().count());
        Position { line, column, length }
    }
}

fn parse_toml(text: &str) -> Result<Node, SyntaxError> {
    use toml::de::{DeTable, DeValue};
    let index = LineIndex::new(text);
    let root = DeTable::parse(text).map_err(|err| SyntaxError {
        message: err.message().trim().to_string(),
        position: err.span().map(|s| index.position(s)).unwrap_or_default(),
    })?;

    fn convert_table(table: &DeTable<'_>, index: &LineIndex<'_>) -> Vec<Entry> {
        table
            .iter()
            .map(|(key, value)| Entry {
                key: key.get_ref().to_string(),
                key_position: index.position(key.span()),
                value: convert_value(value.get_ref(), value.span(), index),
            })
            .collect()
    }

    fn convert_value(value: &DeValue<'_>, span: std::ops::Range<usize>, index: &LineIndex<'_>) -> Node {
        let value = match value {
            DeValue::String(s) => NodeValue::String(s.to_string()),
            DeValue::Integer(i) => {
                let digits = i.as_str().replace('_', "");
                match i64::from_str_radix(
                    digits.trim_start_matches("0x").trim_start_matches("0o").trim_start_matches("0b"),
                    i.radix(),
                ) {
                    Ok(n) => NodeValue::Integer(n),
                    // Out of i64 range: keep the text, the type check reports it.
                    Err(_) => NodeValue::String(i.as_str().to_string()),
                }
            }
            DeValue::Float(f) => NodeValue::Float(f.as_str().replace('_', "").parse().unwrap_or(f64::NAN)),
            DeValue::Boolean(b) => NodeValue::Bool(*b),
            DeValue::Datetime(d) => NodeValue::Datetime(d.to_string()),
            DeValue::Array(items) => {
                NodeValue::Array(items.iter().map(|item| convert_value(item.get_ref(), item.span(), index)).collect())
            }
            DeValue::Table(table) => NodeValue::Table(convert_table(table, index)),
        };
        Node { value, position: index.position(span) }
    }

    let span = root.span();
    Ok(Node {
        value: NodeValue::Table(convert_table(root.get_ref(), &index)),
        position: index.position(span.start..span.start),
    })
}

fn parse_yaml(text: &str) -> Result<Node, SyntaxError> {
    // An empty document is an empty table, as an empty TOML file is.
    if text.trim().is_empty() || text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Ok(Node { value: NodeValue::Table(Vec::new()), position: Position { line: 1, column: 1, length: 0 } });
    }
    let options = serde_saphyr::options! { strict_booleans: true };
    let node: YamlNode = serde_saphyr::from_str_with_options(text, options).map_err(|err| yaml_error(&err))?;
    Ok(node.0)
}

fn yaml_error(err: &serde_saphyr::Error) -> SyntaxError {
    let position = err
        .location()
        .map(|l| Position { line: l.line() as usize, column: l.column() as usize, length: 1 })
        .unwrap_or_default();
    // The Display form carries a snippet of its own; we print our own, so keep the first line.
    let full = err.to_string();
    let message = full.lines().next().unwrap_or("invalid YAML").trim().to_string();
    SyntaxError { message, position }
}

fn yaml_position(location: &serde_saphyr::Location) -> Position {
    Position {
        line: location.line() as usize,
        column: location.column() as usize,
        length: location.span().len() as usize,
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
        Ok(YamlValue(i64::try_from(v).map_or_else(|_| NodeValue::String(v.to_string()), NodeValue::Integer)))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<YamlValue, E> {
        Ok(YamlValue(i64::try_from(v).map_or_else(|_| NodeValue::String(v.to_string()), NodeValue::Integer)))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<YamlValue, E> {
        Ok(YamlValue(i64::try_from(v).map_or_else(|_| NodeValue::String(v.to_string()), NodeValue::Integer)))
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
            NodeValue::Integer(_) => "an integer",
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
