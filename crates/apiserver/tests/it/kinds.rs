//! The simple kinds through the router: PodTemplate, PriorityClass, RuntimeClass and
//! EndpointSlice — create/get/list/update/delete, validation, tables and discovery.

use crate::common;

use axum::body::Body;
use axum::http::Request;
use common::{app, call, call_accept, JSON, MERGE, TOKEN};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

async fn get(app: &axum::Router, path: &str) -> (u16, Value) {
    call_accept(app, "GET", path, JSON, JSON, None).await
}

async fn delete(app: &axum::Router, path: &str) -> (u16, Value) {
    call_accept(app, "DELETE", path, JSON, JSON, None).await
}

fn fields(status: &Value) -> Vec<String> {
    status["details"]["causes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["field"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn pod_templates_crud_defaults_and_validation() {
    let (_d, app) = app().await;
    let base = "/api/v1/namespaces/default/podtemplates";
    let (code, st) = call(
        &app,
        "POST",
        base,
        JSON,
        json!({"metadata":{"name":"bad"},"template":{"spec":{"containers":[]}}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["reason"], "Invalid");
    assert_eq!(fields(&st), vec!["template.spec.containers"]);

    let pt = json!({"apiVersion":"v1","kind":"PodTemplate","metadata":{"name":"web"},
        "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}});
    let (code, created) = call(&app, "POST", base, JSON, pt).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(created["template"]["spec"]["dnsPolicy"], "ClusterFirst");

    let (code, got) = get(&app, &format!("{base}/web")).await;
    assert_eq!(code, 200);
    assert_eq!(got["kind"], "PodTemplate");
    let (_, list) = get(&app, base).await;
    assert_eq!(list["kind"], "PodTemplateList");
    assert_eq!(names(&list), vec!["web"]);

    let mut upd = got.clone();
    upd["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    let (code, updated) = call(&app, "PUT", &format!("{base}/web"), JSON, upd).await;
    assert_eq!(code, 200, "{updated}");
    assert_eq!(
        updated["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );

    let (code, table) = call_accept(
        &app,
        "GET",
        base,
        JSON,
        "application/json;as=Table;v=v1;g=meta.k8s.io",
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(table["columnDefinitions"][3]["name"], "Pod Labels");
    assert_eq!(table["rows"][0]["cells"][2], "nginx:1.27");
    assert_eq!(table["rows"][0]["cells"][3], "app=web");

    let (code, _) = delete(&app, &format!("{base}/web")).await;
    assert_eq!(code, 200);
    assert_eq!(get(&app, &format!("{base}/web")).await.0, 404);

    // Delete a collection by label.
    for (name, set) in [("a", "x"), ("b", "x"), ("c", "y")] {
        let (code, _) = call(
            &app,
            "POST",
            base,
            JSON,
            json!({"metadata":{"name":name,"labels":{"set":set}},
                   "template":{"spec":{"containers":[{"name":"c","image":"nginx"}]}}}),
        )
        .await;
        assert_eq!(code, 201);
    }
    let (code, _) = call_accept(
        &app,
        "DELETE",
        &format!("{base}?labelSelector=set%3Dx"),
        JSON,
        JSON,
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(names(&get(&app, base).await.1), vec!["c"]);
}

#[tokio::test]
async fn priority_classes_system_classes_default_and_immutability() {
    let (_d, app) = app().await;
    let base = "/apis/scheduling.k8s.io/v1/priorityclasses";
    let (code, list) = get(&app, base).await;
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "PriorityClassList");
    let (_, crit) = get(&app, &format!("{base}/system-cluster-critical")).await;
    assert_eq!(crit["value"], 2000000000);
    let (_, node) = get(&app, &format!("{base}/system-node-critical")).await;
    assert_eq!(node["value"], 2000001000);
    assert_eq!(node["preemptionPolicy"], "PreemptLowerPriority");

    // The system classes can be neither deleted nor changed.
    let (code, st) = delete(&app, &format!("{base}/system-node-critical")).await;
    assert_eq!(code, 403, "{st}");
    assert_eq!(st["reason"], "Forbidden");
    assert!(st["message"]
        .as_str()
        .unwrap()
        .ends_with("this is a system priority class and cannot be deleted"));
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{base}/system-node-critical"),
        MERGE,
        json!({"globalDefault": true}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(fields(&st), vec!["metadata.name"]);
    // The system- prefix is reserved, user values are bounded.
    let (code, st) = call(
        &app,
        "POST",
        base,
        JSON,
        json!({"metadata":{"name":"system-mine"},"value":10}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    let (code, st) = call(
        &app,
        "POST",
        base,
        JSON,
        json!({"metadata":{"name":"huge"},"value":1_500_000_000i64}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(fields(&st), vec!["value"]);

    // One global default.
    let (code, hi) = call(
        &app,
        "POST",
        base,
        JSON,
        json!({"apiVersion":"scheduling.k8s.io/v1","kind":"PriorityClass",
               "metadata":{"name":"high"},"value":1000,"globalDefault":true}),
    )
    .await;
    assert_eq!(code, 201, "{hi}");
    assert_eq!(hi["preemptionPolicy"], "PreemptLowerPriority");
    let (code, st) = call(
        &app,
        "POST",
        base,
        JSON,
        json!({"metadata":{"name":"other"},"value":5,"globalDefault":true}),
    )
    .await;
    assert_eq!(code, 403, "{st}");
    assert_eq!(
        st["message"],
        "priorityclasses.scheduling.k8s.io \"other\" is forbidden: PriorityClass high is already marked as default. Only one default can exist"
    );
    let (code, low) = call(
        &app,
        "POST",
        base,
        JSON,
        json!({"metadata":{"name":"low"},"value":5,"preemptionPolicy":"Never"}),
    )
    .await;
    assert_eq!(code, 201, "{low}");
    let (code, _) = call(
        &app,
        "PATCH",
        &format!("{base}/low"),
        MERGE,
        json!({"globalDefault": true}),
    )
    .await;
    assert_eq!(code, 403);
    // The default itself may be updated; its value may not.
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{base}/high"),
        MERGE,
        json!({"description": "the default"}),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{base}/high"),
        MERGE,
        json!({"value": 2000}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(fields(&st), vec!["value"]);
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{base}/low"),
        MERGE,
        json!({"preemptionPolicy": "PreemptLowerPriority"}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(fields(&st), vec!["preemptionPolicy"]);

    let (_, table) = call_accept(
        &app,
        "GET",
        &format!("{base}/high"),
        JSON,
        "application/json;as=Table;v=v1;g=meta.k8s.io",
        None,
    )
    .await;
    let cols: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        vec!["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]
    );
    assert_eq!(table["rows"][0]["cells"][1], 1000);
    assert_eq!(table["rows"][0]["cells"][2], true);

    assert_eq!(delete(&app, &format!("{base}/high")).await.0, 200);
    assert_eq!(get(&app, &format!("{base}/high")).await.0, 404);
    // With the old default gone, another class may become the default.
    let (code, _) = call(
        &app,
        "PATCH",
        &format!("{base}/low"),
        MERGE,
        json!({"globalDefault": true}),
    )
    .await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn runtime_classes_validate_handler() {
    let (_d, app) = app().await;
    let base = "/apis/node.k8s.io/v1/runtimeclasses";
    let (code, st) = call(
        &app,
        "POST",
        base,
        JSON,
        json!({"metadata":{"name":"bad"},"handler":"Not_A_Label"}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(fields(&st), vec!["handler"]);
    let (code, rc) = call(
        &app,
        "POST",
        base,
        JSON,
        json!({"apiVersion":"node.k8s.io/v1","kind":"RuntimeClass","metadata":{"name":"gvisor"},
               "handler":"runsc","overhead":{"podFixed":{"cpu":"250m"}},
               "scheduling":{"nodeSelector":{"runtime":"gvisor"},"tolerations":[{"key":"sandbox","operator":"Exists"}]}}),
    )
    .await;
    assert_eq!(code, 201, "{rc}");
    assert!(rc["metadata"]["namespace"].is_null());
    let (_, list) = get(&app, base).await;
    assert_eq!(names(&list), vec!["gvisor"]);
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{base}/gvisor"),
        MERGE,
        json!({"handler":"runc"}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(fields(&st), vec!["handler"]);
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{base}/gvisor"),
        MERGE,
        json!({"scheduling":{"nodeSelector":{"runtime":"gvisor-2"}}}),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    assert_eq!(delete(&app, &format!("{base}/gvisor")).await.0, 200);
}

#[tokio::test]
async fn endpoint_slices_validate_addresses_and_keep_their_type() {
    let (_d, app) = app().await;
    let base = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
    let (code, st) = call(
        &app,
        "POST",
        base,
        JSON,
        json!({"metadata":{"name":"no-type"},"endpoints":[]}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(fields(&st), vec!["addressType"]);
    let (code, st) = call(
        &app,
        "POST",
        base,
        JSON,
        json!({"metadata":{"name":"bad"},"addressType":"IPv4",
               "endpoints":[{"addresses":["10.0.0.300"]}]}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(fields(&st), vec!["endpoints[0].addresses[0]"]);

    let (code, es) = call(
        &app,
        "POST",
        base,
        JSON,
        json!({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice",
               "metadata":{"name":"web-abc","labels":{"kubernetes.io/service-name":"web"}},
               "addressType":"IPv4",
               "endpoints":[{"addresses":["10.42.0.5"],"conditions":{"ready":true}}],
               "ports":[{"name":"http","port":80}]}),
    )
    .await;
    assert_eq!(code, 201, "{es}");
    assert_eq!(es["ports"][0]["protocol"], "TCP");
    let (_, list) = get(
        &app,
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb",
    )
    .await;
    assert_eq!(names(&list), vec!["web-abc"]);
    // Across namespaces, as the conformance suite lists them.
    let (code, all) = get(&app, "/apis/discovery.k8s.io/v1/endpointslices").await;
    assert_eq!(code, 200, "{all}");
    assert_eq!(names(&all), vec!["web-abc"]);
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{base}/web-abc"),
        MERGE,
        json!({"addressType":"IPv6"}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert!(fields(&st).contains(&"addressType".to_string()), "{st}");
    let (code, upd) = call(
        &app,
        "PATCH",
        &format!("{base}/web-abc"),
        MERGE,
        json!({"endpoints":[{"addresses":["10.42.0.6"]}]}),
    )
    .await;
    assert_eq!(code, 200, "{upd}");
    assert_eq!(upd["endpoints"][0]["addresses"][0], "10.42.0.6");
    assert_eq!(delete(&app, &format!("{base}/web-abc")).await.0, 200);
}

#[tokio::test]
async fn discovery_lists_the_new_kinds() {
    let (_d, app) = app().await;
    let (_, groups) = get(&app, "/apis").await;
    let group_names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in ["scheduling.k8s.io", "node.k8s.io", "discovery.k8s.io"] {
        assert!(group_names.contains(&g), "{g} missing from {group_names:?}");
    }
    let find = |list: &Value, name: &str| -> Value {
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let (_, core) = get(&app, "/api/v1").await;
    let pt = find(&core, "podtemplates");
    assert_eq!(pt["kind"], "PodTemplate");
    assert_eq!(pt["namespaced"], true);
    let (_, sched) = get(&app, "/apis/scheduling.k8s.io/v1").await;
    let pc = find(&sched, "priorityclasses");
    assert_eq!(pc["shortNames"], json!(["pc"]));
    assert_eq!(pc["namespaced"], false);
    assert!(pc["verbs"]
        .as_array()
        .unwrap()
        .contains(&json!("deletecollection")));
    let (_, node) = get(&app, "/apis/node.k8s.io/v1").await;
    assert_eq!(find(&node, "runtimeclasses")["kind"], "RuntimeClass");
    let (_, disc) = get(&app, "/apis/discovery.k8s.io/v1").await;
    assert_eq!(find(&disc, "endpointslices")["namespaced"], true);
}

// --- protobuf bodies, as client-go's typed clients (and the conformance suite) send them.

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field(tag: u64, b: &[u8], out: &mut Vec<u8>) {
    varint(tag << 3 | 2, out);
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut tm = Vec::new();
    field(1, api_version.as_bytes(), &mut tm);
    field(2, kind.as_bytes(), &mut tm);
    let mut unk = Vec::new();
    field(1, &tm, &mut unk);
    field(2, raw, &mut unk);
    let mut out = b"k8s\0".to_vec();
    out.extend_from_slice(&unk);
    out
}

#[tokio::test]
async fn endpoint_slices_and_runtime_classes_accept_protobuf_bodies() {
    let (_d, app) = app().await;
    let post = |path: &'static str, body: Vec<u8>| {
        let app = app.clone();
        async move {
            let req = Request::builder()
                .method("POST")
                .uri(path)
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("content-type", "application/vnd.kubernetes.protobuf")
                .header("accept", JSON)
                .body(Body::from(body))
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let code = resp.status().as_u16();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (
                code,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    let mut meta = Vec::new();
    field(1, b"web-pb", &mut meta);
    let mut ep = Vec::new();
    field(1, b"10.42.0.7", &mut ep);
    let mut port = Vec::new();
    varint(3 << 3, &mut port);
    varint(8080, &mut port);
    let mut raw = Vec::new();
    field(1, &meta, &mut raw);
    field(2, &ep, &mut raw);
    field(3, &port, &mut raw);
    field(4, b"IPv4", &mut raw);
    let (code, es) = post(
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
        envelope("discovery.k8s.io/v1", "EndpointSlice", &raw),
    )
    .await;
    assert_eq!(code, 201, "{es}");
    assert_eq!(es["endpoints"][0]["addresses"][0], "10.42.0.7");
    assert_eq!(
        es["ports"][0],
        json!({"name": "", "port": 8080, "protocol": "TCP"})
    );

    let mut meta = Vec::new();
    field(1, b"kata", &mut meta);
    let mut raw = Vec::new();
    field(1, &meta, &mut raw);
    field(2, b"kata-qemu", &mut raw);
    let (code, rc) = post(
        "/apis/node.k8s.io/v1/runtimeclasses",
        envelope("node.k8s.io/v1", "RuntimeClass", &raw),
    )
    .await;
    assert_eq!(code, 201, "{rc}");
    assert_eq!(rc["handler"], "kata-qemu");
}

#[tokio::test]
async fn pods_get_their_runtime_class_overhead_and_scheduling() {
    let (_d, app) = app().await;
    let pods = "/api/v1/namespaces/default/pods";
    let pod = |name: &str, rc: &str, extra: Value| {
        let mut p = json!({"metadata":{"name":name},
            "spec":{"runtimeClassName":rc,"containers":[{"name":"c","image":"busybox"}]}});
        if let (Some(spec), Some(extra)) = (p["spec"].as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        p
    };
    let (code, st) = call(&app, "POST", pods, JSON, pod("p0", "missing", json!({}))).await;
    assert_eq!(code, 403, "{st}");
    assert_eq!(
        st["message"],
        "pods \"p0\" is forbidden: pod rejected: RuntimeClass \"missing\" not found"
    );
    let (code, _) = call(
        &app,
        "POST",
        "/apis/node.k8s.io/v1/runtimeclasses",
        JSON,
        json!({"metadata":{"name":"sandboxed"},"handler":"runsc",
               "overhead":{"podFixed":{"cpu":"250m","memory":"64Mi"}},
               "scheduling":{"nodeSelector":{"sandbox":"yes"},
                             "tolerations":[{"key":"sandbox","operator":"Exists","effect":"NoSchedule"}]}}),
    )
    .await;
    assert_eq!(code, 201);
    let (code, p1) = call(&app, "POST", pods, JSON, pod("p1", "sandboxed", json!({}))).await;
    assert_eq!(code, 201, "{p1}");
    assert_eq!(
        p1["spec"]["overhead"],
        json!({"cpu":"250m","memory":"64Mi"})
    );
    assert_eq!(p1["spec"]["nodeSelector"], json!({"sandbox":"yes"}));
    assert_eq!(p1["spec"]["tolerations"][0]["key"], "sandbox");

    let (code, st) = call(
        &app,
        "POST",
        pods,
        JSON,
        pod("p2", "sandboxed", json!({"nodeSelector":{"sandbox":"no"}})),
    )
    .await;
    assert_eq!(code, 403, "{st}");
    assert!(st["message"]
        .as_str()
        .unwrap()
        .ends_with("conflict: runtimeClass.scheduling.nodeSelector[sandbox] = yes; pod.spec.nodeSelector[sandbox] = no"));
    let (code, st) = call(
        &app,
        "POST",
        pods,
        JSON,
        pod("p3", "sandboxed", json!({"overhead":{"cpu":"1"}})),
    )
    .await;
    assert_eq!(code, 403, "{st}");
    let mut plain = pod("p4", "", json!({"overhead":{"cpu":"1"}}));
    plain["spec"]
        .as_object_mut()
        .unwrap()
        .remove("runtimeClassName");
    let (code, st) = call(&app, "POST", pods, JSON, plain).await;
    assert_eq!(code, 403, "{st}");
    assert!(st["message"]
        .as_str()
        .unwrap()
        .ends_with("Pod Overhead set without corresponding RuntimeClass defined Overhead"));
}
