//! The small subset of Kusto (KQL) the emulator's Resource Graph answers. Anything outside it is
//! refused with Resource Graph's 400 (`BadRequest` with an `InvalidQuery` detail), never guessed.
//!
//! ```text
//! query    := [table] ('|' operator)*          table: resources | authorizationresources
//! operator := where expr
//!           | extend name = expr (, name = expr)*
//!           | project (name = expr | path) (, ...)*      (a path a.b.c becomes column a_b_c)
//!           | (order | sort) by path [asc | desc] (, ...)*      (KQL's default: desc)
//!           | (take | limit) N
//! expr     := term (or term)*;  term := cmp (and cmp)*
//! cmp      := value [op value] | value [!]in[~] (literal, ...)
//! op       := == != =~ !~ [!]startswith [!]endswith [!]contains [!]has
//! value    := 'text' | "text" | number | true | false | (expr) | path
//!           | tostring(e) tolower(e) toupper(e) tobool(e) isempty(e) isnotempty(e) not(e)
//! ```
//! Names resolve like KQL's: column names and property paths are case-sensitive, table names
//! are not; `==`, `!=`, `in` compare with case, `=~`, `!~`, `in~` and the string operators without.

use serde_json::{Value, json};

/// Why a query is refused: shown as the second `details` entry of the 400.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum QueryError {
    /// Not KQL as the subset spells it (`ParserFailure` with the position of the token).
    Parse { position: usize, token: String },
    /// KQL the emulator does not answer: an operator, function or table outside the subset.
    Unsupported { token: String },
    /// A name that is no column at that point of the query.
    Unresolved { operator: &'static str, name: String },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(f64),
    Sym(&'static str),
}

fn lex(text: &str) -> Result<Vec<(Tok, usize)>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let word = |i: &mut usize| {
            let from = *i;
            while *i < chars.len() && (chars[*i].is_ascii_alphanumeric() || chars[*i] == '_' || chars[*i] == '-') {
                *i += 1;
            }
            chars[from..*i].iter().collect::<String>()
        };
        let tok = if c.is_ascii_alphabetic() || c == '_' {
            let mut w = word(&mut i);
            if (w == "in" || w == "has") && chars.get(i) == Some(&'~') {
                w.push('~');
                i += 1;
            }
            Tok::Word(w)
        } else if c == '!' && chars.get(i + 1).is_some_and(|n| n.is_ascii_alphabetic()) {
            i += 1;
            let mut w = format!("!{}", word(&mut i));
            if w == "!in" && chars.get(i) == Some(&'~') {
                w.push('~');
                i += 1;
            }
            Tok::Word(w)
        } else if c == '\'' || c == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(QueryError::Parse { position: start, token: chars[start..].iter().collect() }),
                    Some('\\') if chars.get(i + 1).is_some() => {
                        s.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        s.push(other);
                        i += 1;
                    }
                }
            }
            Tok::Str(s)
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            Tok::Num(text.parse().map_err(|_| QueryError::Parse { position: start, token: text })?)
        } else {
            let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let sym = ["==", "!=", "=~", "!~"]
                .into_iter()
                .find(|s| *s == two)
                .or_else(|| ["|", ",", ".", "(", ")", "="].into_iter().find(|s| s.starts_with(c)));
            let Some(sym) = sym else { return Err(QueryError::Parse { position: start, token: c.to_string() }) };
            i += sym.len();
            Tok::Sym(sym)
        };
        out.push((tok, start));
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Lit(Value),
    /// A column and a path into it: `properties.scope` is `["properties", "scope"]`.
    Path(Vec<String>),
    Call(&'static str, Box<Expr>),
    Cmp(&'static str, Box<Expr>, Box<Expr>),
    In {
        negated: bool,
        caseless: bool,
        value: Box<Expr>,
        set: Vec<Value>,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Resources,
    AuthorizationResources,
}

/// A parsed query, its names resolved: every expression reads the table's own columns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    pub table: Table,
    /// Row filters, all of which must hold.
    pub filters: Vec<Expr>,
    /// Sort keys (expression, descending), applied after filtering.
    pub order: Vec<(Expr, bool)>,
    /// The output columns; None: every column of the table.
    pub columns: Option<Vec<(String, Expr)>>,
    pub limit: Option<usize>,
}

const STRING_OPS: &[&str] =
    &["startswith", "!startswith", "endswith", "!endswith", "contains", "!contains", "has", "!has"];
const FUNCTIONS: &[&str] = &["tostring", "tolower", "toupper", "tobool", "isempty", "isnotempty", "not"];

struct Parser<'a> {
    toks: &'a [(Tok, usize)],
    at: usize,
    end: usize,
    /// Extended or projected names, already resolved to table columns.
    names: Vec<(String, Expr)>,
    /// False after `project`: only projected names are left.
    table_columns: bool,
    columns: &'a [&'a str],
    operator: &'static str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    fn fail(&self) -> QueryError {
        match self.toks.get(self.at) {
            Some((tok, position)) => QueryError::Parse { position: *position, token: token_text(tok) },
            None => QueryError::Parse { position: self.end, token: "<EOF>".into() },
        }
    }

    fn sym(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, sym: &str) -> Result<(), QueryError> {
        if self.sym(sym) { Ok(()) } else { Err(self.fail()) }
    }

    /// The next word.
    fn word(&mut self) -> Result<String, QueryError> {
        match self.peek() {
            Some(Tok::Word(w)) => {
                let w = w.clone();
                self.at += 1;
                Ok(w)
            }
            _ => Err(self.fail()),
        }
    }

    fn keyword(&mut self, keyword: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(keyword)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.term()?;
        while self.keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.cmp()?;
        while self.keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.cmp()?));
        }
        Ok(left)
    }

    fn cmp(&mut self) -> Result<Expr, QueryError> {
        let left = self.value()?;
        if let Some(Tok::Sym(op @ ("==" | "!=" | "=~" | "!~"))) = self.peek() {
            let op = *op;
            self.at += 1;
            return Ok(Expr::Cmp(op, Box::new(left), Box::new(self.value()?)));
        }
        let Some(Tok::Word(w)) = self.peek() else { return Ok(left) };
        let lower = w.to_ascii_lowercase();
        if let Some(op) = STRING_OPS.iter().find(|op| **op == lower) {
            self.at += 1;
            return Ok(Expr::Cmp(op, Box::new(left), Box::new(self.value()?)));
        }
        if let Some((negated, caseless)) = match lower.as_str() {
            "in" => Some((false, false)),
            "in~" => Some((false, true)),
            "!in" => Some((true, false)),
            "!in~" => Some((true, true)),
            _ => None,
        } {
            self.at += 1;
            let set = self.literal_list()?;
            return Ok(Expr::In { negated, caseless, value: Box::new(left), set });
        }
        Ok(left)
    }

    fn literal_list(&mut self) -> Result<Vec<Value>, QueryError> {
        self.expect_sym("(")?;
        let mut set = Vec::new();
        loop {
            match self.value()? {
                Expr::Lit(v) => set.push(v),
                _ => return Err(self.fail()),
            }
            if !self.sym(",") {
                break;
            }
        }
        self.expect_sym(")")?;
        Ok(set)
    }

    fn value(&mut self) -> Result<Expr, QueryError> {
        let Some(tok) = self.peek().cloned() else { return Err(self.fail()) };
        self.at += 1;
        match tok {
            Tok::Str(s) => Ok(Expr::Lit(Value::String(s))),
            Tok::Num(n) => Ok(Expr::Lit(json!(n))),
            Tok::Sym("(") => {
                let inner = self.expr()?;
                self.expect_sym(")")?;
                Ok(inner)
            }
            Tok::Word(w) if w == "true" || w == "false" => Ok(Expr::Lit(Value::Bool(w == "true"))),
            Tok::Word(w) if self.sym("(") => {
                let Some(function) = FUNCTIONS.iter().find(|f| **f == w) else {
                    return Err(QueryError::Unsupported { token: w });
                };
                let argument = self.expr()?;
                self.expect_sym(")")?;
                Ok(Expr::Call(function, Box::new(argument)))
            }
            Tok::Word(w) if !w.starts_with('!') => {
                let mut path = vec![w];
                while self.sym(".") {
                    path.push(self.word()?);
                }
                self.resolve(path)
            }
            _ => {
                self.at -= 1;
                Err(self.fail())
            }
        }
    }

    /// A path in terms of the table's columns, or Unresolved.
    fn resolve(&self, path: Vec<String>) -> Result<Expr, QueryError> {
        if let Some((_, expr)) = self.names.iter().rev().find(|(n, _)| *n == path[0]) {
            return Ok(match expr {
                Expr::Path(base) if path.len() > 1 => Expr::Path(base.iter().chain(&path[1..]).cloned().collect()),
                _ if path.len() > 1 => {
                    return Err(QueryError::Unsupported { token: path.join(".") });
                }
                other => other.clone(),
            });
        }
        if self.table_columns && self.columns.contains(&path[0].as_str()) {
            return Ok(Expr::Path(path));
        }
        Err(QueryError::Unresolved { operator: self.operator, name: path[0].clone() })
    }

    /// `name = expr` or a bare path (named after it, dots as underscores).
    fn binding(&mut self, allow_bare: bool) -> Result<(String, Expr), QueryError> {
        if let (Some(Tok::Word(name)), Some((Tok::Sym("="), _))) = (self.peek(), self.toks.get(self.at + 1)) {
            let name = name.clone();
            self.at += 2;
            return Ok((name, self.expr()?));
        }
        if !allow_bare {
            return Err(self.fail());
        }
        let start = self.at;
        let expr = self.value()?;
        let used = &self.toks[start..self.at];
        if !used.iter().all(|(t, _)| matches!(t, Tok::Word(_) | Tok::Sym("."))) {
            self.at = start;
            return Err(self.fail());
        }
        let words: Vec<String> =
            used.iter().filter_map(|(t, _)| if let Tok::Word(w) = t { Some(w.clone()) } else { None }).collect();
        Ok((words.join("_"), expr))
    }

    fn bindings(&mut self, allow_bare: bool) -> Result<Vec<(String, Expr)>, QueryError> {
        let mut list = vec![self.binding(allow_bare)?];
        while self.sym(",") {
            list.push(self.binding(allow_bare)?);
        }
        Ok(list)
    }

    fn sort_keys(&mut self) -> Result<Vec<(Expr, bool)>, QueryError> {
        if !self.keyword("by") {
            return Err(self.fail());
        }
        let mut keys = Vec::new();
        loop {
            let key = self.value()?;
            let descending = if self.keyword("asc") {
                false
            } else {
                self.keyword("desc");
                true
            };
            keys.push((key, descending));
            if !self.sym(",") {
                return Ok(keys);
            }
        }
    }
}

