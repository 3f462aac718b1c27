//! Label and field selectors, as in k8s.io/apimachinery `labels` and
//! `fields`.
//!
//! * [`LabelSelector`] parses the `labelSelector=` query string form
//!   (`a=b,c!=d,e in (x,y),!f`) and the `metav1.LabelSelector` JSON object
//!   (`matchLabels` / `matchExpressions`).
//! * [`FieldSelector`] parses the `fieldSelector=` query string form
//!   (`metadata.name=foo,status.phase!=Running`) and matches against dotted
//!   paths into the object JSON.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// A selector that could not be parsed or built. The message is suitable
/// for a 400 Bad Request `Status`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct SelectorError {
    message: String,
}

impl SelectorError {
    fn new(message: impl Into<String>) -> Self {
        SelectorError {
            message: message.into(),
        }
    }

    /// The human readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

// ---------------------------------------------------------------------------
// Label key / value validation (k8s.io/apimachinery/pkg/util/validation)
// ---------------------------------------------------------------------------

/// Validates a label key (a Kubernetes "qualified name": optional DNS
/// subdomain prefix and `/`, then a name of at most 63 characters).
pub fn validate_label_key(key: &str) -> Result<(), SelectorError> {
    match crate::validation::qualified_name(key).into_iter().next() {
        Some(why) => Err(SelectorError::new(format!(
            "invalid label key {key:?}: {why}"
        ))),
        None => Ok(()),
    }
}

/// Validates a label value (empty, or at most 63 characters of
/// alphanumerics, `-`, `_`, `.` starting and ending alphanumeric).
pub fn validate_label_value(value: &str) -> Result<(), SelectorError> {
    match crate::validation::label_value(value).into_iter().next() {
        Some(why) => Err(SelectorError::new(format!(
            "invalid label value {value:?}: {why}"
        ))),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Label selector
// ---------------------------------------------------------------------------

/// Operator of a label [`Requirement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value`
    Equals,
    /// `key==value`
    DoubleEquals,
    /// `key!=value`
    NotEquals,
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)`
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>5` (integer comparison)
    GreaterThan,
    /// `key<5` (integer comparison)
    LessThan,
}

/// One term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: BTreeSet<String>,
}

impl Requirement {
    /// Builds a validated requirement (key and values are validated like
    /// Kubernetes' `labels.NewRequirement`).
    pub fn new<I, S>(key: &str, operator: Operator, values: I) -> Result<Self, SelectorError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        validate_label_key(key)?;
        let values: Vec<String> = values.into_iter().map(Into::into).collect();
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    return Err(SelectorError::new(format!(
                        "invalid requirement for key {key:?}: for 'in', 'notin' operators, values set can't be empty"
                    )));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    return Err(SelectorError::new(format!(
                        "invalid requirement for key {key:?}: exact-match compatibility requires one single value"
                    )));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    return Err(SelectorError::new(format!(
                        "invalid requirement for key {key:?}: values set must be empty for exists and does not exist"
                    )));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    return Err(SelectorError::new(format!(
                        "invalid requirement for key {key:?}: for 'Gt', 'Lt' operators, exactly one value is required"
                    )));
                }
                for v in &values {
                    if v.parse::<i64>().is_err() {
                        return Err(SelectorError::new(format!(
                            "invalid requirement for key {key:?}: for 'Gt', 'Lt' operators, the value must be an integer, got {v:?}"
                        )));
                    }
                }
            }
        }
        for v in &values {
            validate_label_value(v)?;
        }
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values: values.into_iter().collect(),
        })
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values (sorted; empty for Exists / DoesNotExist).
    pub fn values(&self) -> &BTreeSet<String> {
        &self.values
    }

    /// Whether the label set satisfies this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.map(|v| self.values.contains(v)).unwrap_or(false)
            }
            Operator::NotIn | Operator::NotEquals => {
                value.map(|v| !self.values.contains(v)).unwrap_or(true)
            }
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(have), Some(want)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values
                        .iter()
                        .next()
                        .and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.values.iter().next().map(String::as_str).unwrap_or("");
        match self.operator {
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::Equals => write!(f, "{}={}", self.key, first),
            Operator::DoubleEquals => write!(f, "{}=={}", self.key, first),
            Operator::NotEquals => write!(f, "{}!={}", self.key, first),
            Operator::GreaterThan => write!(f, "{}>{}", self.key, first),
            Operator::LessThan => write!(f, "{}<{}", self.key, first),
            Operator::In | Operator::NotIn => {
                let op = if self.operator == Operator::In {
                    "in"
                } else {
                    "notin"
                };
                let vals: Vec<&str> = self.values.iter().map(String::as_str).collect();
                write!(f, "{} {} ({})", self.key, op, vals.join(","))
            }
        }
    }
}

