//! Structural OpenAPI v3 schemas of custom resources (apiextensions-apiserver's
//! pkg/apiserver/schema): pruning of unknown fields, defaulting, and validation of an object
//! against the `openAPIV3Schema` of its version. Schemas are handled as the JSON the CRD holds.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::Cause;

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema[key].as_bool().unwrap_or(false)
}

/// The schema that applies to the member `key` of an object with `schema`, if any.
fn property_schema<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    if let Some(p) = schema["properties"].get(key) {
        return Some(p);
    }
    match &schema["additionalProperties"] {
        Value::Object(_) => Some(&schema["additionalProperties"]),
        _ => None,
    }
}

/// Does the schema say which members an object may have (so others are pruned)?
fn closes_object(schema: &Value) -> bool {
    !flag(schema, "x-kubernetes-preserve-unknown-fields")
        && !matches!(
            schema["additionalProperties"],
            Value::Object(_) | Value::Bool(true)
        )
}

/// Remove fields the schema does not declare (unless `x-kubernetes-preserve-unknown-fields`),
/// returning their paths. `root` keeps apiVersion, kind and metadata, as embedded resources do.
pub fn prune(obj: &mut Value, schema: &Value, root: bool) -> Vec<String> {
    let mut out = Vec::new();
    prune_at(obj, schema, "", root, &mut out);
    out
}