fn token_text(tok: &Tok) -> String {
    match tok {
        Tok::Word(w) => w.clone(),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Num(n) => n.to_string(),
        Tok::Sym(s) => s.to_string(),
    }
}

/// The columns of each table (what a row of it has).
pub(crate) const RESOURCE_COLUMNS: &[&str] = &[
    "id",
    "name",
    "type",
    "tenantId",
    "kind",
    "location",
    "resourceGroup",
    "subscriptionId",
    "managedBy",
    "sku",
    "plan",
    "properties",
    "tags",
    "identity",
    "zones",
    "extendedLocation",
];

pub(crate) fn parse(text: &str) -> Result<Query, QueryError> {
    let toks = lex(text)?;
    let mut p = Parser {
        toks: &toks,
        at: 0,
        end: text.chars().count(),
        names: Vec::new(),
        table_columns: true,
        columns: RESOURCE_COLUMNS,
        operator: "where",
    };
    let (table, named) = match p.peek() {
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("resources") => (Table::Resources, true),
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("authorizationresources") => (Table::AuthorizationResources, true),
        // Resource Graph's older form: operators without a table read `resources`.
        Some(Tok::Word(w))
            if ["where", "extend", "project", "order", "sort", "take", "limit"].contains(&w.as_str()) =>
        {
            (Table::Resources, false)
        }
        Some(Tok::Word(w)) => return Err(QueryError::Unsupported { token: w.clone() }),
        _ => return Err(p.fail()),
    };
    let mut query = Query { table, filters: Vec::new(), order: Vec::new(), columns: None, limit: None };
    if named {
        p.at += 1;
    } else {
        operator(&mut p, &mut query)?;
    }
    while p.at < toks.len() {
        p.expect_sym("|")?;
        operator(&mut p, &mut query)?;
    }
    Ok(query)
}

