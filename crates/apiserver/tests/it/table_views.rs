//! Table output where a kind has none: upstream's negotiation answers 406 when a client accepts
//! only a Table from a resource without a table convertor (table_conversion.go [Conformance]).

use crate::common;

use common::{app, call_accept, JSON};
use serde_json::json;

const TABLE_ONLY: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

#[tokio::test]
async fn create_only_review_answers_406_to_a_table_only_client() {
    let (_d, app) = app().await;
    let sar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"nonResourceAttributes": {"path": "/", "verb": "get"}}});
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let (code, st) = call_accept(&app, "POST", path, JSON, TABLE_ONLY, Some(sar.clone())).await;
    assert_eq!(code, 406, "{st}");
    assert_eq!(st["reason"], "NotAcceptable");
    assert_eq!(
        st["message"],
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
    );
    // With JSON acceptable too, the review is answered.
    let both = format!("{TABLE_ONLY}, {JSON}");
    let (code, out) = call_accept(&app, "POST", path, JSON, &both, Some(sar)).await;
    assert_eq!(code, 201, "{out}");
    assert_eq!(out["status"]["allowed"], true);
}
