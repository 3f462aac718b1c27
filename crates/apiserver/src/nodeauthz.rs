//! What a node (`system:node:<name>`, group `system:nodes`) may touch, like upstream's
//! graph-based Node authorizer and the NodeRestriction admission plugin:
//! - Secrets, ConfigMaps, PersistentVolumeClaims and ServiceAccounts (and
//!   `serviceaccounts/token`) only when a pod bound to the node references them, and a
//!   PersistentVolume only when it is bound to such a claim (claimRef and the claim's
//!   volumeName agree) or is a local-path volume pinned to the node, whose cleanup finalizer
//!   (alone) the node may remove; a list or watch only when narrowed to one such object by
//!   `fieldSelector=metadata.name=<name>`; and a Secret also when an Ingress of the built-in
//!   class (`daas`, served by every node's ingress proxy) names it in `spec.tls`;
//! - writes to pods (status, delete) only for pods bound to the node;
//! - its own Node object only, without setting, changing or removing restricted labels or taints;
//! - its own Lease in `kube-node-lease` only.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::authz;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{self, Ctx};
use crate::registry::ingress;
use crate::registry::persistentvolume::{local_path_node, CLEANUP_FINALIZER};
use crate::request::ResourceTarget;
use crate::resources;
use crate::server::User;

/// The namespace nodes keep their heartbeat Leases in.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Kinds a node may only read through a pod bound to it.
pub fn is_graph_kind(kind: &str) -> bool {
    matches!(
        kind,
        "Secret" | "ConfigMap" | "PersistentVolumeClaim" | "PersistentVolume" | "ServiceAccount"
    )
}

fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |k| spec[k].as_array().map(|a| a.iter()).into_iter().flatten())
}