fn operator(p: &mut Parser<'_>, query: &mut Query) -> Result<(), QueryError> {
    let word = p.word()?;
    match word.as_str() {
        "where" => {
            p.operator = "where";
            let filter = p.expr()?;
            if query.limit.is_some() {
                // A filter after take changes which rows take kept; not in the subset.
                return Err(QueryError::Unsupported { token: word });
            }
            query.filters.push(filter);
        }
        "extend" => {
            p.operator = "extend";
            let bound = p.bindings(false)?;
            p.names.extend(bound);
        }
        "project" => {
            p.operator = "project";
            let bound = p.bindings(true)?;
            p.names = bound.clone();
            p.table_columns = false;
            query.columns = Some(bound);
        }
        "order" | "sort" => {
            p.operator = if word == "order" { "order" } else { "sort" };
            if query.limit.is_some() {
                return Err(QueryError::Unsupported { token: word });
            }
            query.order = p.sort_keys()?;
        }
        "take" | "limit" => match p.peek() {
            Some(Tok::Num(n)) if *n >= 0.0 => {
                let n = *n as usize;
                p.at += 1;
                query.limit = Some(query.limit.map_or(n, |l| l.min(n)));
            }
            _ => return Err(p.fail()),
        },
        _ => return Err(QueryError::Unsupported { token: word }),
    }
    if p.at < p.toks.len() && p.peek() != Some(&Tok::Sym("|")) {
        return Err(p.fail());
    }
    Ok(())
}

