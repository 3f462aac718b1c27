//! The ServiceAccount admission plugin (upstream `plugin/pkg/admission/serviceaccount`), run on
//! pod create:
//! - `spec.serviceAccountName` defaults to `default`, and the ServiceAccount must exist (403
//!   "error looking up service account ..." otherwise; the `default` account is made by the
//!   serviceaccount controller, and until it is there pods are refused, as upstream does);
//! - unless `automountServiceAccountToken` is false on the pod (or on the ServiceAccount with
//!   the pod not saying), a projected volume `kube-api-access-<5 chars>` (a bound token, the
//!   namespace's `kube-root-ca.crt` CA and the namespace) is mounted read-only at
//!   [`TOKEN_MOUNT_PATH`] in every container and init container not already mounting that path;
//! - the pod's `imagePullSecrets` default to the ServiceAccount's;
//! - mirror pods (annotation [`MIRROR_POD_ANNOTATION`]) are left as they are but may not
//!   reference a ServiceAccount, Secrets or service-account token projections.

use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::{self, Ctx};
use crate::request::ResourceTarget;
use crate::resources;

/// The ServiceAccount a pod runs as when it names none.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// Where the API credentials are mounted in each container.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Prefix of the generated token volume's name.
pub const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";
/// Lifetime of the automounted token (upstream's `WarnOnlyBoundTokenExpirationSeconds`).
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
/// Marks a pod the kubelet mirrors from a static manifest.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

const CONTAINER_LISTS: [&str; 2] = ["initContainers", "containers"];

/// The projected volume source of the automounted credentials.
pub fn token_volume_source() -> Value {
    json!({
        "defaultMode": 0o644,
        "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
    })
}

/// Does the pod get a token mounted? The pod's choice wins, then the ServiceAccount's; default yes.
pub fn should_automount(sa: &Value, pod: &Value) -> bool {
    pod["spec"]["automountServiceAccountToken"]
        .as_bool()
        .or_else(|| sa["automountServiceAccountToken"].as_bool())
        .unwrap_or(true)
}

/// Add the token volume (named `kube-api-access-<suffix>` unless the pod already has one with
/// that prefix) and its mount to every container lacking a mount at [`TOKEN_MOUNT_PATH`].
pub fn mount_token(pod: &mut Value, suffix: &str) {
    let spec = &mut pod["spec"];
    let existing = spec["volumes"].as_array().and_then(|vs| {
        vs.iter()
            .filter_map(|v| v["name"].as_str())
            .find(|n| n.starts_with(TOKEN_VOLUME_PREFIX))
            .map(String::from)
    });
    let name = existing
        .clone()
        .unwrap_or_else(|| format!("{TOKEN_VOLUME_PREFIX}{suffix}"));
    let mount = json!({"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needs_volume = false;
    for list in CONTAINER_LISTS {
        let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in cs.iter_mut() {
            let has = c["volumeMounts"]
                .as_array()
                .is_some_and(|ms| ms.iter().any(|m| m["mountPath"] == TOKEN_MOUNT_PATH));
            if has {
                continue;
            }
            needs_volume = true;
            match c["volumeMounts"].as_array_mut() {
                Some(ms) => ms.push(mount.clone()),
                None => c["volumeMounts"] = json!([mount.clone()]),
            }
        }
    }
    if existing.is_none() && needs_volume {
        let vol = json!({"name": name, "projected": token_volume_source()});
        match spec["volumes"].as_array_mut() {
            Some(vs) => vs.push(vol),
            None => spec["volumes"] = json!([vol]),
        }
    }
}

fn forbidden(t: &ResourceTarget, pod: &Value, why: &str) -> ApiError {
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    crate::admission::forbidden(t, name, why)
}

/// Does the pod use any Secret (pull secrets, secret volumes and projections, volume
/// `secretRef`s, env)? Upstream `VisitPodSecretNames`.
fn references_secrets(pod: &Value) -> bool {
    let spec = &pod["spec"];
    let non_empty = |v: &Value| v.as_array().is_some_and(|a| !a.is_empty());
    let volumes = spec["volumes"].as_array().into_iter().flatten().any(|v| {
        v["secret"].is_object()
            || v["projected"]["sources"]
                .as_array()
                .is_some_and(|ss| ss.iter().any(|s| s["secret"].is_object()))
            || v.as_object().is_some_and(|o| {
                o.values().any(|src| {
                    src["secretRef"].is_object() || src["nodePublishSecretRef"].is_object()
                })
            })
    });
    let env = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|l| spec[*l].as_array().into_iter().flatten())
        .any(|c| {
            c["env"].as_array().is_some_and(|es| {
                es.iter()
                    .any(|e| e["valueFrom"]["secretKeyRef"].is_object())
            }) || c["envFrom"]
                .as_array()
                .is_some_and(|es| es.iter().any(|e| e["secretRef"].is_object()))
        });
    non_empty(&spec["imagePullSecrets"]) || volumes || env
}

/// Mirror pods: nothing is changed, and no ServiceAccount, Secret or token projection is allowed.
fn validate_mirror(t: &ResourceTarget, pod: &Value) -> ApiResult<()> {
    if pod["spec"]["serviceAccountName"]
        .as_str()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(forbidden(
            t,
            pod,
            "a mirror pod may not reference service accounts",
        ));
    }
    if references_secrets(pod) {
        return Err(forbidden(t, pod, "a mirror pod may not reference secrets"));
    }
    let projects_token = pod["spec"]["volumes"].as_array().is_some_and(|vs| {
        vs.iter().any(|v| {
            v["projected"]["sources"]
                .as_array()
                .is_some_and(|ss| ss.iter().any(|s| s["serviceAccountToken"].is_object()))
        })
    });
    if projects_token {
        return Err(forbidden(
            t,
            pod,
            "a mirror pod may not use ServiceAccountToken volume projections",
        ));
    }
    Ok(())
}