/// A label selector: the AND of its requirements.
///
/// Choices, following Kubernetes:
/// * the empty string and an empty `metav1.LabelSelector` object (`{}`)
///   select **everything** ([`LabelSelector::everything`]);
/// * a JSON `null` / absent `metav1.LabelSelector` selects **nothing**
///   ([`LabelSelector::nothing`], like `metav1.LabelSelectorAsSelector(nil)`).
///   Its [`Display`](fmt::Display) form is the empty string, as in Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// Selects every object.
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// Selects no object.
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Builds a selector from requirements (sorted by key, as Kubernetes
    /// does).
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// Equality selector from a plain label map, like `labels.SelectorFromSet`
    /// (used for Service / ReplicationController `spec.selector`). Keys and
    /// values are not validated; an empty map selects everything.
    pub fn from_map(map: &BTreeMap<String, String>) -> Self {
        LabelSelector {
            requirements: map
                .iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    operator: Operator::Equals,
                    values: std::iter::once(v.clone()).collect(),
                })
                .collect(),
            nothing: false,
        }
    }

    /// Parses the string form sent as `labelSelector=`.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let tokens = lex(selector)?;
        let mut parser = Parser { tokens, pos: 0 };
        let requirements = parser.parse().map_err(|e| {
            SelectorError::new(format!("unable to parse requirement: {}", e.message))
        })?;
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// Builds a selector from a `metav1.LabelSelector` JSON object
    /// (`{"matchLabels": {...}, "matchExpressions": [...]}`).
    ///
    /// `null` selects nothing; `{}` selects everything.
    pub fn from_json(selector: &Value) -> Result<Self, SelectorError> {
        let obj = match selector {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(o) => o,
            _ => return Err(SelectorError::new("a label selector must be a JSON object")),
        };
        let mut reqs = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let v = v.as_str().ok_or_else(|| {
                        SelectorError::new(format!("matchLabels[{k:?}] must be a string"))
                    })?;
                    reqs.push(Requirement::new(k, Operator::Equals, [v])?);
                }
            }
            Some(_) => return Err(SelectorError::new("matchLabels must be a JSON object")),
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(exprs)) => {
                for e in exprs {
                    let e = e.as_object().ok_or_else(|| {
                        SelectorError::new("matchExpressions entries must be objects")
                    })?;
                    let key = e.get("key").and_then(Value::as_str).ok_or_else(|| {
                        SelectorError::new("matchExpressions entry is missing \"key\"")
                    })?;
                    let op = e.get("operator").and_then(Value::as_str).unwrap_or("");
                    let op = match op {
                        "In" => Operator::In,
                        "NotIn" => Operator::NotIn,
                        "Exists" => Operator::Exists,
                        "DoesNotExist" => Operator::DoesNotExist,
                        other => {
                            return Err(SelectorError::new(format!(
                                "{other:?} is not a valid label selector operator"
                            )))
                        }
                    };
                    let values: Vec<String> = match e.get("values") {
                        None | Some(Value::Null) => Vec::new(),
                        Some(Value::Array(vs)) => vs
                            .iter()
                            .map(|v| {
                                v.as_str().map(str::to_string).ok_or_else(|| {
                                    SelectorError::new("matchExpressions values must be strings")
                                })
                            })
                            .collect::<Result<_, _>>()?,
                        Some(_) => {
                            return Err(SelectorError::new(
                                "matchExpressions values must be a list",
                            ))
                        }
                    };
                    reqs.push(Requirement::new(key, op, values)?);
                }
            }
            Some(_) => return Err(SelectorError::new("matchExpressions must be a list")),
        }
        Ok(LabelSelector::from_requirements(reqs))
    }

    /// The requirements (ANDed), sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when the selector matches every label set.
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True when the selector matches nothing.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Like [`matches`](Self::matches), taking an object's `metadata.labels`
    /// JSON value (absent / `null` means no labels; non-string values are
    /// ignored).
    pub fn matches_labels_value(&self, labels: &Value) -> bool {
        self.matches(&labels_from_value(labels))
    }

    /// Like [`matches`](Self::matches), reading `metadata.labels` of a whole
    /// object.
    pub fn matches_object(&self, object: &Value) -> bool {
        self.matches_labels_value(object.pointer("/metadata/labels").unwrap_or(&Value::Null))
    }
}

