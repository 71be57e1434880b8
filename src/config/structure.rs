//! Checks the parsed tree against the file's JSON Schema (generated from `raw`), reporting every
//! structural problem at once: unknown fields, wrong types, missing fields, unknown values.
//! Returns a copy with the offending parts removed so the semantic checks can still run.
//! Only the subset of JSON Schema that schemars emits for our types is interpreted.

use serde_json::{Map, Value};

use super::diagnostic::{Collector, Diagnostic, FieldPath, Segment, did_you_mean};
use super::source::{Node, NodeValue, Position};

/// Field names that look like a secret written into the file; they get a dedicated error.
pub(crate) const INLINE_SECRET_FIELDS: &[&str] =
    &["client_secret", "secret", "password", "admin_password", "token_password", "access_token", "refresh_token"];

/// Takes each checked entry of the file's large collections (`clusters.<key>`, `bindings[i]`)
/// as soon as it is ready: the collection's name, the entry's key or index, the entry.
pub type Sink<'k> = dyn FnMut(&str, Segment, Value) + 'k;

pub struct StructureCheck<'s, 'k> {
    root: &'s Value,
    diagnostics: Collector,
    /// The top-level collections whose entries go to the sink instead of the returned copy, so
    /// that a fleet's file is never held as JSON whole (a JSON map costs hundreds of bytes
    /// however small the table).
    collections: &'k [&'k str],
    sink: Option<&'k mut Sink<'k>>,
}

impl<'s, 'k> StructureCheck<'s, 'k> {
    pub fn run(schema: &'s Value, node: &Node) -> (Option<Value>, Vec<Diagnostic>) {
        let mut check =
            StructureCheck { root: schema, diagnostics: Collector::default(), collections: &[], sink: None };
        let pruned = check.value(schema, node, &FieldPath::root(), node.position);
        (pruned, check.diagnostics.into_vec())
    }

