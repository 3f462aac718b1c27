//! Access reviews as kubectl sends them (protobuf): `auth can-i` posts a SelfSubjectAccessReview,
//! `auth can-i --list` a SelfSubjectRulesReview, `auth whoami` a SelfSubjectReview.

use daas_apimachinery::protobuf::decode_object;
use serde_json::json;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Length-delimited fields, in order.
fn msg(fields: &[(u64, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, bytes) in fields {
        varint(&mut out, (tag << 3) | 2);
        varint(&mut out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    out
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = msg(&[(1, api_version.as_bytes()), (2, kind.as_bytes())]);
    let mut out = b"k8s\0".to_vec();
    out.extend(msg(&[(1, &type_meta), (2, raw)]));
    out
}

#[test]
fn self_subject_access_review() {
    let attrs = msg(&[
        (1, b"u-alice"),
        (2, b"create"),
        (5, b"pods"),
        (6, b"binding"),
    ]);
    let spec = msg(&[(1, &attrs)]);
    let body = envelope(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        &msg(&[(1, &[]), (2, &spec)]),
    );
    let v = decode_object(&body).unwrap();
    assert_eq!(v["kind"], "SelfSubjectAccessReview");
    assert_eq!(
        v["spec"]["resourceAttributes"],
        json!({"namespace": "u-alice", "verb": "create", "resource": "pods", "subresource": "binding"})
    );
    assert!(v["spec"].get("nonResourceAttributes").is_none(), "{v}");
}

#[test]
fn subject_access_review_with_user_and_groups() {
    let non = msg(&[(1, b"/apis"), (2, b"get")]);
    let spec = msg(&[(2, &non), (3, b"bob"), (4, b"g1"), (4, b"g2")]);
    let body = envelope(
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        &msg(&[(2, &spec)]),
    );
    let v = decode_object(&body).unwrap();
    assert_eq!(v["spec"]["user"], "bob");
    assert_eq!(v["spec"]["groups"], json!(["g1", "g2"]));
    assert_eq!(
        v["spec"]["nonResourceAttributes"],
        json!({"path": "/apis", "verb": "get"})
    );
}

#[test]
fn rules_review_and_self_subject_review() {
    let spec = msg(&[(1, b"u-alice")]);
    let v = decode_object(&envelope(
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        &msg(&[(2, &spec)]),
    ))
    .unwrap();
    assert_eq!(v["spec"]["namespace"], "u-alice");
    let v = decode_object(&envelope(
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        &msg(&[(1, &[])]),
    ))
    .unwrap();
    assert_eq!(v["kind"], "SelfSubjectReview");
}