/// Converts a `metadata.labels` JSON value into a map (non-string values and
/// non-object inputs are ignored).
pub fn labels_from_value(labels: &Value) -> BTreeMap<String, String> {
    labels
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LabelSelector::parse(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    OpenPar,
    ClosePar,
    Comma,
    End,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Bang => "!".into(),
            Token::Eq => "=".into(),
            Token::DoubleEq => "==".into(),
            Token::NotEq => "!=".into(),
            Token::Gt => ">".into(),
            Token::Lt => "<".into(),
            Token::OpenPar => "(".into(),
            Token::ClosePar => ")".into(),
            Token::Comma => ",".into(),
            Token::End => "end of string".into(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | '>' | '<' | '(' | ')' | ',')
}

fn lex(input: &str) -> Result<Vec<Token>, SelectorError> {
    let mut out = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if is_special(c) {
            chars.next();
            let next = chars.peek().map(|&(_, n)| n);
            let tok = match (c, next) {
                ('!', Some('=')) => {
                    chars.next();
                    Token::NotEq
                }
                ('=', Some('=')) => {
                    chars.next();
                    Token::DoubleEq
                }
                ('!', _) => Token::Bang,
                ('=', _) => Token::Eq,
                ('>', _) => Token::Gt,
                ('<', _) => Token::Lt,
                ('(', _) => Token::OpenPar,
                (')', _) => Token::ClosePar,
                _ => Token::Comma,
            };
            out.push(tok);
            continue;
        }
        let start = i;
        let mut end = input.len();
        while let Some(&(j, d)) = chars.peek() {
            if d.is_whitespace() || is_special(d) {
                end = j;
                break;
            }
            chars.next();
        }
        out.push(Token::Ident(input[start..end].to_string()));
    }
    out.push(Token::End);
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut reqs = Vec::new();
        loop {
            match self.peek() {
                Token::End => return Ok(reqs),
                Token::Ident(_) | Token::Bang => {
                    reqs.push(self.parse_requirement()?);
                    match self.next() {
                        Token::End => return Ok(reqs),
                        Token::Comma => match self.peek() {
                            Token::Ident(_) | Token::Bang => {}
                            t => {
                                return Err(SelectorError::new(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.describe()
                                )))
                            }
                        },
                        t => {
                            return Err(SelectorError::new(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.describe()
                            )))
                        }
                    }
                }
                t => {
                    return Err(SelectorError::new(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.describe()
                    )))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, SelectorError> {
        let negated = if *self.peek() == Token::Bang {
            self.next();
            true
        } else {
            false
        };
        let key = match self.next() {
            Token::Ident(k) => k,
            t => {
                return Err(SelectorError::new(format!(
                    "found '{}', expected: identifier",
                    t.describe()
                )))
            }
        };
        validate_label_key(&key)?;
        if negated {
            return match self.peek() {
                Token::End | Token::Comma => {
                    Requirement::new::<_, String>(&key, Operator::DoesNotExist, [])
                }
                t => Err(SelectorError::new(format!(
                    "found '{}', expected: ',' or 'end of string' after '!{key}'",
                    t.describe()
                ))),
            };
        }
        let op = match self.peek() {
            Token::End | Token::Comma => {
                return Requirement::new::<_, String>(&key, Operator::Exists, [])
            }
            Token::Eq => Operator::Equals,
            Token::DoubleEq => Operator::DoubleEquals,
            Token::NotEq => Operator::NotEquals,
            Token::Gt => Operator::GreaterThan,
            Token::Lt => Operator::LessThan,
            Token::Ident(s) if s == "in" => Operator::In,
            Token::Ident(s) if s == "notin" => Operator::NotIn,
            t => {
                return Err(SelectorError::new(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    t.describe()
                )))
            }
        };
        self.next();
        let values: Vec<String> = match op {
            Operator::In | Operator::NotIn => self.parse_set()?,
            _ => match self.peek() {
                Token::End | Token::Comma => vec![String::new()],
                Token::Ident(_) => match self.next() {
                    Token::Ident(v) => vec![v],
                    _ => Vec::new(),
                },
                t => {
                    return Err(SelectorError::new(format!(
                        "found '{}', expected: identifier",
                        t.describe()
                    )))
                }
            },
        };
        Requirement::new(&key, op, values)
    }

    /// `( v1, v2, ... )`; empty entries are the empty string, as in
    /// Kubernetes (`in ()` means `in ("")`).
    fn parse_set(&mut self) -> Result<Vec<String>, SelectorError> {
        match self.next() {
            Token::OpenPar => {}
            t => {
                return Err(SelectorError::new(format!(
                    "found '{}', expected: '('",
                    t.describe()
                )))
            }
        }
        let mut values = Vec::new();
        let mut expect_value = true;
        loop {
            match self.next() {
                Token::Ident(v) if expect_value => {
                    values.push(v);
                    expect_value = false;
                }
                Token::Comma => {
                    if expect_value {
                        values.push(String::new());
                    }
                    expect_value = true;
                }
                Token::ClosePar => {
                    if expect_value {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                t => {
                    return Err(SelectorError::new(format!(
                        "found '{}', expected: ',', ')' or identifier",
                        t.describe()
                    )))
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Field selector
// ---------------------------------------------------------------------------

/// Operator of a field selector term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `field=value` or `field==value`
    Equals,
    /// `field!=value`
    NotEquals,
}

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// Dotted field path, e.g. `metadata.name`.
    pub field: String,
    /// The comparison.
    pub operator: FieldOperator,
    /// The (unescaped) value.
    pub value: String,
}

impl FieldRequirement {
    /// Whether the given field value (missing = empty string) satisfies the
    /// term.
    pub fn matches_value(&self, actual: &str) -> bool {
        match self.operator {
            FieldOperator::Equals => actual == self.value,
            FieldOperator::NotEquals => actual != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{}{}", self.field, op, escape_field_value(&self.value))
    }
}

/// A field selector: the AND of its terms. The empty string selects
/// everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

/// Escapes `\`, `,` and `=` in a field selector value.
pub fn escape_field_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Reverses [`escape_field_value`]; any other escape is an error.
pub fn unescape_field_value(value: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('\\' | ',' | '=')) => out.push(e),
            Some(e) => {
                return Err(SelectorError::new(format!(
                    "invalid field selector: invalid escape sequence: \\{e}"
                )))
            }
            None => {
                return Err(SelectorError::new(
                    "invalid field selector: unterminated escape sequence",
                ))
            }
        }
    }
    Ok(out)
}

/// Splits on commas not preceded by an escaping backslash.
fn split_terms(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at the first operator (`!=`, `==` or `=`) that is not
/// escaped.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    let mut escaped = false;
    for (i, c) in term.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        let rest = &term[i..];
        if let Some(r) = rest.strip_prefix("!=") {
            return Some((&term[..i], FieldOperator::NotEquals, r));
        }
        if let Some(r) = rest.strip_prefix("==") {
            return Some((&term[..i], FieldOperator::Equals, r));
        }
        if let Some(r) = rest.strip_prefix('=') {
            return Some((&term[..i], FieldOperator::Equals, r));
        }
    }
    None
}

impl FieldSelector {
    /// Selects every object.
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// Parses the string form sent as `fieldSelector=`. Terms are sorted
    /// (as Kubernetes does); field names are not checked here, see
    /// [`requirements`](Self::requirements) and
    /// [`unsupported_fields`](Self::unsupported_fields).
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(selector);
        parts.sort_unstable();
        let mut requirements = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let (lhs, op, rhs) = split_term(part).ok_or_else(|| {
                SelectorError::new(format!(
                    "invalid selector: '{selector}'; can't understand '{part}'"
                ))
            })?;
            let field = lhs.trim();
            if field.is_empty() {
                return Err(SelectorError::new(format!(
                    "invalid selector: '{selector}'; missing field name in '{part}'"
                )));
            }
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator: op,
                value: unescape_field_value(rhs)?,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Builds a selector from terms.
    pub fn from_requirements(requirements: Vec<FieldRequirement>) -> Self {
        FieldSelector { requirements }
    }

    /// The terms (ANDed), so the server can check field names per resource.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// True when there are no terms.
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Field names used by the selector that are not in `supported`, for a
    /// "field label not supported" 400 error.
    pub fn unsupported_fields<'a>(&'a self, supported: &[&str]) -> Vec<&'a str> {
        self.requirements
            .iter()
            .map(|r| r.field.as_str())
            .filter(|f| !supported.contains(f))
            .collect()
    }

    /// The value of an `field=value` term for `field`, if any (like
    /// Kubernetes' `RequiresExactMatch`, e.g. `metadata.name` for watches).
    pub fn exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }

    /// Matches against the object JSON, reading each field as upstream's
    /// field-label conversion of the object's `kind` does ([`field_label_value`]):
    /// a missing boolean or number field compares as its zero value
    /// (`spec.unschedulable=false` selects a Node without the field), any other
    /// missing (or null) field as the empty string.
    pub fn matches(&self, object: &Value) -> bool {
        self.matches_with(|f| field_label_value(object, f))
    }

    /// Matches against a precomputed field set (missing = empty string).
    pub fn matches_fields(&self, fields: &BTreeMap<String, String>) -> bool {
        self.matches_with(|f| fields.get(f).cloned())
    }

    /// Matches using a lookup function (`None` = empty string).
    pub fn matches_with<F: Fn(&str) -> Option<String>>(&self, lookup: F) -> bool {
        self.requirements.iter().all(|r| {
            let actual = lookup(&r.field).unwrap_or_default();
            r.matches_value(&actual)
        })
    }
}