/// A value as KQL's `tostring` shows it: strings bare, null empty, the rest as JSON.
pub(crate) fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn string_op(op: &str, left: &str, right: &str) -> bool {
    let (negated, op) = match op.strip_prefix('!') {
        Some(op) => (true, op),
        None => (false, op),
    };
    let (l, r) = (left.to_lowercase(), right.to_lowercase());
    let hit = match op {
        "startswith" => l.starts_with(&r),
        "endswith" => l.ends_with(&r),
        "contains" => l.contains(&r),
        // `has` matches whole terms; a term boundary is any non-alphanumeric character.
        _ => l.split(|c: char| !c.is_alphanumeric()).any(|term| term == r),
    };
    hit != negated
}

fn equal(left: &Value, right: &Value, caseless: bool) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Bool(a), Value::Bool(b)) => a == b,
        _ if caseless => text_of(left).to_lowercase() == text_of(right).to_lowercase(),
        _ => text_of(left) == text_of(right),
    }
}

fn truthy(value: &Value) -> bool {
    matches!(value, Value::Bool(true))
}

/// Evaluates an expression; `column` reads a path of the row (Null when it is not there).
pub(crate) fn eval(expr: &Expr, column: &mut dyn FnMut(&[String]) -> Value) -> Value {
    match expr {
        Expr::Lit(v) => v.clone(),
        Expr::Path(path) => column(path),
        Expr::Call(function, argument) => {
            let v = eval(argument, column);
            match *function {
                "tostring" => Value::String(text_of(&v)),
                "tolower" => Value::String(text_of(&v).to_lowercase()),
                "toupper" => Value::String(text_of(&v).to_uppercase()),
                "tobool" => match &v {
                    Value::Bool(_) => v,
                    other => match text_of(other).to_ascii_lowercase().as_str() {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        _ => Value::Null,
                    },
                },
                "isempty" => Value::Bool(text_of(&v).is_empty()),
                "isnotempty" => Value::Bool(!text_of(&v).is_empty()),
                _ => Value::Bool(!truthy(&v)),
            }
        }
        Expr::Cmp(op, left, right) => {
            let (l, r) = (eval(left, column), eval(right, column));
            Value::Bool(match *op {
                "==" => equal(&l, &r, false),
                "!=" => !equal(&l, &r, false),
                "=~" => equal(&l, &r, true),
                "!~" => !equal(&l, &r, true),
                other => string_op(other, &text_of(&l), &text_of(&r)),
            })
        }
        Expr::In { negated, caseless, value, set } => {
            let v = eval(value, column);
            Value::Bool(set.iter().any(|s| equal(&v, s, *caseless)) != *negated)
        }
        Expr::And(a, b) => Value::Bool(truthy(&eval(a, column)) && truthy(&eval(b, column))),
        Expr::Or(a, b) => Value::Bool(truthy(&eval(a, column)) || truthy(&eval(b, column))),
    }
}