fn each(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// Does `pod` reference the object `kind`/`name` (in its own namespace)?
pub fn pod_references(pod: &Value, kind: &str, name: &str) -> bool {
    let spec = &pod["spec"];
    let is = |v: &Value| v.as_str() == Some(name);
    match kind {
        "Secret" => {
            each(&spec["imagePullSecrets"]).any(|s| is(&s["name"]))
                || each(&spec["volumes"]).any(|v| {
                    is(&v["secret"]["secretName"])
                        || is(&v["csi"]["nodePublishSecretRef"]["name"])
                        || each(&v["projected"]["sources"]).any(|s| is(&s["secret"]["name"]))
                })
                || containers(spec).any(|c| {
                    each(&c["env"]).any(|e| is(&e["valueFrom"]["secretKeyRef"]["name"]))
                        || each(&c["envFrom"]).any(|e| is(&e["secretRef"]["name"]))
                })
        }
        "ConfigMap" => {
            each(&spec["volumes"]).any(|v| {
                is(&v["configMap"]["name"])
                    || each(&v["projected"]["sources"]).any(|s| is(&s["configMap"]["name"]))
            }) || containers(spec).any(|c| {
                each(&c["env"]).any(|e| is(&e["valueFrom"]["configMapKeyRef"]["name"]))
                    || each(&c["envFrom"]).any(|e| is(&e["configMapRef"]["name"]))
            })
        }
        "PersistentVolumeClaim" => {
            each(&spec["volumes"]).any(|v| is(&v["persistentVolumeClaim"]["claimName"]))
        }
        "ServiceAccount" => {
            let sa = spec["serviceAccountName"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("default");
            sa == name
        }
        _ => false,
    }
}

/// The single object name a list/watch is narrowed to by `fieldSelector=metadata.name=<n>`.
fn selected_name(q: &HashMap<String, String>) -> Option<String> {
    let fs = q.get("fieldSelector")?.trim();
    if fs.contains(',') {
        return None;
    }
    let (k, v) = fs.split_once("==").or_else(|| fs.split_once('='))?;
    (k.trim() == "metadata.name" && !v.trim().is_empty() && !v.contains('='))
        .then(|| v.trim().to_string())
}

/// Is there a pod bound to `node` in `ns` that references `kind`/`name`? A PersistentVolume
/// (cluster-scoped) is reached through the claim it is bound to.
async fn has_relationship(
    ctx: &Ctx,
    node: &str,
    ns: &str,
    kind: &str,
    name: &str,
) -> ApiResult<bool> {
    if kind == "PersistentVolume" {
        let pv = match handlers::get_object(ctx, &resources::PERSISTENT_VOLUMES, None, name).await {
            Ok((pv, _)) => pv,
            Err(e) if e.code == 404 => return Ok(false),
            Err(e) => return Err(e),
        };
        if local_path_node(&pv) == Some(node) {
            // Its own local-path volumes: the node cleans up their data after release.
            return Ok(true);
        }
        let claim_ns = pv["spec"]["claimRef"]["namespace"].as_str().unwrap_or("");
        let claim = pv["spec"]["claimRef"]["name"].as_str().unwrap_or("");
        if claim_ns.is_empty() || claim.is_empty() {
            return Ok(false);
        }
        let pvc = match handlers::get_object(
            ctx,
            &resources::PERSISTENT_VOLUME_CLAIMS,
            Some(claim_ns),
            claim,
        )
        .await
        {
            Ok((pvc, _)) => pvc,
            Err(e) if e.code == 404 => return Ok(false),
            Err(e) => return Err(e),
        };
        if pvc["spec"]["volumeName"].as_str() != Some(name) {
            return Ok(false);
        }
        return Box::pin(has_relationship(
            ctx,
            node,
            claim_ns,
            "PersistentVolumeClaim",
            claim,
        ))
        .await;
    }
    let pods = resources::by_kind("Pod").ok_or_else(|| ApiError::internal("pod type missing"))?;
    let all = handlers::Filter {
        labels: None,
        fields: None,
    };
    let (items, _) = handlers::list_objects(ctx, pods, Some(ns), &all).await?;
    if items
        .iter()
        .any(|p| p["spec"]["nodeName"].as_str() == Some(node) && pod_references(p, kind, name))
    {
        return Ok(true);
    }
    if kind == "Secret" {
        // Every node runs the built-in ingress proxy: it reads the TLS Secrets named by the
        // Ingresses of its class in that namespace, and no other.
        let (ings, _) = handlers::list_objects(ctx, &resources::INGRESSES, Some(ns), &all).await?;
        return Ok(ings.iter().any(|i| ingress_references_secret(i, name)));
    }
    Ok(false)
}

/// Does `ing`, an Ingress of the built-in class, name Secret `name` in its `spec.tls`?
pub fn ingress_references_secret(ing: &Value, name: &str) -> bool {
    ingress::class_of(ing) == Some(ingress::DAAS_CLASS)
        && ingress::tls_secret_names(ing).any(|n| n == name)
}

/// The graph part of the Node authorizer, after the static checks of [`authz::authorize`].
pub async fn authorize(
    ctx: &Ctx,
    u: &User,
    verb: &str,
    t: &ResourceTarget,
    q: &HashMap<String, String>,
) -> ApiResult<()> {
    let Some(node) = authz::node_name(u) else {
        return Ok(());
    };
    if t.def.kind == "PersistentVolume" && matches!(verb, "update" | "patch") && t.sub.is_none() {
        // The node holding a local-path volume's data clears its cleanup finalizer (what else
        // the write may change is checked by NodeRestriction in `admit`).
        if let Some(name) = &t.name {
            let pv = match handlers::get_object(ctx, t.def, None, name).await {
                Ok((pv, _)) => Some(pv),
                Err(e) if e.code == 404 => None,
                Err(e) => return Err(e),
            };
            if pv.as_ref().and_then(local_path_node) == Some(node) {
                return Ok(());
            }
        }
        return Err(authz::forbidden_because(
            u,
            verb,
            t,
            "can only update local-path volumes on itself",
        ));
    }
    if is_graph_kind(t.def.kind) {
        let token_request =
            t.def.kind == "ServiceAccount" && t.sub.as_deref() == Some("token") && verb == "create";
        if !token_request && !matches!(verb, "get" | "list" | "watch") {
            return Err(authz::forbidden_because(
                u,
                verb,
                t,
                "can only read resources of this type",
            ));
        }
        if t.sub.is_some() && !token_request {
            return Err(authz::forbidden(u, verb, t));
        }
        let name = match (&t.name, verb) {
            (Some(n), _) => n.clone(),
            (None, "list" | "watch") => match selected_name(q) {
                Some(n) => n,
                None => return Err(authz::forbidden_because(u, verb, t, "No Object name found")),
            },
            (None, _) => return Err(authz::forbidden_because(u, verb, t, "No Object name found")),
        };
        let ns = t.namespace.as_deref().unwrap_or("");
        if has_relationship(ctx, node, ns, t.def.kind, &name).await? {
            return Ok(());
        }
        let mut named = t.clone();
        named.name = Some(name);
        return Err(authz::forbidden_because(
            u,
            verb,
            &named,
            &format!("no relationship found between node '{node}' and this object"),
        ));
    }
    if t.def.kind == "Pod" && !matches!(verb, "get" | "list" | "watch") {
        // Writes to existing pods (status, delete): only pods bound to this node.
        let Some(name) = &t.name else { return Ok(()) };
        let (pod, _) = handlers::get_object(ctx, t.def, t.namespace.as_deref(), name).await?;
        if pod["spec"]["nodeName"].as_str() != Some(node) {
            return Err(ApiError::forbidden(format!(
                "pods \"{name}\" is forbidden: node \"{node}\" can only {verb} pods bound to itself"
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- NodeRestriction (admission)

/// Label prefixes (DNS namespaces) a node may never set, change or remove on its Node.
const RESTRICTED_LABEL_NAMESPACES: &[&str] = &["node-restriction.kubernetes.io", "k3s-daas.io"];

/// Labels the kubelet sets itself (upstream `kubeletapis.IsKubeletLabel`).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/instance-type",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "node.kubernetes.io/instance-type",
];

fn label_namespace(key: &str) -> &str {
    key.split_once('/').map(|(ns, _)| ns).unwrap_or("")
}

fn in_namespace(ns: &str, domain: &str) -> bool {
    ns == domain || ns.ends_with(&format!(".{domain}"))
}

fn is_kubelet_label(key: &str) -> bool {
    let ns = label_namespace(key);
    KUBELET_LABELS.contains(&key)
        || in_namespace(ns, "kubelet.kubernetes.io")
        || in_namespace(ns, "node.kubernetes.io")
}

/// May a node set, change or remove this label on its own Node?
pub fn node_may_modify_label(key: &str) -> bool {
    let ns = label_namespace(key);
    if RESTRICTED_LABEL_NAMESPACES
        .iter()
        .any(|d| in_namespace(ns, d))
    {
        return false;
    }
    let kubernetes = in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io");
    !kubernetes || is_kubelet_label(key)
}

fn labels(obj: Option<&Value>) -> BTreeMap<String, String> {
    obj.and_then(|o| o["metadata"]["labels"].as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Label keys that differ between `new` and `old` and that a node may not touch, sorted.
pub fn forbidden_label_changes(old: Option<&Value>, new: &Value) -> Vec<String> {
    let (a, b) = (labels(Some(new)), labels(old));
    let mut keys: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .chain(b.iter().filter(|(k, v)| a.get(*k) != Some(*v)))
        .map(|(k, _)| k.clone())
        .filter(|k| !node_may_modify_label(k))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn forbidden_obj(t: &ResourceTarget, name: &str, why: String) -> ApiError {
    let what = if name.is_empty() {
        t.def.qualified()
    } else {
        format!("{} \"{name}\"", t.def.qualified())
    };
    ApiError::forbidden(format!("{what} is forbidden: {why}"))
        .with_details(serde_json::json!({"name": name, "group": t.def.group, "kind": t.def.plural}))
}

/// NodeRestriction for creates and updates of Nodes and Leases by a node. `old` is `None` on
/// create.
pub fn admit(node: &str, t: &ResourceTarget, old: Option<&Value>, new: &Value) -> ApiResult<()> {
    let name = new["metadata"]["name"].as_str().unwrap_or("");
    match t.def.kind {
        "Node" => {
            if name != node {
                return Err(forbidden_obj(
                    t,
                    name,
                    format!("node \"{node}\" is not allowed to modify node \"{name}\""),
                ));
            }
            let bad = forbidden_label_changes(old, new);
            match old {
                None if !bad.is_empty() => Err(forbidden_obj(
                    t,
                    name,
                    format!(
                        "node \"{node}\" is not allowed to set the following labels: {}",
                        bad.join(", ")
                    ),
                )),
                Some(_) if !bad.is_empty() => Err(forbidden_obj(
                    t,
                    name,
                    format!("is not allowed to modify labels: {}", bad.join(", ")),
                )),
                Some(o) if o["spec"]["taints"] != new["spec"]["taints"] => Err(forbidden_obj(
                    t,
                    name,
                    format!("node \"{node}\" is not allowed to modify taints"),
                )),
                // A node names its pod CIDR only when it registers; after that the master's
                // nodeipam controller assigns it (a node setting it later could claim another
                // node's range).
                Some(o)
                    if o["spec"]["podCIDR"] != new["spec"]["podCIDR"]
                        || o["spec"]["podCIDRs"] != new["spec"]["podCIDRs"] =>
                {
                    Err(forbidden_obj(
                        t,
                        name,
                        format!("node \"{node}\" is not allowed to modify its pod CIDR"),
                    ))
                }
                _ => Ok(()),
            }
        }
        "Lease" => {
            if t.namespace.as_deref() != Some(NODE_LEASE_NAMESPACE) {
                return Err(forbidden_obj(
                    t,
                    name,
                    format!(
                        "can only access leases in the \"{NODE_LEASE_NAMESPACE}\" system namespace"
                    ),
                ));
            }
            if name != node {
                return Err(forbidden_obj(
                    t,
                    name,
                    "can only access node lease with the same name as the requesting node".into(),
                ));
            }
            Ok(())
        }
        "PersistentVolume" => {
            // Only removing the local-path cleanup finalizer of a volume being deleted.
            let Some(old) = old else {
                return Err(forbidden_obj(t, name, "node may not create volumes".into()));
            };
            let without = |o: &Value| {
                let mut o = o.clone();
                if let Some(m) = o["metadata"].as_object_mut() {
                    for k in [
                        "finalizers",
                        "resourceVersion",
                        "managedFields",
                        "generation",
                    ] {
                        m.remove(k);
                    }
                }
                o
            };
            let finalizers = |o: &Value| -> Vec<String> {
                o["metadata"]["finalizers"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| f.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mut expected = finalizers(old);
            expected.retain(|f| f != CLEANUP_FINALIZER);
            if old["metadata"]["deletionTimestamp"].is_null()
                || without(old) != without(new)
                || finalizers(new) != expected
            {
                return Err(forbidden_obj(
                    t,
                    name,
                    format!("node \"{node}\" may only remove the {CLEANUP_FINALIZER} finalizer of a volume being deleted"),
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// NodeRestriction for a TokenRequest by a node (`serviceaccounts/<sa>/token`): the token must
/// be bound to a pod (`boundObjectRef` with kind Pod, a name and a uid) that exists with that
/// uid and is scheduled on this node. (The graph authorizer already required a pod on this node
/// using the ServiceAccount.)
pub async fn admit_token_request(
    ctx: &Ctx,
    node: &str,
    t: &ResourceTarget,
    sa: &str,
    req: &Value,
) -> ApiResult<()> {
    let r = &req["spec"]["boundObjectRef"];
    let field = |k: &str| r[k].as_str().unwrap_or("");
    if !r.is_object()
        || field("apiVersion") != "v1"
        || field("kind") != "Pod"
        || field("name").is_empty()
    {
        return Err(forbidden_obj(
            t,
            sa,
            "node requested token not bound to a pod".into(),
        ));
    }
    if field("uid").is_empty() {
        return Err(forbidden_obj(
            t,
            sa,
            "node requested token with a pod binding without a uid".into(),
        ));
    }
    let (pod, _) =
        handlers::get_object(ctx, &resources::PODS, t.namespace.as_deref(), field("name")).await?;
    if pod["metadata"]["uid"].as_str() != Some(field("uid")) {
        return Err(forbidden_obj(
            t,
            sa,
            format!(
                "the UID in the bound object reference ({}) does not match the UID in record. The object might have been deleted and then recreated",
                field("uid")
            ),
        ));
    }
    if pod["spec"]["nodeName"].as_str() != Some(node) {
        return Err(forbidden_obj(
            t,
            sa,
            "node requested token bound to a pod scheduled on a different node".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(kind: &str, ns: Option<&str>) -> ResourceTarget {
        ResourceTarget {
            def: resources::by_kind(kind).unwrap(),
            namespace: ns.map(String::from),
            name: None,
            sub: None,
        }
    }

    #[test]
    fn references_cover_every_source() {
        let pod = json!({"spec": {
            "serviceAccountName": "robot",
            "imagePullSecrets": [{"name": "pull"}],
            "volumes": [
                {"name": "a", "secret": {"secretName": "vol-secret"}},
                {"name": "b", "configMap": {"name": "vol-cm"}},
                {"name": "c", "projected": {"sources": [{"secret": {"name": "proj-secret"}}, {"configMap": {"name": "proj-cm"}}]}},
                {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
            "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "init-envfrom"}}]}],
            "containers": [{"name": "c",
                "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}},
                        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}}],
                "envFrom": [{"configMapRef": {"name": "envfrom-cm"}}]}]}});
        for s in [
            "pull",
            "vol-secret",
            "proj-secret",
            "init-envfrom",
            "env-secret",
        ] {
            assert!(pod_references(&pod, "Secret", s), "{s}");
        }
        for c in ["vol-cm", "proj-cm", "env-cm", "envfrom-cm"] {
            assert!(pod_references(&pod, "ConfigMap", c), "{c}");
        }
        assert!(pod_references(&pod, "PersistentVolumeClaim", "data"));
        assert!(pod_references(&pod, "ServiceAccount", "robot"));
        assert!(!pod_references(&pod, "ServiceAccount", "default"));
        assert!(
            !pod_references(&pod, "Secret", "vol-cm"),
            "a ConfigMap name is not a Secret reference"
        );
        assert!(!pod_references(&pod, "Secret", "other"));
        assert!(pod_references(
            &json!({"spec": {}}),
            "ServiceAccount",
            "default"
        ));
    }

    #[test]
    fn field_selector_names_one_object() {
        let q = |s: &str| HashMap::from([("fieldSelector".to_string(), s.to_string())]);
        assert_eq!(selected_name(&q("metadata.name=db")), Some("db".into()));
        assert_eq!(selected_name(&q("metadata.name==db")), Some("db".into()));
        assert_eq!(selected_name(&q("metadata.name!=db")), None);
        assert_eq!(selected_name(&q("metadata.name=db,type=x")), None);
        assert_eq!(selected_name(&q("type=db")), None);
        assert_eq!(selected_name(&HashMap::new()), None);
    }

    #[test]
    fn node_labels() {
        for ok in [
            "kubernetes.io/hostname",
            "kubernetes.io/os",
            "topology.kubernetes.io/zone",
            "node.kubernetes.io/instance-type",
            "node.kubernetes.io/anything",
            "kubelet.kubernetes.io/x",
            "beta.kubernetes.io/arch",
            "failure-domain.beta.kubernetes.io/region",
            "x",
            "example.com/y",
        ] {
            assert!(node_may_modify_label(ok), "{ok}");
        }
        for bad in [
            "node-role.kubernetes.io/master",
            "node-role.kubernetes.io/worker",
            "node-restriction.kubernetes.io/a",
            "a.node-restriction.kubernetes.io/b",
            "k3s-daas.io/staked",
            "k3s-daas.io/sui-address",
            "sub.k3s-daas.io/x",
            "kubernetes.io/other",
            "k8s.io/x",
        ] {
            assert!(!node_may_modify_label(bad), "{bad}");
        }
    }

    #[test]
    fn node_restriction_on_nodes_and_leases() {
        let nodes = target("Node", None);
        let mk = |name: &str, labels: Value| json!({"metadata": {"name": name, "labels": labels}});
        // Create: own name, kubelet labels only.
        assert!(admit(
            "n1",
            &nodes,
            None,
            &mk("n1", json!({"kubernetes.io/hostname": "n1"}))
        )
        .is_ok());
        let e = admit("n1", &nodes, None, &mk("n2", json!({}))).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                403,
                "nodes \"n2\" is forbidden: node \"n1\" is not allowed to modify node \"n2\""
            )
        );
        let e = admit(
            "n1",
            &nodes,
            None,
            &mk(
                "n1",
                json!({"k3s-daas.io/staked": "true", "node-role.kubernetes.io/master": ""}),
            ),
        )
        .unwrap_err();
        assert_eq!(e.message, "nodes \"n1\" is forbidden: node \"n1\" is not allowed to set the following labels: k3s-daas.io/staked, node-role.kubernetes.io/master");
        // Update: unchanged restricted labels stay; setting, changing or removing them is refused.
        let old = mk(
            "n1",
            json!({"k3s-daas.io/staked": "true", "kubernetes.io/os": "linux"}),
        );
        assert!(admit(
            "n1",
            &nodes,
            Some(&old),
            &mk(
                "n1",
                json!({"k3s-daas.io/staked": "true", "kubernetes.io/os": "linux", "x": "y"})
            )
        )
        .is_ok());
        let e = admit(
            "n1",
            &nodes,
            Some(&old),
            &mk("n1", json!({"kubernetes.io/os": "linux"})),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "nodes \"n1\" is forbidden: is not allowed to modify labels: k3s-daas.io/staked"
        );
        let e = admit("n1", &nodes, Some(&old), &mk("n1", json!({"k3s-daas.io/staked": "false", "kubernetes.io/os": "linux", "node-role.kubernetes.io/master": ""}))).unwrap_err();
        assert_eq!(e.message, "nodes \"n1\" is forbidden: is not allowed to modify labels: k3s-daas.io/staked, node-role.kubernetes.io/master");
        // Taints are the controllers' business.
        let mut tainted = old.clone();
        tainted["spec"]["taints"] =
            json!([{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]);
        let e = admit("n1", &nodes, Some(&tainted), &old).unwrap_err();
        assert_eq!(
            e.message,
            "nodes \"n1\" is forbidden: node \"n1\" is not allowed to modify taints"
        );
        // The pod CIDR: named at registration, never set or changed by the node afterwards.
        let mut with_cidr = mk("n1", json!({}));
        with_cidr["spec"] = json!({"podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.1.0/24"]});
        assert!(admit("n1", &nodes, None, &with_cidr).is_ok());
        for (before, after) in [
            (&mk("n1", json!({})), &with_cidr),
            (&with_cidr, &mk("n1", json!({}))),
        ] {
            let e = admit("n1", &nodes, Some(before), after).unwrap_err();
            assert_eq!(
                (e.code, e.message.as_str()),
                (
                    403,
                    "nodes \"n1\" is forbidden: node \"n1\" is not allowed to modify its pod CIDR"
                )
            );
        }

        let leases = target("Lease", Some(NODE_LEASE_NAMESPACE));
        assert!(admit("n1", &leases, None, &json!({"metadata": {"name": "n1"}})).is_ok());
        let e = admit("n1", &leases, None, &json!({"metadata": {"name": "n2"}})).unwrap_err();
        assert_eq!(e.message, "leases.coordination.k8s.io \"n2\" is forbidden: can only access node lease with the same name as the requesting node");
        let e = admit(
            "n1",
            &target("Lease", Some("default")),
            None,
            &json!({"metadata": {"name": "n1"}}),
        )
        .unwrap_err();
        assert_eq!(e.code, 403);
    }
}
