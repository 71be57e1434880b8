//! Parses a TOML document one top-level section (`[header]` and its key-values) at a time and
//! joins the sections into one position tree.
//!
//! `toml::de::DeTable::parse` holds every token of the file and a BTreeMap per table at once: a
//! hostile 10 MB file of small tables peaked at about 450 MB inside it, before acrlink saw a
//! single key. Sections are small, so parsing them one by one holds one section's tokens and
//! tables, plus the tree. The toml crate still reads every section: only the joining of
//! sections is done here, and it accepts just the plain cases (a new table, a table named
//! before only on the way to another, one more element of an array of tables). Anything else,
//! and any section the toml crate refuses, returns None and the caller parses the whole file
//! with DeTable, which reports the exact error or accepts what TOML allows and this join does
//! not try to. So this path never decides on its own that a file is valid.

use std::collections::HashMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml_parser::lexer::TokenKind;

use super::source::{Entry, LineIndex, Node, NodeValue, Position, convert_value};

/// Tables with more entries than this get a key index, so 100,000 clusters are not found by
/// scanning them.
const INDEXED_FROM: usize = 16;

/// Keys and values a file may hold before it is read into memory: a file describing 50,000
/// clusters holds about 670,000, and each costs 100 to 300 bytes once parsed, so this keeps a
/// hostile file (a 10 MB array of 5,000,000 numbers took 760 MB) within about 200 MB.
/// The message of `source::TOO_LARGE` says "a million".
pub(super) const MAX_ITEMS: usize = 1_000_000;

pub(super) enum Parsed {
    Tree(Node),
    /// The whole file must go through DeTable.
    Whole,
    /// More than `MAX_ITEMS` keys and values: the line where the count passed it.
    TooLarge(Position),
}

/// The tree of the document, section by section.
pub(super) fn parse(text: &str, index: &LineIndex<'_>) -> Parsed {
    let sections = match sections(text) {
        Ok(sections) => sections,
        Err(at) => return Parsed::TooLarge(index.position(at..at)),
    };
    joined(text, index, sections).map_or(Parsed::Whole, Parsed::Tree)
}

fn joined(text: &str, index: &LineIndex<'_>, sections: Vec<Range<usize>>) -> Option<Node> {
    let mut sections = sections.into_iter();
    let first = sections.next()?;
    let root = DeTable::parse(&text[first.clone()]).ok()?;
    let mut tree = Tree { index, root: Table::body(root.get_ref(), first.start, index, State::Defined) };
    for section in sections {
        tree.add(text, section)?;
    }
    Some(Node { value: NodeValue::Table(tree.root.into_entries()), position: index.position(0..0) })
}