pub(crate) fn holds(expr: &Expr, column: &mut dyn FnMut(&[String]) -> Value) -> bool {
    truthy(&eval(expr, column))
}

/// Walks a path into a value (object keys, case-sensitive).
pub(crate) fn walk(value: &Value, path: &[String]) -> Value {
    path.iter().try_fold(value, |v, key| v.get(key.as_str())).cloned().unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Expr {
        Expr::Path(p.split('.').map(str::to_string).collect())
    }

    #[test]
    fn the_engines_queries_parse() {
        let q = parse(
            "resources | where type =~ 'microsoft.containerservice/managedclusters' | where resourceGroup =~ 'rg' | project id, name, resourceGroup, subscriptionId, location, tags, properties",
        )
        .expect("parses");
        assert_eq!(q.table, Table::Resources);
        assert_eq!(q.filters.len(), 2);
        assert_eq!(q.columns.as_ref().map(|c| c.len()), Some(7));
        let q = parse(
            "AuthorizationResources\n| where type =~ 'microsoft.authorization/roleassignments'\n| extend scope = tostring(properties.scope)\n| where scope in~ ('/A', '/b') or properties.scope startswith '/subscriptions/x/'\n| project id, name, scope, principalId = tostring(properties.principalId), properties.roleDefinitionId\n| order by id asc",
        )
        .expect("parses");
        assert_eq!(q.table, Table::AuthorizationResources);
        let columns = q.columns.expect("projected");
        assert_eq!(columns[2], ("scope".to_string(), Expr::Call("tostring", Box::new(path("properties.scope")))));
        assert_eq!(columns[4].0, "properties_roleDefinitionId");
        assert_eq!(q.order, vec![(path("id"), false)]);
        assert_eq!(parse("where type == 'x' | take 5").map(|q| q.limit), Ok(Some(5)));
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(parse("resources | summarize count()"), Err(QueryError::Unsupported { token: "summarize".into() }));
        assert_eq!(parse("securityresources"), Err(QueryError::Unsupported { token: "securityresources".into() }));
        assert_eq!(
            parse("resources | where substring(name, 1) == 'x'"),
            Err(QueryError::Unsupported { token: "substring".into() })
        );
        assert_eq!(
            parse("resources | project name | where id == 'x'"),
            Err(QueryError::Unresolved { operator: "where", name: "id".into() })
        );
        assert!(matches!(parse("resources | where type =~ 'x"), Err(QueryError::Parse { position: 26, .. })));
        assert!(matches!(parse("resources | where"), Err(QueryError::Parse { .. })));
        assert!(matches!(parse("resources | where name == 'a' 'b'"), Err(QueryError::Parse { .. })));
    }

    #[test]
    fn operators_follow_kql() {
        let row = json!({"name": "Aks-1", "properties": {"scope": "/Subscriptions/S/rg"}, "tags": {"env": "prod"}});
        let check = |q: &str| {
            let query = parse(&format!("resources | where {q}")).expect(q);
            holds(&query.filters[0], &mut |p| walk(&row, p))
        };
        assert!(check("name =~ 'aks-1'") && !check("name == 'aks-1'") && check("name == 'Aks-1'"));
        assert!(check("properties.scope startswith '/subscriptions/s'") && check("name !startswith 'x'"));
        assert!(check("name in~ ('AKS-1', 'b')") && !check("name in ('AKS-1')") && check("name !in ('x')"));
        assert!(check("tostring(tags.env) == 'prod' and (name has 'aks' or false)"));
        assert!(check("isempty(properties.missing)") && check("not(isempty(name))"));
    }
}