    /// As `run`, but the entries of the top-level `collections` go to `sink` one by one, in
    /// the file's order, and are left out of the returned copy.
    pub fn run_streaming(
        schema: &'s Value,
        node: &Node,
        collections: &'k [&'k str],
        sink: &'k mut Sink<'k>,
    ) -> (Option<Value>, Vec<Diagnostic>) {
        let mut check =
            StructureCheck { root: schema, diagnostics: Collector::default(), collections, sink: Some(sink) };
        let pruned = check.value(schema, node, &FieldPath::root(), node.position);
        (pruned, check.diagnostics.into_vec())
    }

    /// The sink, when `path` is one of the streamed collections.
    fn sink_for(&mut self, path: &FieldPath) -> Option<(&str, &mut Sink<'k>)> {
        let [Segment::Key(collection)] = path.0.as_slice() else { return None };
        let name = self.collections.iter().find(|c| **c == collection.as_str())?;
        Some((name, self.sink.as_deref_mut()?))
    }

    /// Keeps a checked table entry in `kept`, or hands it to the sink.
    fn keep(&mut self, kept: &mut Map<String, Value>, path: &FieldPath, key: &str, value: Value) {
        match self.sink_for(path) {
            Some((collection, sink)) => sink(collection, Segment::Key(key.to_string()), value),
            None => {
                kept.insert(key.to_string(), value);
            }
        }
    }

    fn resolve(&self, schema: &'s Value) -> &'s Value {
        let mut current = schema;
        // References chain at most a few levels in generated schemas; bound it anyway.
        for _ in 0..8 {
            match current.get("$ref").and_then(Value::as_str) {
                Some(reference) => {
                    let pointer = reference.trim_start_matches('#');
                    match self.root.pointer(pointer) {
                        Some(target) => current = target,
                        None => return current,
                    }
                }
                None => return current,
            }
        }
        current
    }

    /// Checks `node` against `schema`; returns the node as JSON with invalid parts removed, or
    /// None when the node itself is unusable.
    fn value(&mut self, schema: &'s Value, node: &Node, path: &FieldPath, anchor: Position) -> Option<Value> {
        let schema = self.resolve(schema);
        if let Some(alternatives) = schema.get("anyOf").or_else(|| schema.get("oneOf")).and_then(Value::as_array) {
            return self.alternatives(alternatives, node, path, anchor);
        }
        if let Some(expected) = schema.get("type") {
            let expected: Vec<&str> = match expected {
                Value::String(s) => vec![s.as_str()],
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !expected.iter().any(|t| type_matches(t, node)) {
                self.type_mismatch(&expected, node, path, anchor);
                return None;
            }
        }
        if let Some(constant) = schema.get("const")
            && &node.to_json() != constant
        {
            self.push_unknown_value(node, path, &[constant]);
            return None;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(&node.to_json())
        {
            self.push_unknown_value(node, path, &allowed.iter().collect::<Vec<_>>());
            return None;
        }
        match &node.value {
            NodeValue::Table(_) => self.table(schema, node, path, anchor),
            NodeValue::Array(items) => self.array(schema, items, node, path),
            NodeValue::BigInteger(text) => {
                self.diagnostics.push(Diagnostic::error(
                    "out-of-range",
                    path.clone(),
                    node.position,
                    format!("`{path}` is out of range, found {text}"),
                ));
                None
            }
            NodeValue::Integer(n) => self.integer(schema, *n, node, path),
            _ => Some(node.to_json()),
        }
    }

    /// An array: long enough, and every element valid against the item schema.
    fn array(&mut self, schema: &'s Value, items: &[Node], node: &Node, path: &FieldPath) -> Option<Value> {
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            self.diagnostics.push(
                Diagnostic::error("empty-list", path.clone(), node.position, format!("`{path}` must not be empty"))
                    .with_hint("list at least one entry, or remove the binding"),
            );
            return None;
        }
        let item_schema = schema.get("items");
        // An invalid table element becomes null rather than vanishing, so indices (and
        // the paths of later diagnostics) stay those of the file. A list of scalars with
        // an invalid element is dropped whole: a partial list would mean something else.
        let tables = item_schema.is_some_and(|s| self.resolve(s).get("type").and_then(Value::as_str) == Some("object"));
        let mut complete = true;
        let mut kept = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let value = match item_schema {
                Some(s) => self.value(s, item, &path.index(i), item.position).unwrap_or_else(|| {
                    complete = false;
                    Value::Null
                }),
                None => item.to_json(),
            };
            match self.sink_for(path) {
                Some((collection, sink)) => sink(collection, Segment::Index(i), value),
                None => kept.push(value),
            }
        }
        if complete || tables { Some(Value::Array(kept)) } else { None }
    }

    /// An integer within the bounds the schema states, or implies by its format.
    fn integer(&mut self, schema: &'s Value, n: i64, node: &Node, path: &FieldPath) -> Option<Value> {
        // schemars states the Rust integer type as a format; its bounds are implied.
        let (format_min, format_max) = match schema.get("format").and_then(Value::as_str) {
            Some("uint8") => (Some(0), Some(i64::from(u8::MAX))),
            Some("uint16") => (Some(0), Some(i64::from(u16::MAX))),
            Some("uint32") => (Some(0), Some(i64::from(u32::MAX))),
            Some("uint64" | "uint") => (Some(0), None),
            Some("int8") => (Some(i64::from(i8::MIN)), Some(i64::from(i8::MAX))),
            Some("int16") => (Some(i64::from(i16::MIN)), Some(i64::from(i16::MAX))),
            Some("int32") => (Some(i64::from(i32::MIN)), Some(i64::from(i32::MAX))),
            _ => (None, None),
        };
        let min = schema.get("minimum").and_then(Value::as_i64).into_iter().chain(format_min).max();
        let max = schema.get("maximum").and_then(Value::as_i64).into_iter().chain(format_max).min();
        let below = min.filter(|min| n < *min);
        let above = max.filter(|max| n > *max);
        if let Some(bound) = below.map(|b| format!("at least {b}")).or(above.map(|b| format!("at most {b}"))) {
            self.diagnostics.push(Diagnostic::error(
                "out-of-range",
                path.clone(),
                node.position,
                format!("`{path}` must be {bound}, found {n}"),
            ));
            return None;
        }
        Some(node.to_json())
    }

    fn alternatives(
        &mut self,
        alternatives: &'s [Value],
        node: &Node,
        path: &FieldPath,
        anchor: Position,
    ) -> Option<Value> {
        let mut attempts = Vec::new();
        for alternative in alternatives {
            let mut trial =
                StructureCheck { root: self.root, diagnostics: Collector::default(), collections: &[], sink: None };
            let pruned = trial.value(alternative, node, path, anchor);
            if trial.diagnostics.kept().is_empty() {
                return pruned;
            }
            attempts.push((self.resolve(alternative), trial.diagnostics.into_vec()));
        }
        let constants: Vec<&Value> = attempts
            .iter()
            .filter_map(|(schema, _)| schema.get("const").or_else(|| schema.get("enum")))
            .flat_map(|c| match c {
                Value::Array(items) => items.iter().collect::<Vec<_>>(),
                other => vec![other],
            })
            .collect();
        if matches!(node.value, NodeValue::String(_)) && !constants.is_empty() {
            self.push_unknown_value(node, path, &constants);
            return None;
        }
        // Report the alternative whose type fits the node, so nested errors keep their detail.
        let fitting = attempts
            .iter()
            .position(|(_, diagnostics)| !diagnostics.iter().any(|d| d.code == "wrong-type" && &d.path == path));
        match fitting {
            Some(i) => self.diagnostics.extend(attempts.swap_remove(i).1),
            None => {
                let mut expected: Vec<&str> =
                    attempts.iter().filter_map(|(schema, _)| schema.get("type").and_then(Value::as_str)).collect();
                if expected.is_empty() {
                    expected.push("string");
                }
                self.type_mismatch(&expected, node, path, anchor);
            }
        }
        None
    }

    fn table(&mut self, schema: &'s Value, node: &Node, path: &FieldPath, anchor: Position) -> Option<Value> {
        let NodeValue::Table(entries) = &node.value else { return None };
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        let mut kept = Map::new();
        for entry in entries {
            let field_path = path.key(&entry.key);
            let field_schema = properties.and_then(|p| p.get(&entry.key)).or(match additional {
                Some(Value::Bool(false)) | None if properties.is_some() => None,
                Some(Value::Bool(false)) => None,
                Some(s @ Value::Object(_)) => Some(s),
                _ => None,
            });
            let field_schema = match (field_schema, additional, properties) {
                (Some(s), _, _) => s,
                // A map without a value schema accepts anything.
                (None, None, None) | (None, Some(Value::Bool(true)), _) => {
                    kept.insert(entry.key.clone(), entry.value.to_json());
                    continue;
                }
                _ => {
                    self.unknown_field(entry.key.as_str(), entry.key_position, path, properties);
                    continue;
                }
            };
            match self.value(field_schema, &entry.value, &field_path, entry.key_position) {
                Some(value) => self.keep(&mut kept, path, &entry.key, value),
                // A broken map entry that is a table (a registry, a cluster) stays as null: its key
                // is still defined for references. A broken scalar (a label value) is dropped.
                None if properties.is_none_or(|p| !p.contains_key(&entry.key))
                    && self.resolve(field_schema).get("type").and_then(Value::as_str) == Some("object") =>
                {
                    self.keep(&mut kept, path, &entry.key, Value::Null);
                }
                None => {}
            }
        }
        let mut complete = true;
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
        {
            if !kept.contains_key(required) {
                complete = false;
            }
            if !entries.iter().any(|e| e.key == required) {
                let owner = if path.0.is_empty() { "the file".to_string() } else { format!("`{path}`") };
                let hint = match required {
                    "version" => "start the file with: version = 1".to_string(),
                    other => format!("add {other} = ..."),
                };
                self.diagnostics.push(
                    Diagnostic::error(
                        "missing-field",
                        path.key(required),
                        anchor,
                        format!("missing field `{required}` in {owner}"),
                    )
                    .with_hint(hint),
                );
            }
        }
        // A table that misses a required field cannot be typed; dropping it keeps the rest usable.
        if complete { Some(Value::Object(kept)) } else { None }
    }

    fn unknown_field(
        &mut self,
        key: &str,
        position: Position,
        parent: &FieldPath,
        properties: Option<&Map<String, Value>>,
    ) {
        let path = parent.key(key);
        let owner = if parent.0.is_empty() { "at the top level".to_string() } else { format!("in `{parent}`") };
        if INLINE_SECRET_FIELDS.contains(&key.to_ascii_lowercase().as_str()) {
            let mut diagnostic = Diagnostic::error(
                "inline-secret",
                path,
                position,
                format!("inline secret `{key}` {owner}: secrets never live in the desired-state file"),
            )
            .with_hint("reference it instead: client_secret_env = \"VAR\" or client_secret_file = \"path\"");
            diagnostic.redact_source = true;
            self.diagnostics.push(diagnostic);
            return;
        }
        let known: Vec<&str> = properties.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
        let hint = match did_you_mean(key, known.iter().copied()) {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None if known.is_empty() => "this table takes no fields".to_string(),
            None => format!("expected one of: {}", known.join(", ")),
        };
        self.diagnostics.push(
            Diagnostic::error("unknown-field", path, position, format!("unknown field `{key}` {owner}"))
                .with_hint(hint),
        );
    }

    /// `anchor` is where the field's key is: an empty (null) value has no place of its own.
    fn type_mismatch(&mut self, expected: &[&str], node: &Node, path: &FieldPath, anchor: Position) {
        let wanted: Vec<&str> = expected.iter().copied().filter(|t| *t != "null").collect();
        let wanted = if wanted.is_empty() { expected.to_vec() } else { wanted };
        let described: Vec<String> = wanted.iter().map(|t| describe_type(t).to_string()).collect();
        let subject = if path.0.is_empty() { "the document".to_string() } else { format!("`{path}`") };
        let position = if matches!(node.value, NodeValue::Null) { anchor } else { node.position };
        let mut diagnostic = Diagnostic::error(
            "wrong-type",
            path.clone(),
            position,
            format!("{subject} must be {}, found {}", described.join(" or "), node.kind_name()),
        );
        let hint = match (&node.value, wanted.first().copied()) {
            // YAML 1.1 read these as booleans; YAML 1.2 (and acrlink) reads them as strings.
            (NodeValue::String(s), Some("boolean"))
                if ["yes", "no", "on", "off", "y", "n"].contains(&s.to_ascii_lowercase().as_str()) =>
            {
                Some(format!(
                    "write true or false: {s:?} is a string, not a boolean (YAML 1.1 words are not booleans here)"
                ))
            }
            (NodeValue::String(s), Some("boolean")) => {
                Some(format!("write true or false without quotes (found {s:?})"))
            }
            (NodeValue::String(_), Some("integer" | "number")) => Some("write the number without quotes".to_string()),
            (NodeValue::String(s), Some("array")) => Some(format!("write a list: [{s:?}]")),
            (NodeValue::Table(_), Some("array")) => {
                Some("write a list; in TOML, repeat [[table]] headers (double brackets) for each entry".to_string())
            }
            (NodeValue::Integer(n), Some("string")) => Some(format!("quote it: \"{n}\"")),
            (NodeValue::Float(_) | NodeValue::BigInteger(_) | NodeValue::Datetime(_), Some("string")) => {
                Some("quote it".to_string())
            }
            (NodeValue::Bool(b), Some("string")) => Some(format!("quote it: \"{b}\"")),
            (NodeValue::Null, _) => Some("give it a value, or remove the key".to_string()),
            _ => None,
        };
        if let Some(hint) = hint {
            diagnostic = diagnostic.with_hint(hint);
        }
        self.diagnostics.push(diagnostic);
    }

    fn push_unknown_value(&mut self, node: &Node, path: &FieldPath, allowed: &[&Value]) {
        let shown = match &node.value {
            NodeValue::String(s) => format!("{s:?}"),
            _ => node.kind_name().to_string(),
        };
        let names: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
        let mut diagnostic = Diagnostic::error(
            "unknown-value",
            path.clone(),
            node.position,
            format!("unknown value {shown} for `{path}`"),
        );
        let suggestion = match &node.value {
            NodeValue::String(s) => did_you_mean(s, allowed.iter().filter_map(|v| v.as_str())),
            _ => None,
        };
        diagnostic = match suggestion {
            Some(s) => diagnostic.with_hint(format!("did you mean \"{s}\"? expected one of {}", names.join(", "))),
            None => diagnostic.with_hint(format!("expected one of {}", names.join(", "))),
        };
        self.diagnostics.push(diagnostic);
    }
}

fn type_matches(expected: &str, node: &Node) -> bool {
    matches!(
        (expected, &node.value),
        ("null", NodeValue::Null)
            | ("boolean", NodeValue::Bool(_))
            | ("integer", NodeValue::Integer(_) | NodeValue::BigInteger(_))
            | ("number", NodeValue::Integer(_) | NodeValue::BigInteger(_) | NodeValue::Float(_))
            | ("string", NodeValue::String(_))
            | ("array", NodeValue::Array(_))
            | ("object", NodeValue::Table(_))
    )
}

fn describe_type(name: &str) -> &str {
    match name {
        "object" => "a table",
        "array" => "an array",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean (true or false)",
        "null" => "empty",
        other => other,
    }
}
