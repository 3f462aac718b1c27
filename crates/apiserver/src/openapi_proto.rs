//! The OpenAPI v2 document in gnostic's protobuf form (`openapi.v2.Document` of
//! github.com/google/gnostic-models OpenAPIv2.proto), which client-go's discovery client asks
//! for (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) and decodes without a
//! JSON fallback. Encoded from the JSON document for the subset the server publishes: info,
//! paths with their operations and parameters, and definitions with vendor extensions.

use serde_json::Value;

/// Protobuf wire encoding of one message.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    /// A proto3 string: empty strings are not written.
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn opt_string(&mut self, field: u32, v: Option<&Value>) {
        if let Some(s) = v.and_then(Value::as_str) {
            self.string(field, s);
        }
    }

    fn bool(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn opt_bool(&mut self, field: u32, v: Option<&Value>) {
        self.bool(field, v.and_then(Value::as_bool).unwrap_or(false));
    }

    fn int64(&mut self, field: u32, v: Option<&Value>) {
        if let Some(n) = v.and_then(Value::as_i64) {
            if n != 0 {
                self.key(field, 0);
                self.varint(n as u64);
            }
        }
    }

    fn double(&mut self, field: u32, v: Option<&Value>) {
        if let Some(n) = v.and_then(Value::as_f64) {
            if n != 0.0 {
                self.key(field, 1);
                self.0.extend_from_slice(&n.to_le_bytes());
            }
        }
    }

    fn msg(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    fn strings(&mut self, field: u32, v: Option<&Value>) {
        for s in v.and_then(Value::as_array).into_iter().flatten() {
            if let Some(s) = s.as_str() {
                self.bytes(field, s.as_bytes());
            }
        }
    }
}

/// `Any { yaml = 2 }`: gnostic keeps free-form values as YAML text; JSON is YAML.
fn any(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(2, &v.to_string());
    m
}

/// `repeated NamedAny vendor_extension = field`: every `x-` key of `obj`.
fn vendor_extensions(m: &mut Msg, field: u32, obj: &Value) {
    for (k, v) in obj.as_object().into_iter().flatten() {
        if k.starts_with("x-") {
            let mut named = Msg::default();
            named.string(1, k);
            named.msg(2, any(v));
            m.msg(field, named);
        }
    }
}

fn schema(s: &Value) -> Msg {
    let mut m = Msg::default();
    m.opt_string(1, s.get("$ref"));
    m.opt_string(2, s.get("format"));
    m.opt_string(3, s.get("title"));
    m.opt_string(4, s.get("description"));
    if let Some(d) = s.get("default") {
        m.msg(5, any(d));
    }
    m.double(6, s.get("multipleOf"));
    m.double(7, s.get("maximum"));
    m.opt_bool(8, s.get("exclusiveMaximum"));
    m.double(9, s.get("minimum"));
    m.opt_bool(10, s.get("exclusiveMinimum"));
    m.int64(11, s.get("maxLength"));
    m.int64(12, s.get("minLength"));
    m.opt_string(13, s.get("pattern"));
    m.int64(14, s.get("maxItems"));
    m.int64(15, s.get("minItems"));
    m.opt_bool(16, s.get("uniqueItems"));
    m.int64(17, s.get("maxProperties"));
    m.int64(18, s.get("minProperties"));
    m.strings(19, s.get("required"));
    for e in s
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.msg(20, any(e));
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut a = Msg::default();
            a.key(2, 0);
            a.varint(u64::from(*b));
            m.msg(21, a);
        }
        Some(v @ Value::Object(_)) => {
            let mut a = Msg::default();
            a.msg(1, schema(v));
            m.msg(21, a);
        }
        _ => {}
    }
    match s.get("type") {
        Some(Value::String(t)) => {
            let mut ti = Msg::default();
            ti.string(1, t);
            m.msg(22, ti);
        }
        Some(v @ Value::Array(_)) => {
            let mut ti = Msg::default();
            ti.strings(1, Some(v));
            m.msg(22, ti);
        }
        _ => {}
    }
    match s.get("items") {
        Some(v @ Value::Object(_)) => {
            let mut it = Msg::default();
            it.msg(1, schema(v));
            m.msg(23, it);
        }
        Some(Value::Array(a)) => {
            let mut it = Msg::default();
            for v in a {
                it.msg(1, schema(v));
            }
            m.msg(23, it);
        }
        _ => {}
    }
    for a in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.msg(24, schema(a));
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        let mut p = Msg::default();
        for (k, v) in props {
            let mut named = Msg::default();
            named.string(1, k);
            named.msg(2, schema(v));
            p.msg(1, named);
        }
        m.msg(25, p);
    }
    m.opt_string(26, s.get("discriminator"));
    m.opt_bool(27, s.get("readOnly"));
    vendor_extensions(&mut m, 31, s);
    m
}

