//! Finds the line and column of a field path in the world's TOML text, so semantic errors point
//! where the user has to look.

use toml::de::{DeTable, DeValue};

use super::validate::{Problem, Seg, field_name};
use crate::error::WorldProblem;

pub fn place(text: &str, problem: Problem) -> WorldProblem {
    let offset = find(text, &problem.path);
    let (line, column) = match offset {
        Some(offset) => {
            let (line, column) = line_column(text, offset);
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    WorldProblem { field: field_name(&problem.path), line, column, message: problem.message }
}

/// The byte offset of the deepest part of `path` that exists in the text.
fn find(text: &str, path: &[Seg]) -> Option<usize> {
    let table = DeTable::parse(text).ok()?;
    let mut best: Option<usize> = None;
    let mut current: Option<&DeValue<'_>> = None;
    let mut root = Some(table.get_ref());
    for seg in path {
        match seg {
            Seg::Key(key) => {
                let map = match (root.take(), current) {
                    (Some(map), _) => map,
                    (None, Some(DeValue::Table(map))) => map,
                    _ => return best,
                };
                let (k, v) = map.iter().find(|(k, _)| k.get_ref().as_ref() == key.as_str())?;
                best = Some(k.span().start);
                current = Some(v.get_ref());
            }
            Seg::Index(i) => {
                let Some(DeValue::Array(items)) = current else { return best };
                let item = items.get(*i)?;
                best = Some(item.span().start);
                current = Some(item.get_ref());
            }
        }
    }
    best
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, column)
}