/// The byte ranges of the document's sections: the text before the first header (maybe empty),
/// then each header with the key-values under it. A header is a `[` at the start of a line
/// outside any array or inline table; the lexer keeps brackets inside strings and comments out.
/// Counts keys and values on the way: past `MAX_ITEMS`, the offset where it happened.
fn sections(text: &str) -> Result<Vec<Range<usize>>, usize> {
    let mut starts = vec![0];
    let mut depth = 0usize;
    let mut line_start = true;
    let mut items = 0usize;
    for token in toml_parser::Source::new(text).lex() {
        if matches!(
            token.kind(),
            TokenKind::Atom
                | TokenKind::BasicString
                | TokenKind::LiteralString
                | TokenKind::MlBasicString
                | TokenKind::MlLiteralString
        ) {
            items += 1;
            if items > MAX_ITEMS {
                return Err(token.span().start());
            }
        }
        match token.kind() {
            TokenKind::LeftSquareBracket if depth == 0 && line_start => {
                starts.push(token.span().start());
                depth += 1;
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => depth = depth.saturating_sub(1),
            _ => {}
        }
        line_start = match token.kind() {
            TokenKind::Newline => true,
            TokenKind::Whitespace => line_start,
            _ => false,
        };
    }
    let mut ends: Vec<usize> = starts.iter().skip(1).copied().collect();
    ends.push(text.len());
    Ok(starts.into_iter().zip(ends).map(|(start, end)| start..end).collect())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Named only on the way to a deeper header (`a` in `[a.b]`): a later `[a]` may define it.
    Implicit,
    /// The root, or defined by a header: never defined again.
    Defined,
}

struct Table {
    slots: Vec<Slot>,
    index: Option<HashMap<String, usize>>,
    state: State,
    position: Position,
}

struct Slot {
    key: String,
    key_position: Position,
    value: Value,
}

enum Value {
    /// A key-value of a section's body, inline tables and dotted-key tables included: later
    /// headers may not extend it (the join gives up where TOML might allow it).
    Done(Node),
    Table(Table),
    /// An array of tables (`[[name]]`) and where it was first named.
    Tables(Vec<Table>, Position),
}

struct Tree<'a, 'i> {
    index: &'a LineIndex<'i>,
    root: Table,
}

impl Tree<'_, '_> {
    /// Joins one `[header]` section into the tree, or None where the join gives up.
    fn add(&mut self, text: &str, section: Range<usize>) -> Option<()> {
        let parsed = DeTable::parse(&text[section.clone()]).ok()?;
        let header = header_path(text, section.start)?;
        let mut at = Cursor { index: self.index, offset: section.start };
        at.descend(&mut self.root, parsed.get_ref(), &header.keys, header.array)
    }
}

struct Header {
    keys: Vec<String>,
    array: bool,
}

/// The keys of the header starting at `start` and whether it is `[[...]]`, read by parsing the
/// header line alone.
fn header_path(text: &str, start: usize) -> Option<Header> {
    let line = text[start..].split('\n').next()?;
    let array = line.starts_with("[[");
    let close = if array { "]]" } else { "]" };
    // The header ends at its closing bracket outside quotes; parse it alone to decode the keys.
    let mut keys = Vec::new();
    let mut end = None;
    for token in toml_parser::Source::new(line).lex() {
        if token.kind() == TokenKind::RightSquareBracket {
            end = Some(token.span().end() + usize::from(array));
            break;
        }
    }
    let header = line.get(..end?)?;
    if !header.ends_with(close) {
        return None;
    }
    let parsed = DeTable::parse(header).ok()?;
    let mut table = parsed.get_ref();
    loop {
        let mut entries = table.iter();
        let (key, value) = entries.next()?;
        if entries.next().is_some() {
            return None;
        }
        keys.push(key.get_ref().to_string());
        match value.get_ref() {
            DeValue::Table(inner) if !inner.is_empty() => table = inner,
            DeValue::Table(_) if !array => break,
            DeValue::Array(items) if array && items.len() == 1 => break,
            _ => return None,
        }
    }
    Some(Header { keys, array })
}

/// Where a section's spans start in the whole text.
struct Cursor<'a, 'i> {
    index: &'a LineIndex<'i>,
    offset: usize,
}

impl Cursor<'_, '_> {
    fn position(&self, span: Range<usize>) -> Position {
        self.index.position(span.start + self.offset..span.end + self.offset)
    }

    /// Follows `keys` from `target` (the tree) and `from` (the section's own tree) together.
    fn descend(&mut self, target: &mut Table, from: &DeTable<'_>, keys: &[String], array: bool) -> Option<()> {
        let (key, rest) = keys.split_first()?;
        let (section_key, section_value) = from.get_key_value(key.as_str())?;
        let found = target.find(key);
        let Some(at) = found else {
            let value = self.fresh(section_value.get_ref(), section_value.span(), rest, array)?;
            target.push(Slot { key: key.clone(), key_position: self.position(section_key.span()), value });
            return Some(());
        };
        let slot = &mut target.slots[at];
        let defined_here = (self.position(section_key.span()), self.position(section_value.span()));
        match (&mut slot.value, section_value.get_ref(), rest.is_empty(), array) {
            (Value::Table(table), DeValue::Table(inner), false, _) => self.descend(table, inner, rest, array),
            (Value::Tables(items, _), DeValue::Table(inner), false, _) => {
                self.descend(items.last_mut()?, inner, rest, array)
            }
            (Value::Table(table), DeValue::Table(body), true, false) if table.state == State::Implicit => {
                // As DeTable does, the header that defines the table is where it is.
                table.state = State::Defined;
                (slot.key_position, table.position) = defined_here;
                for (key, value) in body.iter() {
                    if table.find(key.get_ref()).is_some() {
                        return None;
                    }
                    table.push(self.done(key, value));
                }
                Some(())
            }
            (Value::Tables(items, _), DeValue::Array(new), true, true) => {
                items.push(self.element(new)?);
                Some(())
            }
            _ => None,
        }
    }

    /// The value a section brings under a key the tree does not have yet.
    fn fresh(&mut self, value: &DeValue<'_>, span: Range<usize>, rest: &[String], array: bool) -> Option<Value> {
        let position = self.position(span);
        match (value, rest.is_empty(), array) {
            (DeValue::Table(inner), false, _) => {
                let mut table = Table::new(State::Implicit, position);
                self.descend(&mut table, inner, rest, array)?;
                Some(Value::Table(table))
            }
            (DeValue::Table(body), true, false) => {
                Some(Value::Table(Table::body(body, self.offset, self.index, State::Defined).at(position)))
            }
            (DeValue::Array(items), true, true) => Some(Value::Tables(vec![self.element(items)?], position)),
            _ => None,
        }
    }

    /// The one table a `[[header]]` section adds to its array.
    fn element(&self, items: &[toml::Spanned<DeValue<'_>>]) -> Option<Table> {
        let [item] = items else { return None };
        let DeValue::Table(body) = item.get_ref() else { return None };
        Some(Table::body(body, self.offset, self.index, State::Defined).at(self.position(item.span())))
    }

    fn done(&self, key: &toml::Spanned<std::borrow::Cow<'_, str>>, value: &toml::Spanned<DeValue<'_>>) -> Slot {
        done_slot(key, value, self.offset, self.index)
    }
}

fn done_slot(
    key: &toml::Spanned<std::borrow::Cow<'_, str>>,
    value: &toml::Spanned<DeValue<'_>>,
    offset: usize,
    index: &LineIndex<'_>,
) -> Slot {
    let shift = |span: Range<usize>| span.start + offset..span.end + offset;
    Slot {
        key: key.get_ref().to_string(),
        key_position: index.position(shift(key.span())),
        value: Value::Done(convert_value(value.get_ref(), shift(value.span()), offset, index)),
    }
}

impl Table {
    fn new(state: State, position: Position) -> Table {
        Table { slots: Vec::new(), index: None, state, position }
    }

    /// A table whose every entry comes from one section's body.
    fn body(body: &DeTable<'_>, offset: usize, index: &LineIndex<'_>, state: State) -> Table {
        let mut table = Table::new(state, Position::default());
        for (key, value) in body.iter() {
            table.push(done_slot(key, value, offset, index));
        }
        table
    }

    fn at(mut self, position: Position) -> Table {
        self.position = position;
        self
    }

    fn find(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.slots.iter().position(|slot| slot.key == key),
        }
    }

    fn push(&mut self, slot: Slot) {
        let at = self.slots.len();
        if let Some(index) = &mut self.index {
            index.insert(slot.key.clone(), at);
        } else if at + 1 >= INDEXED_FROM {
            let mut index: HashMap<String, usize> =
                self.slots.iter().enumerate().map(|(i, s)| (s.key.clone(), i)).collect();
            index.insert(slot.key.clone(), at);
            self.index = Some(index);
        }
        self.slots.push(slot);
    }

    /// The entries in DeTable's order (its tables are BTreeMaps: sorted by key).
    fn into_entries(self) -> Vec<Entry> {
        let mut slots = self.slots;
        slots.sort_by(|a, b| a.key.cmp(&b.key));
        // A fresh, exact allocation: collecting in place would keep the slots' larger and
        // doubled capacity for the life of the tree.
        let mut entries = Vec::with_capacity(slots.len());
        entries.extend(slots.into_iter().map(|slot| Entry {
            key: slot.key,
            key_position: slot.key_position,
            value: slot.value.into_node(),
        }));
        entries
    }

    fn into_node(self) -> Node {
        let position = self.position;
        Node { value: NodeValue::Table(self.into_entries()), position }
    }
}

impl Value {
    fn into_node(self) -> Node {
        match self {
            Value::Done(node) => node,
            Value::Table(table) => table.into_node(),
            Value::Tables(items, position) => {
                let mut nodes = Vec::with_capacity(items.len());
                nodes.extend(items.into_iter().map(Table::into_node));
                Node { value: NodeValue::Array(nodes), position }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::source::parse_toml_whole;
    use super::*;

    /// The section path's tree, or None; where it gives a tree, DeTable's whole-file tree is the
    /// same, positions included.
    fn agrees(text: &str) -> Option<Node> {
        let index = LineIndex::new(text);
        let sections = match parse(text, &index) {
            Parsed::Tree(tree) => Some(tree),
            Parsed::Whole => None,
            Parsed::TooLarge(_) => panic!("too large"),
        };
        if let Some(tree) = &sections {
            let whole = parse_toml_whole(text, &index).expect("the section path took a file DeTable refuses");
            assert_eq!(tree, &whole, "the trees differ for:\n{text}");
        }
        sections
    }

    fn files(dir: &str) -> Vec<(std::path::PathBuf, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&root).expect("the directory").flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(files(&format!("{dir}/{}", entry.file_name().to_string_lossy())));
            } else if path.extension().is_some_and(|e| e == "toml") {
                found.push((path.clone(), std::fs::read_to_string(&path).expect("the file")));
            }
        }
        found
    }

    #[test]
    fn every_example_takes_the_section_path_with_the_same_tree() {
        for (path, text) in files("examples") {
            assert!(agrees(&text).is_some(), "{} fell back to DeTable", path.display());
        }
    }

    #[test]
    fn invalid_files_agree_or_fall_back() {
        for (_, text) in files("tests/invalid") {
            agrees(&text);
        }
    }

    #[test]
    fn what_toml_allows_across_sections_agrees() {
        let taken = [
            "a = 1\n[b]\nc = 2\n",
            "[a.b]\nc = 1\n[a]\nd = 2\n",
            "[a]\nd = 2\n[a.b]\nc = 1\n[a.e]\n",
            "[[a]]\nb = 1\n[[a]]\nb = 2\n[a.c]\nd = 3\n[[a.e]]\n[[a.e]]\nf = 1\n",
            "  [x] # indented, with a comment\n  y = \"[not a header]\"\n",
            "s = '''\n[not.a.header]\n'''\n[t]\n",
            "arr = [\n  [1],\n  [2],\n]\n[h]\n",
            "[\"quoted.key\".'lit']\nv = 1\n['quoted.key']\nw = 2\n",
            "[a]\ninline = { x = [1, { y = 2 }] }\ndotted.k = 3\n",
            "",
            "# only a comment\n",
            "[ a . b ]\nc = 1\n",
        ];
        for text in taken {
            assert!(agrees(text).is_some(), "fell back for:\n{text}");
        }
        // Refused or left to DeTable: redefinitions, extending dotted or inline tables, mixing
        // arrays of tables with tables, and syntax errors inside or across sections.
        let left = [
            "[a]\nb = 1\n[a]\nc = 2\n",
            "[a]\nb.c = 1\n[a.b.d]\n",
            "[a]\nb = { c = 1 }\n[a.b]\n",
            "[[a]]\n[a]\n",
            "[a]\n[[a]]\n",
            "a = [1]\n[[a]]\n",
            "[a]\nb = 1\nb = 2\n",
            "[a\nb = 1\n",
            "x = [1,\n[b]\n",
            "a.b = 1\n[a]\n",
            "[a.b]\n[a]\nb = 1\n",
        ];
        for text in left {
            assert!(agrees(text).is_none(), "the section path took:\n{text}");
        }
    }

    #[test]
    fn generated_fleets_take_the_section_path() {
        let mut text = String::from("version = 1\n[azure]\nsubscription_id = \"x\"\n");
        for i in 0..100 {
            text.push_str(&format!("[clusters.aks-{i}]\nresource_group = \"rg\"\nlabels = {{ env = \"prod\" }}\n"));
            text.push_str(&format!("[[bindings]]\nclusters = [\"aks-{i}\"]\nregistries = [\"r*\"]\n"));
        }
        assert!(agrees(&text).is_some());
    }
}