fn parameter(p: &Value) -> Msg {
    let location = p.get("in").and_then(Value::as_str).unwrap_or("");
    let mut param = Msg::default();
    if location == "body" {
        let mut b = Msg::default();
        b.opt_string(1, p.get("description"));
        b.opt_string(2, p.get("name"));
        b.string(3, location);
        b.opt_bool(4, p.get("required"));
        if let Some(s) = p.get("schema") {
            b.msg(5, schema(s));
        }
        vendor_extensions(&mut b, 6, p);
        param.msg(1, b);
    } else {
        // Query (3) and path (4) sub-schemas share their first fields; `type` and
        // `uniqueItems` sit one field later in the query form (after allow_empty_value).
        let (oneof, ty, unique, ext) = match location {
            "path" => (4, 5, 19, 22),
            "header" => (1, 5, 19, 22),
            _ => (3, 6, 20, 23),
        };
        let mut q = Msg::default();
        q.opt_bool(1, p.get("required"));
        q.string(2, location);
        q.opt_string(3, p.get("description"));
        q.opt_string(4, p.get("name"));
        q.opt_string(ty, p.get("type"));
        q.opt_bool(unique, p.get("uniqueItems"));
        vendor_extensions(&mut q, ext, p);
        let mut nb = Msg::default();
        nb.msg(oneof, q);
        param.msg(2, nb);
    }
    let mut item = Msg::default();
    item.msg(1, param);
    item
}

fn operation(op: &Value) -> Msg {
    let mut m = Msg::default();
    m.strings(1, op.get("tags"));
    m.opt_string(2, op.get("summary"));
    m.opt_string(3, op.get("description"));
    m.opt_string(5, op.get("operationId"));
    m.strings(6, op.get("produces"));
    m.strings(7, op.get("consumes"));
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.msg(8, parameter(p));
    }
    if let Some(rs) = op.get("responses").and_then(Value::as_object) {
        let mut responses = Msg::default();
        for (code, r) in rs {
            let mut resp = Msg::default();
            resp.opt_string(1, r.get("description"));
            if let Some(s) = r.get("schema") {
                let mut si = Msg::default();
                si.msg(1, schema(s));
                resp.msg(2, si);
            }
            let mut rv = Msg::default();
            rv.msg(1, resp);
            let mut named = Msg::default();
            named.string(1, code);
            named.msg(2, rv);
            responses.msg(1, named);
        }
        m.msg(9, responses);
    }
    m.strings(10, op.get("schemes"));
    m.opt_bool(11, op.get("deprecated"));
    vendor_extensions(&mut m, 13, op);
    m
}

fn path_item(item: &Value) -> Msg {
    let mut m = Msg::default();
    for (field, verb) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = item.get(verb) {
            m.msg(field, operation(op));
        }
    }
    for p in item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.msg(9, parameter(p));
    }
    vendor_extensions(&mut m, 10, item);
    m
}