fn prune_at(obj: &mut Value, schema: &Value, path: &str, keep_meta: bool, out: &mut Vec<String>) {
    match obj {
        Value::Object(m) => {
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            let keep_meta = keep_meta || embedded;
            let closed = closes_object(schema);
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if embedded && k == "metadata" {
                    if let Some(md) = m.get_mut("metadata") {
                        prune_object_meta(md, &join(path, "metadata"), out);
                    }
                    continue;
                }
                if keep_meta && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let p = join(path, &k);
                match property_schema(schema, &k) {
                    Some(s) => {
                        if let Some(v) = m.get_mut(&k) {
                            prune_at(v, s, &p, false, out);
                        }
                    }
                    None if closed => {
                        m.remove(&k);
                        out.push(p);
                    }
                    None => {}
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for (i, it) in items.iter_mut().enumerate() {
                prune_at(it, &schema["items"], &format!("{path}[{i}]"), false, out);
            }
        }
        _ => {}
    }
}

/// The metadata of an embedded resource keeps only ObjectMeta's fields, as upstream prunes it.
fn prune_object_meta(md: &mut Value, path: &str, out: &mut Vec<String>) {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let Some(m) = md.as_object_mut() else { return };
    let Ok(typed) = serde_json::from_value::<ObjectMeta>(Value::Object(m.clone())) else {
        return;
    };
    let Ok(Value::Object(known)) = serde_json::to_value(&typed) else {
        return;
    };
    let keys: Vec<String> = m.keys().cloned().collect();
    for k in keys {
        if !known.contains_key(&k) && !m[&k].is_null() {
            m.remove(&k);
            out.push(join(path, &k));
        }
    }
}

/// Apply the schema's `default`s to members that are absent (upstream structural defaulting).
pub fn apply_defaults(obj: &mut Value, schema: &Value) {
    match obj {
        Value::Object(m) => {
            if let Some(props) = schema["properties"].as_object() {
                for (k, s) in props {
                    if !m.contains_key(k) {
                        if let Some(d) = s.get("default") {
                            m.insert(k.clone(), d.clone());
                        }
                    }
                }
            }
            for (k, v) in m.iter_mut() {
                if let Some(s) = property_schema(schema, k) {
                    apply_defaults(v, s);
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for it in items.iter_mut() {
                apply_defaults(it, &schema["items"]);
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn has_type(v: &Value, ty: &str) -> bool {
    let actual = type_name(v);
    actual == ty || (ty == "number" && actual == "integer")
}

fn render(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn fmt_num(v: &Value) -> String {
    match v.as_i64() {
        Some(i) => i.to_string(),
        None => v.to_string(),
    }
}

/// Validate `obj` against `schema`; causes carry upstream's field paths and messages
/// (`spec.replicas: Invalid value: "x": spec.replicas in body must be of type integer: "string"`).
pub fn validate(obj: &Value, schema: &Value, causes: &mut Vec<Cause>) {
    validate_at(obj, schema, "", causes);
}

fn validate_at(v: &Value, s: &Value, path: &str, causes: &mut Vec<Cause>) {
    let shown = if path.is_empty() { "body" } else { path };
    if v.is_null() {
        if flag(s, "nullable") || s.get("type").is_none() {
            return;
        }
        let ty = s["type"].as_str().unwrap_or("");
        causes.push((
            path.to_string(),
            format!("Invalid value: \"null\": {shown} in body must be of type {ty}: \"null\""),
        ));
        return;
    }
    if flag(s, "x-kubernetes-int-or-string") {
        if !(has_type(v, "integer") || has_type(v, "string")) {
            causes.push((
                path.to_string(),
                format!(
                    "Invalid value: {}: {shown} in body must be of type integer,string: \"{}\"",
                    render(v),
                    type_name(v)
                ),
            ));
            return;
        }
    } else if let Some(ty) = s["type"].as_str() {
        if !has_type(v, ty) {
            causes.push((
                path.to_string(),
                format!(
                    "Invalid value: \"{}\": {shown} in body must be of type {ty}: \"{}\"",
                    type_name(v),
                    type_name(v)
                ),
            ));
            return;
        }
    }
    if let Some(values) = s["enum"].as_array() {
        if !values.contains(v) {
            let list: Vec<String> = values.iter().map(render).collect();
            causes.push((
                path.to_string(),
                format!(
                    "Unsupported value: {}: supported values: {}",
                    render(v),
                    list.join(", ")
                ),
            ));
        }
    }
    match v {
        Value::Number(_) => validate_number(v, s, path, shown, causes),
        Value::String(st) => validate_string(st, s, path, shown, causes),
        Value::Array(items) => validate_array(items, s, path, shown, causes),
        Value::Object(m) => validate_object(m, s, path, causes),
        _ => {}
    }
}

fn validate_number(v: &Value, s: &Value, path: &str, shown: &str, causes: &mut Vec<Cause>) {
    let Some(x) = num(v) else { return };
    if let Some(max) = num(&s["maximum"]) {
        let excl = flag(s, "exclusiveMaximum");
        if (excl && x >= max) || x > max {
            let rel = if excl {
                "less than"
            } else {
                "less than or equal to"
            };
            causes.push((
                path.to_string(),
                format!(
                    "Invalid value: {}: {shown} in body should be {rel} {}",
                    render(v),
                    fmt_num(&s["maximum"])
                ),
            ));
        }
    }
    if let Some(min) = num(&s["minimum"]) {
        let excl = flag(s, "exclusiveMinimum");
        if (excl && x <= min) || x < min {
            let rel = if excl {
                "greater than"
            } else {
                "greater than or equal to"
            };
            causes.push((
                path.to_string(),
                format!(
                    "Invalid value: {}: {shown} in body should be {rel} {}",
                    render(v),
                    fmt_num(&s["minimum"])
                ),
            ));
        }
    }
    if let Some(m) = num(&s["multipleOf"]) {
        if m > 0.0 && (x / m).fract() != 0.0 {
            causes.push((
                path.to_string(),
                format!(
                    "Invalid value: {}: {shown} in body should be a multiple of {}",
                    render(v),
                    fmt_num(&s["multipleOf"])
                ),
            ));
        }
    }
    match s["format"].as_str() {
        Some("int32") if v.as_i64().is_some_and(|i| i32::try_from(i).is_err()) => {
            causes.push((
                path.to_string(),
                format!(
                    "Invalid value: {}: {shown} in body must be of type int32: \"{}\"",
                    render(v),
                    fmt_num(v)
                ),
            ));
        }
        _ => {}
    }
}

fn valid_format(format: &str, st: &str) -> bool {
    use base64::Engine;
    match format {
        "date-time" | "datetime" => chrono::DateTime::parse_from_rfc3339(st).is_ok(),
        "date" => chrono::NaiveDate::parse_from_str(st, "%Y-%m-%d").is_ok(),
        "byte" => base64::engine::general_purpose::STANDARD.decode(st).is_ok(),
        "ipv4" => st.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => st.parse::<std::net::Ipv6Addr>().is_ok(),
        "uuid" => uuid::Uuid::parse_str(st).is_ok(),
        "int-or-string" => true,
        _ => true,
    }
}

fn validate_string(st: &str, s: &Value, path: &str, shown: &str, causes: &mut Vec<Cause>) {
    let len = st.chars().count() as u64;
    let quoted = render(&Value::String(st.to_string()));
    if let Some(max) = s["maxLength"].as_u64() {
        if len > max {
            causes.push((
                path.to_string(),
                format!("Too long: may not be longer than {max}"),
            ));
        }
    }
    if let Some(min) = s["minLength"].as_u64() {
        if len < min {
            causes.push((
                path.to_string(),
                format!(
                    "Invalid value: {quoted}: {shown} in body should be at least {min} chars long"
                ),
            ));
        }
    }
    if let Some(p) = s["pattern"].as_str() {
        match regex::Regex::new(p) {
            Ok(re) if !re.is_match(st) => causes.push((
                path.to_string(),
                format!("Invalid value: {quoted}: {shown} in body should match '{p}'"),
            )),
            _ => {}
        }
    }
    if let Some(f) = s["format"].as_str() {
        if !valid_format(f, st) {
            causes.push((
                path.to_string(),
                format!("Invalid value: {quoted}: {shown} in body must be of type {f}: {quoted}"),
            ));
        }
    }
}

fn validate_array(items: &[Value], s: &Value, path: &str, shown: &str, causes: &mut Vec<Cause>) {
    let n = items.len() as u64;
    if let Some(max) = s["maxItems"].as_u64() {
        if n > max {
            causes.push((
                path.to_string(),
                format!("Too many: {n}: must have at most {max} items"),
            ));
        }
    }
    if let Some(min) = s["minItems"].as_u64() {
        if n < min {
            causes.push((
                path.to_string(),
                format!("Invalid value: {n}: {shown} in body should have at least {min} items"),
            ));
        }
    }
    let list_type = s["x-kubernetes-list-type"].as_str();
    if flag(s, "uniqueItems") || list_type == Some("set") {
        for (i, it) in items.iter().enumerate() {
            if items[..i].contains(it) {
                causes.push((
                    format!("{path}[{i}]"),
                    format!("Duplicate value: {}", render(it)),
                ));
            }
        }
    }
    if list_type == Some("map") {
        let keys: Vec<&str> = s["x-kubernetes-list-map-keys"]
            .as_array()
            .map(|a| a.iter().filter_map(|k| k.as_str()).collect())
            .unwrap_or_default();
        let mut seen = HashSet::new();
        for (i, it) in items.iter().enumerate() {
            let mut key = Map::new();
            for k in &keys {
                key.insert((*k).to_string(), it[*k].clone());
            }
            let key = Value::Object(key);
            if !seen.insert(render(&key)) {
                causes.push((
                    format!("{path}[{i}]"),
                    format!("Duplicate value: {}", render(&key)),
                ));
            }
        }
    }
    if s["items"].is_object() {
        for (i, it) in items.iter().enumerate() {
            validate_at(it, &s["items"], &format!("{path}[{i}]"), causes);
        }
    }
}

fn validate_object(m: &Map<String, Value>, s: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(req) = s["required"].as_array() {
        for r in req.iter().filter_map(|r| r.as_str()) {
            if !m.contains_key(r) {
                causes.push((join(path, r), "Required value".to_string()));
            }
        }
    }
    if flag(s, "x-kubernetes-embedded-resource") {
        for f in ["apiVersion", "kind"] {
            if m.get(f).and_then(|v| v.as_str()).unwrap_or("").is_empty() {
                causes.push((
                    join(path, f),
                    "Required value: must not be empty".to_string(),
                ));
            }
        }
    }
    let n = m.len() as u64;
    if let Some(max) = s["maxProperties"].as_u64() {
        if n > max {
            causes.push((
                path.to_string(),
                format!("Too many: {n}: must have at most {max} items"),
            ));
        }
    }
    if let Some(min) = s["minProperties"].as_u64() {
        if n < min {
            causes.push((
                path.to_string(),
                format!(
                    "Invalid value: {n}: {} in body should have at least {min} properties",
                    if path.is_empty() { "body" } else { path }
                ),
            ));
        }
    }
    for (k, v) in m {
        if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(ps) = property_schema(s, k) {
            validate_at(v, ps, &join(path, k), causes);
        }
    }
}

/// Structural-schema checks of a CRD version's schema (apiextensions validation): every node
/// names its type unless it is int-or-string or preserves unknown fields; the root is an object.
pub fn structural_errors(schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    match schema["type"].as_str() {
        Some("object") => {}
        Some(other) => causes.push((
            format!("{path}.type"),
            format!("Invalid value: \"{other}\": must be object at the root"),
        )),
        None => causes.push((
            format!("{path}.type"),
            "Required value: must not be empty at the root".into(),
        )),
    }
    structural_node(schema, path, true, causes);
}

const TYPES: [&str; 6] = ["object", "array", "string", "integer", "number", "boolean"];

fn structural_node(s: &Value, path: &str, root: bool, causes: &mut Vec<Cause>) {
    match s["type"].as_str() {
        Some(t) if !TYPES.contains(&t) => causes.push((
            format!("{path}.type"),
            format!(
                "Unsupported value: \"{t}\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\""
            ),
        )),
        Some(_) => {}
        None => {
            if !root
                && !flag(s, "x-kubernetes-int-or-string")
                && !flag(s, "x-kubernetes-preserve-unknown-fields")
            {
                causes.push((
                    format!("{path}.type"),
                    "Required value: must not be empty for specified object fields".into(),
                ));
            }
        }
    }
    if s["type"] == "array" && !s["items"].is_object() {
        causes.push((
            format!("{path}.items"),
            "Required value: must be specified".into(),
        ));
    }
    if let Some(props) = s["properties"].as_object() {
        if s["additionalProperties"].is_object() {
            causes.push((
                format!("{path}.additionalProperties"),
                "Forbidden: additionalProperties and properties are mutual exclusive".into(),
            ));
        }
        for (k, p) in props {
            structural_node(p, &format!("{path}.properties[{k}]"), false, causes);
        }
    }
    if s["additionalProperties"].is_object() {
        structural_node(
            &s["additionalProperties"],
            &format!("{path}.additionalProperties"),
            false,
            causes,
        );
    }
    if s["items"].is_object() {
        structural_node(&s["items"], &format!("{path}.items"), false, causes);
    }
    if let Some(p) = s["pattern"].as_str() {
        if let Err(e) = regex::Regex::new(p) {
            causes.push((
                format!("{path}.pattern"),
                format!(
                    "Invalid value: {}: must be a valid regular expression, but isn't: {e}",
                    render(&s["pattern"])
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["replicas"],
                    "properties": {
                        "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
                        "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                        "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
                        "port": {"x-kubernetes-int-or-string": true},
                        "tags": {"type": "array", "maxItems": 2, "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                        "opt": {"type": "string", "nullable": true},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                     "properties": {"spec": {"type": "object"}}},
                        "when": {"type": "string", "format": "date-time"},
                    }
                },
                "status": {"type": "object", "properties": {"ready": {"type": "integer"}}}
            }
        })
    }

    fn errors(obj: Value) -> Vec<Cause> {
        let mut c = Vec::new();
        validate(&obj, &schema(), &mut c);
        c
    }

    #[test]
    fn type_errors_name_the_path() {
        let c = errors(json!({"spec": {"replicas": "three"}}));
        assert_eq!(
            c,
            vec![(
                "spec.replicas".to_string(),
                "Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"".to_string()
            )]
        );
        assert_eq!(
            errors(json!({"spec": {}})),
            vec![("spec.replicas".to_string(), "Required value".to_string())]
        );
    }

    #[test]
    fn bounds_enum_pattern_lengths() {
        let c = errors(
            json!({"spec": {"replicas": 11, "mode": "c", "name": "A", "tags": ["x", "x", "y"]}}),
        );
        let fields: Vec<&str> = c.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "spec.mode",
                "spec.name",
                "spec.name",
                "spec.replicas",
                "spec.tags",
                "spec.tags[1]"
            ]
        );
        assert_eq!(
            c[3].1,
            "Invalid value: 11: spec.replicas in body should be less than or equal to 10"
        );
        assert_eq!(
            c[0].1,
            "Unsupported value: \"c\": supported values: \"a\", \"b\""
        );
        assert!(c[2].1.ends_with("should match '^[a-z]+$'"), "{}", c[2].1);
        assert_eq!(c[5].1, "Duplicate value: \"x\"");
        assert!(errors(json!({"spec": {"replicas": -1}}))[0]
            .1
            .ends_with("should be greater than or equal to 0"));
    }

    #[test]
    fn int_or_string_nullable_format_embedded() {
        assert!(errors(json!({"spec": {"replicas": 1, "port": 80, "opt": null}})).is_empty());
        assert!(errors(json!({"spec": {"replicas": 1, "port": "http"}})).is_empty());
        assert_eq!(
            errors(json!({"spec": {"replicas": 1, "port": true}})).len(),
            1
        );
        assert_eq!(
            errors(json!({"spec": {"replicas": 1, "when": "yesterday"}})).len(),
            1
        );
        assert!(
            errors(json!({"spec": {"replicas": 1, "when": "2024-01-02T03:04:05Z"}})).is_empty()
        );
        let c = errors(json!({"spec": {"replicas": 1, "template": {"spec": {}}}}));
        let fields: Vec<&str> = c.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            fields,
            vec!["spec.template.apiVersion", "spec.template.kind"]
        );
        let c = errors(json!({"spec": {"replicas": 1, "labels": {"a": 1}}}));
        assert_eq!(c[0].0, "spec.labels.a");
    }

    #[test]
    fn pruning_keeps_declared_and_preserved_fields() {
        let mut o = json!({
            "apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "extra": 1,
            "spec": {"replicas": 1, "bogus": true, "free": {"anything": {"deep": 1}},
                     "labels": {"k": "v"},
                     "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "junk": 1}},
        });
        let pruned = prune(&mut o, &schema(), true);
        assert_eq!(pruned, vec!["extra", "spec.bogus", "spec.template.junk"]);
        let mut sub = json!({"spec": {"replicas": 1, "template": {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "unknownSubMeta": 1}}}});
        assert_eq!(
            prune(&mut sub, &schema(), true),
            vec!["spec.template.metadata.unknownSubMeta"]
        );
        assert_eq!(sub["spec"]["template"]["metadata"], json!({"name": "p"}));
        assert_eq!(o["spec"]["free"]["anything"]["deep"], 1);
        assert_eq!(o["spec"]["labels"]["k"], "v");
        assert_eq!(o["spec"]["template"]["metadata"]["name"], "p");
        assert_eq!(o["metadata"]["name"], "a");
    }

    #[test]
    fn defaults_fill_absent_members() {
        let mut o = json!({"spec": {"replicas": 1}});
        apply_defaults(&mut o, &schema());
        assert_eq!(o["spec"]["mode"], "a");
        let mut o = json!({"spec": {"replicas": 1, "mode": "b"}});
        apply_defaults(&mut o, &schema());
        assert_eq!(o["spec"]["mode"], "b");
    }

    #[test]
    fn structural_schemas() {
        let mut c = Vec::new();
        structural_errors(&schema(), "s", &mut c);
        assert!(c.is_empty(), "{c:?}");
        structural_errors(
            &json!({"properties": {"a": {}, "b": {"type": "array"}}}),
            "s",
            &mut c,
        );
        let fields: Vec<&str> = c.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            fields,
            vec!["s.type", "s.properties[a].type", "s.properties[b].items"]
        );
    }
}