/// The ServiceAccount `ns/name`. The `default` one is made by the serviceaccount controller right
/// after its namespace, so it is waited for a little (10 tries, 100-200ms apart), as upstream does.
async fn service_account(ctx: &Ctx, ns: &str, name: &str) -> ApiResult<Value> {
    let attempts = if name == DEFAULT_SERVICE_ACCOUNT {
        10
    } else {
        1
    };
    let pause = {
        use rand::Rng;
        std::time::Duration::from_millis(rand::thread_rng().gen_range(100..200))
    };
    let mut last = None;
    for i in 0..attempts {
        if i > 0 {
            tokio::time::sleep(pause).await;
        }
        match handlers::read_object(ctx, &resources::SERVICE_ACCOUNTS, Some(ns), name).await {
            Ok(sa) => return Ok(sa),
            Err(e) if e.code == 404 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(ApiError::not_found_path))
}

/// The plugin's mutation and validation of a pod being created in `ns`.
#[tracing::instrument(skip_all, fields(ns = %ns))]
pub async fn admit_pod(ctx: &Ctx, t: &ResourceTarget, ns: &str, pod: &mut Value) -> ApiResult<()> {
    if pod["metadata"]["annotations"][MIRROR_POD_ANNOTATION].is_string() {
        return validate_mirror(t, pod);
    }
    let sa_name = match pod["spec"]["serviceAccountName"].as_str() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => {
            pod["spec"]["serviceAccountName"] = json!(DEFAULT_SERVICE_ACCOUNT);
            DEFAULT_SERVICE_ACCOUNT.to_string()
        }
    };
    let sa = match service_account(ctx, ns, &sa_name).await {
        Ok(sa) => sa,
        Err(e) if e.code == 404 => {
            return Err(forbidden(
                t,
                pod,
                &format!(
                    "error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found"
                ),
            ))
        }
        Err(e) => return Err(e),
    };
    if should_automount(&sa, pod) {
        mount_token(pod, &handlers::random_suffix(5));
    }
    let no_pull_secrets = pod["spec"]["imagePullSecrets"]
        .as_array()
        .is_none_or(|a| a.is_empty());
    if no_pull_secrets {
        if let Some(ps) = sa["imagePullSecrets"].as_array().filter(|a| !a.is_empty()) {
            let refs: Vec<Value> = ps.iter().map(|p| json!({"name": p["name"]})).collect();
            pod["spec"]["imagePullSecrets"] = Value::Array(refs);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": spec})
    }

    #[test]
    fn automount_preference() {
        let sa_off = json!({"automountServiceAccountToken": false});
        let sa_on = json!({"automountServiceAccountToken": true});
        assert!(should_automount(&json!({}), &pod(json!({}))));
        assert!(!should_automount(&sa_off, &pod(json!({}))));
        assert!(should_automount(
            &sa_off,
            &pod(json!({"automountServiceAccountToken": true}))
        ));
        assert!(!should_automount(
            &sa_on,
            &pod(json!({"automountServiceAccountToken": false}))
        ));
    }

    #[test]
    fn mounts_once_per_container() {
        let mut p = pod(json!({
            "initContainers": [{"name": "i"}],
            "containers": [
                {"name": "a"},
                {"name": "b", "volumeMounts": [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]},
            ],
            "volumes": [{"name": "mine", "emptyDir": {}}],
        }));
        mount_token(&mut p, "abcde");
        let vols = p["spec"]["volumes"].as_array().unwrap();
        assert_eq!(vols.len(), 2);
        assert_eq!(vols[1]["name"], "kube-api-access-abcde");
        assert_eq!(vols[1]["projected"], token_volume_source());
        assert_eq!(
            p["spec"]["initContainers"][0]["volumeMounts"],
            json!([{"name": "kube-api-access-abcde", "readOnly": true, "mountPath": TOKEN_MOUNT_PATH}])
        );
        assert_eq!(
            p["spec"]["containers"][0]["volumeMounts"][0]["name"],
            "kube-api-access-abcde"
        );
        assert_eq!(
            p["spec"]["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // Again (an existing kube-api-access volume is reused): nothing changes.
        let before = p.clone();
        mount_token(&mut p, "zzzzz");
        assert_eq!(p, before);
        // Every container mounting the path already: no volume at all.
        let mut q = pod(json!({"containers": [
            {"name": "a", "volumeMounts": [{"name": "x", "mountPath": TOKEN_MOUNT_PATH}]}]}));
        mount_token(&mut q, "abcde");
        assert!(q["spec"]["volumes"].is_null());
    }
}