/// The value of the field label `field` of an object, as the Kubernetes
/// registry's `ToSelectableFields` of the object's `kind` computes it: Go
/// formats a non-pointer `bool` or `int32` field even when it is absent from
/// the JSON, so such a field reads as `"false"` / `"0"` when missing; a label
/// that is not a plain path (`source` of an Event is `source.component`) is
/// mapped; any other field is [`field_value`] at its dotted path.
pub fn field_label_value(object: &Value, field: &str) -> Option<String> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let path = match (kind, field) {
        ("Event", "source") => "source.component",
        _ => field,
    };
    field_value(object, path).or_else(|| field_zero_value(kind, field).map(str::to_string))
}

/// The zero value of a selectable field of `kind` whose Go type is a
/// non-pointer bool or integer (upstream formats it with
/// `strconv.FormatBool` / `strconv.Itoa`, so a missing field still has a value).
pub fn field_zero_value(kind: &str, field: &str) -> Option<&'static str> {
    match (kind, field) {
        ("Node", "spec.unschedulable") | ("Pod", "spec.hostNetwork") => Some("false"),
        ("ReplicaSet" | "ReplicationController", "status.replicas") => Some("0"),
        ("Job", "status.successful") => Some("0"),
        _ => None,
    }
}

/// The string value at a dotted path (`spec.nodeName`) in the object:
/// strings as-is, numbers and booleans in their JSON form; `None` when the
/// path is missing, null, or not a scalar.
pub fn field_value(object: &Value, path: &str) -> Option<String> {
    let mut cur = object;
    for part in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_equality_and_inequality() {
        let l = labels(&[("app", "web"), ("tier", "fe")]);
        assert!(LabelSelector::parse("app=web").unwrap().matches(&l));
        assert!(LabelSelector::parse("app==web").unwrap().matches(&l));
        assert!(!LabelSelector::parse("app=db").unwrap().matches(&l));
        assert!(LabelSelector::parse("app!=db").unwrap().matches(&l));
        assert!(LabelSelector::parse("missing!=x").unwrap().matches(&l));
        assert!(LabelSelector::parse("app=web,tier=fe").unwrap().matches(&l));
        assert!(!LabelSelector::parse("app=web,tier=be").unwrap().matches(&l));
        assert!(LabelSelector::parse("  app = web ,  tier != be ")
            .unwrap()
            .matches(&l));
        // `a=` means the label must exist with an empty value
        assert!(!LabelSelector::parse("app=").unwrap().matches(&l));
        assert!(LabelSelector::parse("e=")
            .unwrap()
            .matches(&labels(&[("e", "")])));
    }

    #[test]
    fn label_set_based() {
        let l = labels(&[("env", "prod"), ("app", "web")]);
        assert!(LabelSelector::parse("env in (prod, staging)")
            .unwrap()
            .matches(&l));
        assert!(!LabelSelector::parse("env in (dev)").unwrap().matches(&l));
        assert!(LabelSelector::parse("env notin (dev,qa)")
            .unwrap()
            .matches(&l));
        assert!(!LabelSelector::parse("env notin (prod)")
            .unwrap()
            .matches(&l));
        assert!(LabelSelector::parse("other notin (prod)")
            .unwrap()
            .matches(&l));
        assert!(!LabelSelector::parse("other in (prod)").unwrap().matches(&l));
        assert!(LabelSelector::parse("app").unwrap().matches(&l));
        assert!(!LabelSelector::parse("!app").unwrap().matches(&l));
        assert!(LabelSelector::parse("!other").unwrap().matches(&l));
        assert!(LabelSelector::parse("env in (prod),app,!other,app!=db")
            .unwrap()
            .matches(&l));
        // keywords are plain values in value position
        assert!(LabelSelector::parse("k=in")
            .unwrap()
            .matches(&labels(&[("k", "in")])));
        assert!(LabelSelector::parse("k in (in,notin)")
            .unwrap()
            .matches(&labels(&[("k", "notin")])));
    }

    #[test]
    fn label_gt_lt() {
        let l = labels(&[("n", "5")]);
        assert!(LabelSelector::parse("n>3").unwrap().matches(&l));
        assert!(!LabelSelector::parse("n<3").unwrap().matches(&l));
        assert!(!LabelSelector::parse("m>3").unwrap().matches(&l));
        assert!(!LabelSelector::parse("n>3")
            .unwrap()
            .matches(&labels(&[("n", "x")])));
        assert!(LabelSelector::parse("n>x").is_err());
    }

    #[test]
    fn label_selector_display_round_trips() {
        let s = LabelSelector::parse("tier in (b, a),app=web,!gone,present,x!=y,z==1").unwrap();
        assert_eq!(
            s.to_string(),
            "app=web,!gone,present,tier in (a,b),x!=y,z==1"
        );
        assert_eq!(LabelSelector::parse(&s.to_string()).unwrap(), s);
        assert_eq!(
            "a notin (x)".parse::<LabelSelector>().unwrap().to_string(),
            "a notin (x)"
        );
        assert_eq!(LabelSelector::parse("").unwrap().to_string(), "");
    }

    #[test]
    fn label_empty_and_whitespace_select_everything() {
        for s in ["", "   "] {
            let sel = LabelSelector::parse(s).unwrap();
            assert!(sel.is_everything());
            assert!(sel.matches(&BTreeMap::new()));
        }
    }

    #[test]
    fn label_empty_set_entries_are_empty_strings() {
        let s = LabelSelector::parse("a in ()").unwrap();
        assert_eq!(
            s.requirements()[0].values().iter().collect::<Vec<_>>(),
            vec![""]
        );
        let s = LabelSelector::parse("a in (x,)").unwrap();
        assert_eq!(s.requirements()[0].values().len(), 2);
    }

    #[test]
    fn label_parse_errors() {
        let bad = [
            "a=b=c",
            "a b",
            "=b",
            ",",
            "a,",
            "a,,b",
            "!",
            "!a=b",
            "a in",
            "a in (x",
            "a in x",
            "a in (x y)",
            "a notin ((x))",
            "a==",
            "a=(b)",
            "a!b",
            "-bad=x",
            "a=-bad",
            "Foo.Example.com/x=1",
            "/x=1",
            "a/b/c=1",
            "a=this-value-is-way-too-long-for-a-kubernetes-label-value-0123456789",
            "x=a b",
            "(",
            ")",
            "app=web)",
        ];
        for s in bad {
            let r = LabelSelector::parse(s);
            // `a==` is actually valid (empty value) in Kubernetes
            if s == "a==" {
                assert!(r.is_ok());
                continue;
            }
            assert!(r.is_err(), "{s:?} should not parse, got {r:?}");
        }
        let err = LabelSelector::parse("a in (x").unwrap_err();
        assert!(
            err.to_string().starts_with("unable to parse requirement"),
            "{err}"
        );
    }

    #[test]
    fn label_keys_with_prefix() {
        let l = labels(&[("app.kubernetes.io/name", "web")]);
        assert!(LabelSelector::parse("app.kubernetes.io/name=web")
            .unwrap()
            .matches(&l));
        assert!(LabelSelector::parse("app.kubernetes.io/name in (web)")
            .unwrap()
            .matches(&l));
        assert!(validate_label_key(&"a".repeat(63)).is_ok());
        assert!(validate_label_key(&"a".repeat(64)).is_err());
        assert!(validate_label_value("").is_ok());
        assert!(validate_label_value("a_b.c-d").is_ok());
        assert!(validate_label_value("a_").is_err());
    }

    #[test]
    fn label_selector_from_json() {
        let sel = LabelSelector::from_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "tier", "operator": "Exists", "values": []}
            ]
        }))
        .unwrap();
        assert_eq!(
            sel.to_string(),
            "app=web,env in (prod,staging),!legacy,tier"
        );
        assert!(sel.matches(&labels(&[("app", "web"), ("env", "prod"), ("tier", "x")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("env", "prod")])));

        let everything = LabelSelector::from_json(&json!({})).unwrap();
        assert!(everything.is_everything());
        assert!(everything.matches(&BTreeMap::new()));
        let nothing = LabelSelector::from_json(&Value::Null).unwrap();
        assert!(nothing.is_nothing());
        assert!(!nothing.matches(&BTreeMap::new()));
        assert!(!nothing.matches(&labels(&[("a", "b")])));

        let bad = [
            json!("app=web"),
            json!({"matchLabels": ["a"]}),
            json!({"matchLabels": {"a": 1}}),
            json!({"matchLabels": {"bad key": "x"}}),
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
            json!({"matchExpressions": [{"operator": "Exists"}]}),
            json!({"matchExpressions": {"key": "a"}}),
        ];
        for b in bad {
            assert!(LabelSelector::from_json(&b).is_err(), "{b}");
        }
    }

    #[test]
    fn label_helpers_on_values() {
        let pod = json!({"metadata": {"name": "p", "labels": {"app": "web", "n": 1}}});
        let sel = LabelSelector::parse("app=web").unwrap();
        assert!(sel.matches_object(&pod));
        assert!(sel.matches_labels_value(&pod["metadata"]["labels"]));
        assert!(!sel.matches_object(&json!({"metadata": {}})));
        assert!(LabelSelector::parse("!n").unwrap().matches_object(&pod));
        let from_map = LabelSelector::from_map(&labels(&[("app", "web")]));
        assert!(from_map.matches_object(&pod));
        assert_eq!(from_map.to_string(), "app=web");
        assert!(LabelSelector::from_map(&BTreeMap::new()).is_everything());
    }

    #[test]
    fn field_selector_parse_and_match() {
        let pod = json!({
            "metadata": {"name": "p1", "namespace": "default"},
            "spec": {"nodeName": "n1", "replicas": 3, "unschedulable": true},
            "status": {"phase": "Running"}
        });
        let f = FieldSelector::parse("metadata.name=p1,status.phase!=Failed").unwrap();
        assert!(f.matches(&pod));
        assert!(FieldSelector::parse("metadata.namespace==default")
            .unwrap()
            .matches(&pod));
        assert!(!FieldSelector::parse("spec.nodeName=n2")
            .unwrap()
            .matches(&pod));
        assert!(FieldSelector::parse("spec.replicas=3")
            .unwrap()
            .matches(&pod));
        assert!(FieldSelector::parse("spec.unschedulable=true")
            .unwrap()
            .matches(&pod));
        assert!(FieldSelector::parse("").unwrap().matches(&pod));
        assert!(FieldSelector::parse("").unwrap().is_everything());
        assert_eq!(f.exact_match("metadata.name"), Some("p1"));
        assert_eq!(f.exact_match("status.phase"), None);
    }

    #[test]
    fn field_selector_missing_field_is_empty_string() {
        let unscheduled = json!({"metadata": {"name": "p"}, "spec": {}});
        let scheduled = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}});
        let sel = FieldSelector::parse("spec.nodeName=").unwrap();
        assert!(sel.matches(&unscheduled));
        assert!(!sel.matches(&scheduled));
        let sel = FieldSelector::parse("spec.nodeName!=").unwrap();
        assert!(!sel.matches(&unscheduled));
        assert!(sel.matches(&scheduled));
        let event = json!({"involvedObject": {"name": "p", "kind": "Pod"}, "type": "Warning"});
        assert!(
            FieldSelector::parse("involvedObject.name=p,involvedObject.kind=Pod,type=Warning")
                .unwrap()
                .matches(&event)
        );
    }

    #[test]
    fn field_selector_escaping() {
        let f = FieldSelector::parse(r"metadata.name=a\,b\=c\\d").unwrap();
        assert_eq!(f.requirements()[0].value, r"a,b=c\d");
        assert!(f.matches(&json!({"metadata": {"name": r"a,b=c\d"}})));
        assert_eq!(f.to_string(), r"metadata.name=a\,b\=c\\d");
        assert_eq!(FieldSelector::parse(&f.to_string()).unwrap(), f);
        assert_eq!(escape_field_value(r"x=y,z\"), r"x\=y\,z\\");
        assert!(FieldSelector::parse(r"metadata.name=a\x").is_err());
        assert!(FieldSelector::parse(r"metadata.name=a\").is_err());
    }

    #[test]
    fn field_selector_errors_and_requirements() {
        for bad in ["metadata.name", "foo", "=x", "a=b,c"] {
            assert!(FieldSelector::parse(bad).is_err(), "{bad}");
        }
        let f = FieldSelector::parse("status.phase!=Running,metadata.name=x,spec.bogus=1").unwrap();
        let fields: Vec<_> = f
            .requirements()
            .iter()
            .map(|r| (r.field.as_str(), r.operator))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("metadata.name", FieldOperator::Equals),
                ("spec.bogus", FieldOperator::Equals),
                ("status.phase", FieldOperator::NotEquals)
            ]
        );
        assert_eq!(
            f.unsupported_fields(&["metadata.name", "status.phase"]),
            vec!["spec.bogus"]
        );
        let mut fields = BTreeMap::new();
        fields.insert("metadata.name".to_string(), "x".to_string());
        fields.insert("spec.bogus".to_string(), "1".to_string());
        assert!(f.matches_fields(&fields));
        // trailing empty terms are ignored, as in Kubernetes
        assert_eq!(
            FieldSelector::parse("a=b,").unwrap().requirements().len(),
            1
        );
    }

    #[test]
    fn field_value_paths() {
        let obj = json!({"a": {"b": [{"c": "x"}], "n": null, "m": {}}});
        assert_eq!(field_value(&obj, "a.b.0.c"), Some("x".into()));
        assert_eq!(field_value(&obj, "a.n"), None);
        assert_eq!(field_value(&obj, "a.m"), None);
        assert_eq!(field_value(&obj, "a.zz.y"), None);
    }

    #[test]
    fn missing_bool_and_number_fields_compare_as_zero_values() {
        let plain = json!({"kind": "Node", "metadata": {"name": "n1"}, "spec": {}});
        let cordoned =
            json!({"kind": "Node", "metadata": {"name": "n2"}, "spec": {"unschedulable": true}});
        let sel = FieldSelector::parse("spec.unschedulable=false").unwrap();
        assert!(sel.matches(&plain));
        assert!(!sel.matches(&cordoned));
        let sel = FieldSelector::parse("spec.unschedulable!=false").unwrap();
        assert!(!sel.matches(&plain));
        assert!(sel.matches(&cordoned));
        // A Node with no spec at all.
        assert!(FieldSelector::parse("spec.unschedulable=false")
            .unwrap()
            .matches(&json!({"kind": "Node", "metadata": {"name": "n3"}})));

        let pod = json!({"kind": "Pod", "spec": {"containers": []}});
        assert!(FieldSelector::parse("spec.hostNetwork=false")
            .unwrap()
            .matches(&pod));
        assert!(!FieldSelector::parse("spec.hostNetwork=true")
            .unwrap()
            .matches(&pod));

        let rs = json!({"kind": "ReplicaSet", "status": {}});
        assert!(FieldSelector::parse("status.replicas=0")
            .unwrap()
            .matches(&rs));
        assert!(!FieldSelector::parse("status.replicas!=0")
            .unwrap()
            .matches(&rs));
        let rs = json!({"kind": "ReplicaSet", "status": {"replicas": 3}});
        assert!(FieldSelector::parse("status.replicas!=0")
            .unwrap()
            .matches(&rs));

        // String fields still compare as "" when missing; other kinds get no default.
        let pod = json!({"kind": "Pod", "spec": {}});
        assert!(FieldSelector::parse("spec.nodeName=")
            .unwrap()
            .matches(&pod));
        let cm = json!({"kind": "ConfigMap"});
        assert!(FieldSelector::parse("spec.unschedulable=")
            .unwrap()
            .matches(&cm));
    }

    #[test]
    fn event_source_is_source_component() {
        let ev = json!({"kind": "Event", "source": {"component": "kubelet", "host": "n1"}});
        assert!(FieldSelector::parse("source=kubelet").unwrap().matches(&ev));
        assert!(!FieldSelector::parse("source=").unwrap().matches(&ev));
        assert_eq!(field_label_value(&ev, "source.host"), Some("n1".into()));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn label_parse_never_panics(s in "[a-z0-9!=<>(), ./_-]{0,40}") {
                if let Ok(sel) = LabelSelector::parse(&s) {
                    // Display form re-parses to the same selector.
                    prop_assert_eq!(LabelSelector::parse(&sel.to_string()).unwrap(), sel);
                }
            }

            #[test]
            fn label_parse_never_panics_unicode(s in "\\PC{0,30}") {
                let _ = LabelSelector::parse(&s);
            }

            #[test]
            fn field_parse_never_panics(s in "[a-z.=!,\\\\ ]{0,40}") {
                if let Ok(sel) = FieldSelector::parse(&s) {
                    let _ = sel.matches(&json!({"a": {"b": "c"}}));
                }
            }

            #[test]
            fn field_escape_round_trips(v in "\\PC{0,20}") {
                prop_assert_eq!(unescape_field_value(&escape_field_value(&v)).unwrap(), v);
            }
        }
    }
}