/// Encode a Swagger 2.0 JSON document as `openapi.v2.Document`.
pub fn encode_document(doc: &Value) -> Vec<u8> {
    let mut m = Msg::default();
    m.opt_string(1, doc.get("swagger"));
    if let Some(info) = doc.get("info") {
        let mut i = Msg::default();
        i.opt_string(1, info.get("title"));
        i.opt_string(2, info.get("version"));
        i.opt_string(3, info.get("description"));
        m.msg(2, i);
    }
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        let mut p = Msg::default();
        for (k, v) in paths {
            let mut named = Msg::default();
            named.string(1, k);
            named.msg(2, path_item(v));
            p.msg(2, named);
        }
        m.msg(8, p);
    }
    if let Some(defs) = doc.get("definitions").and_then(Value::as_object) {
        let mut d = Msg::default();
        for (k, v) in defs {
            let mut named = Msg::default();
            named.string(1, k);
            named.msg(2, schema(v));
            d.msg(1, named);
        }
        m.msg(9, d);
    }
    vendor_extensions(&mut m, 16, doc);
    m.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Minimal protobuf reader for the test: (field, wire type, payload) triples.
    fn fields(mut b: &[u8]) -> Vec<(u32, u8, Vec<u8>)> {
        fn varint(b: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    return v;
                }
                shift += 7;
            }
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let k = varint(&mut b);
            let (field, wire) = ((k >> 3) as u32, (k & 7) as u8);
            let payload = match wire {
                0 => varint(&mut b).to_le_bytes().to_vec(),
                1 => {
                    let p = b[..8].to_vec();
                    b = &b[8..];
                    p
                }
                2 => {
                    let n = varint(&mut b) as usize;
                    let p = b[..n].to_vec();
                    b = &b[n..];
                    p
                }
                w => panic!("wire type {w}"),
            };
            out.push((field, wire, payload));
        }
        out
    }

    fn get(b: &[u8], field: u32) -> Vec<Vec<u8>> {
        fields(b)
            .into_iter()
            .filter(|(f, _, _)| *f == field)
            .map(|(_, _, p)| p)
            .collect()
    }

    #[test]
    fn document_round_trips_through_the_wire_format() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": {"/api/v1/pods": {"get": {"operationId": "listCoreV1PodForAllNamespaces",
                "parameters": [{"name": "watch", "in": "query", "type": "boolean", "uniqueItems": true}],
                "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/x.PodList"}}},
                "x-kubernetes-action": "list"}}},
            "definitions": {"x.Pod": {"type": "object", "description": "a pod", "required": ["spec"],
                "properties": {"spec": {"$ref": "#/definitions/x.PodSpec"}, "labels": {"type": "object", "additionalProperties": {"type": "string"}}},
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}]}},
        });
        let b = encode_document(&doc);
        assert_eq!(get(&b, 1), vec![b"2.0".to_vec()]);
        let defs = &get(&b, 9)[0];
        let named = &get(defs, 1)[0];
        assert_eq!(get(named, 1), vec![b"x.Pod".to_vec()]);
        let s = &get(named, 2)[0];
        assert_eq!(get(s, 4), vec![b"a pod".to_vec()]);
        assert_eq!(get(&get(s, 22)[0], 1), vec![b"object".to_vec()]);
        assert_eq!(get(s, 19), vec![b"spec".to_vec()]);
        let ext = &get(s, 31)[0];
        assert_eq!(
            get(ext, 1),
            vec![b"x-kubernetes-group-version-kind".to_vec()]
        );
        let yaml = String::from_utf8(get(&get(ext, 2)[0], 2)[0].clone()).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&yaml).unwrap(),
            json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
        let props = &get(s, 25)[0];
        assert_eq!(get(props, 1).len(), 2);
        let paths = &get(&b, 8)[0];
        let item = &get(&get(paths, 2)[0], 2)[0];
        let op = &get(item, 2)[0];
        assert_eq!(get(op, 5), vec![b"listCoreV1PodForAllNamespaces".to_vec()]);
        let query = &get(&get(&get(&get(op, 8)[0], 1)[0], 2)[0], 3)[0];
        assert_eq!(get(query, 4), vec![b"watch".to_vec()]);
        assert_eq!(get(query, 6), vec![b"boolean".to_vec()]);
    }

    #[test]
    fn served_document_encodes_every_definition_and_path() {
        let docs = crate::openapi::build(&[]);
        let b = &docs.v2_proto;
        let defs = &get(b, 9)[0];
        let named = get(defs, 1);
        let json_defs = docs.v2["definitions"].as_object().unwrap();
        assert_eq!(named.len(), json_defs.len());
        let names: Vec<String> = named
            .iter()
            .map(|n| String::from_utf8(get(n, 1)[0].clone()).unwrap())
            .collect();
        for k in json_defs.keys() {
            assert!(names.contains(k), "{k}");
        }
        let paths = &get(b, 8)[0];
        assert_eq!(
            get(paths, 2).len(),
            docs.v2["paths"].as_object().unwrap().len()
        );
        // The Pod definition carries its group-version-kind as a vendor extension.
        let pod = named
            .iter()
            .find(|n| get(n, 1)[0] == b"io.k8s.api.core.v1.Pod")
            .unwrap();
        let schema = &get(pod, 2)[0];
        let ext = get(schema, 31)
            .into_iter()
            .find(|e| get(e, 1)[0] == b"x-kubernetes-group-version-kind")
            .expect("gvk extension");
        let yaml = String::from_utf8(get(&get(&ext, 2)[0], 2)[0].clone()).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&yaml).unwrap(),
            json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
    }
}
