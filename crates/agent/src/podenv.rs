//! A container's environment as the kubelet builds it (`makeEnvironmentVariables`): `envFrom`
//! (with prefix, optional sources, invalid names skipped), then `env` in order (`value` with
//! `$(VAR)` references, `valueFrom` ConfigMap/Secret keys, downward API fields and container
//! resources), and the service variables of the pod's namespace plus the `kubernetes` service
//! (docker-link style, `enableServiceLinks`). Values that need the sandbox (`status.podIP(s)`)
//! and the `$(VAR)` expansion itself are finished by the runtime
//! ([`resolve_container`](crate::runtime::resolve_container)).

use k8s_openapi::api::core::v1::{Container, Pod, ResourceFieldSelector, Service};
use kube::api::{Api, ListParams};

use crate::runtime::{EnvValue, EnvVarLite};
use crate::volumes::{config_map, field_ref, resource_field, secret, Allocatable};

/// The master services whose variables every pod gets (namespace `default`).
const MASTER_SERVICES: &[&str] = &["kubernetes"];

/// Upstream's (pre-1.30 default) environment variable name rule: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
pub fn is_env_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || matches!(c, '-' | '.' | '_'))
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

fn utf8(what: &str, key: &str, b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| format!("key {key} of {what} is not UTF-8 text"))
}

/// The container's variables (envFrom, then env), service variables not included.
pub async fn resolve_env(
    client: &kube::Client,
    pod: &Pod,
    ns: &str,
    c: &Container,
    host_ip: &str,
    alloc: &Allocatable,
) -> Result<Vec<EnvVarLite>, String> {
    let mut env: Vec<EnvVarLite> = Vec::new();
    let set = |env: &mut Vec<EnvVarLite>, name: String, value: EnvValue| {
        env.retain(|e| e.name != name);
        env.push(EnvVarLite { name, value });
    };
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (data, what, optional) = if let Some(r) = &from.config_map_ref {
            (
                config_map(client, ns, &r.name).await?,
                format!("configmap \"{}\"", r.name),
                r.optional.unwrap_or(false),
            )
        } else if let Some(r) = &from.secret_ref {
            (
                secret(client, ns, &r.name).await?,
                format!("secret \"{}\"", r.name),
                r.optional.unwrap_or(false),
            )
        } else {
            continue;
        };
        match data {
            Some(d) => {
                let mut invalid = Vec::new();
                for (k, v) in d {
                    let name = format!("{prefix}{k}");
                    if !is_env_var_name(&name) {
                        // Upstream skips these (with an InvalidEnvironmentVariableNames event).
                        invalid.push(name);
                        continue;
                    }
                    set(&mut env, name, EnvValue::Resolved(utf8(&what, &k, &v)?));
                }
                if !invalid.is_empty() {
                    tracing::info!(container = %c.name, source = %what, keys = ?invalid, "skipped invalid environment variable names");
                }
            }
            None if optional => {}
            None => return Err(format!("{what} not found")),
        }
    }
    for e in c.env.iter().flatten() {
        let value = match &e.value_from {
            None => EnvValue::Literal(e.value.clone().unwrap_or_default()),
            Some(from) => {
                if let Some(r) = &from.config_map_key_ref {
                    let optional = r.optional.unwrap_or(false);
                    match config_map(client, ns, &r.name).await? {
                        None if optional => continue,
                        None => return Err(format!("configmap \"{}\" not found", r.name)),
                        Some(d) => match d.get(&r.key) {
                            Some(v) => EnvValue::Resolved(utf8(&r.name, &r.key, v)?),
                            None if optional => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in ConfigMap {ns}/{}",
                                    r.key, r.name
                                ))
                            }
                        },
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    let optional = r.optional.unwrap_or(false);
                    match secret(client, ns, &r.name).await? {
                        None if optional => continue,
                        None => return Err(format!("secret \"{}\" not found", r.name)),
                        Some(d) => match d.get(&r.key) {
                            Some(v) => EnvValue::Resolved(utf8(&r.name, &r.key, v)?),
                            None if optional => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in Secret {ns}/{}",
                                    r.key, r.name
                                ))
                            }
                        },
                    }
                } else if let Some(f) = &from.field_ref {
                    field_env(pod, &f.field_path, host_ip)?
                } else if let Some(r) = &from.resource_field_ref {
                    EnvValue::Resolved(resource_env(pod, c, r, alloc)?)
                } else {
                    return Err(format!("env {}: valueFrom names no source", e.name));
                }
            }
        };
        set(&mut env, e.name.clone(), value);
    }
    Ok(env)
}

/// A downward API field as an environment variable's value.
pub fn field_env(pod: &Pod, path: &str, host_ip: &str) -> Result<EnvValue, String> {
    Ok(match path {
        "status.podIP" => EnvValue::PodIp,
        "status.podIPs" => EnvValue::PodIps,
        "status.hostIP" | "status.hostIPs" => EnvValue::Resolved(host_ip.to_string()),
        p => EnvValue::Resolved(field_ref(pod, p)?),
    })
}

/// A container resource as an environment variable's value; `containerName` defaults to the
/// container itself.
pub fn resource_env(
    pod: &Pod,
    c: &Container,
    r: &ResourceFieldSelector,
    alloc: &Allocatable,
) -> Result<String, String> {
    let mut r = r.clone();
    if r.container_name.as_deref().is_none_or(str::is_empty) {
        r.container_name = Some(c.name.clone());
    }
    resource_field(pod, &r, alloc)
}

fn env_name(s: &str) -> String {
    s.replace('-', "_").to_uppercase()
}

fn service_ip_set(s: &Service) -> bool {
    s.spec
        .as_ref()
        .and_then(|sp| sp.cluster_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty() && ip != "None")
}

/// Upstream `envvars.FromServices`: per service `<NAME>_SERVICE_HOST`, `_SERVICE_PORT`,
/// `_SERVICE_PORT_<PORT NAME>` and the docker-link `<NAME>_PORT...` variables.
pub fn service_env_vars(services: &[Service]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in services {
        if !service_ip_set(s) {
            continue;
        }
        let Some(spec) = s.spec.as_ref() else {
            continue;
        };
        let ports = spec.ports.as_deref().unwrap_or_default();
        let (Some(ip), Some(first)) = (spec.cluster_ip.as_deref(), ports.first()) else {
            continue;
        };
        let prefix = env_name(s.metadata.name.as_deref().unwrap_or_default());
        out.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
        out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        for p in ports {
            if let Some(n) = p.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((
                    format!("{prefix}_SERVICE_PORT_{}", env_name(n)),
                    p.port.to_string(),
                ));
            }
        }
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        for (i, p) in ports.iter().enumerate() {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            let lower = proto.to_lowercase();
            let url = format!("{lower}://{host}:{}", p.port);
            if i == 0 {
                out.push((format!("{prefix}_PORT"), url.clone()));
            }
            let pp = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
            out.push((format!("{pp}_PROTO"), lower));
            out.push((format!("{pp}_PORT"), p.port.to_string()));
            out.push((format!("{pp}_ADDR"), ip.to_string()));
            out.push((pp, url));
        }
    }
    out
}

/// Which services a pod in `ns` sees (upstream `getServiceEnvVarMap`): those of its namespace
/// when `enableServiceLinks`, and always the master services of `default` (unless its own
/// namespace has a service of the same name). Sorted by name.
pub fn services_for_pod(all: Vec<Service>, ns: &str, enable_links: bool) -> Vec<Service> {
    let mut by_name: std::collections::BTreeMap<String, Service> = Default::default();
    for s in all {
        if !service_ip_set(&s) {
            continue;
        }
        let name = s.metadata.name.clone().unwrap_or_default();
        let sns = s.metadata.namespace.as_deref().unwrap_or_default();
        if sns == "default" && MASTER_SERVICES.contains(&name.as_str()) {
            by_name.entry(name).or_insert(s);
        } else if sns == ns && enable_links {
            by_name.insert(name, s);
        }
    }
    by_name.into_values().collect()
}

/// The service variables of `pod`.
pub async fn service_env(
    client: &kube::Client,
    pod: &Pod,
) -> Result<Vec<(String, String)>, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let enable = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let list = |n: &str| {
        let api: Api<Service> = Api::namespaced(client.clone(), n);
        let read = async move {
            api.list(&ListParams::default())
                .await
                .map(|l| l.items)
                .map_err(|e| format!("listing services: {e}"))
        };
        let key = ("services", n.to_string(), String::new());
        async move {
            match crate::apireads::shared() {
                Some((reads, fresh_after)) => reads.services.run(key, fresh_after, read).await,
                None => read.await,
            }
        }
    };
    // The two lists concurrently (pod start waits for both).
    let mut all;
    if ns != "default" && enable {
        let (d, own) = tokio::join!(list("default"), list(ns));
        all = d?;
        all.extend(own?);
    } else {
        all = list("default").await?;
    }
    Ok(service_env_vars(&services_for_pod(all, ns, enable)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ns: &str, name: &str, ip: &str, ports: serde_json::Value) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "ports": ports}
        }))
        .unwrap()
    }

    #[test]
    fn env_var_names() {
        for ok in ["A", "a_b", "_x", "-x", ".x", "A1.b-c"] {
            assert!(is_env_var_name(ok), "{ok}");
        }
        for bad in ["", "1A", "a b", "a=b", "é"] {
            assert!(!is_env_var_name(bad), "{bad}");
        }
    }

    #[test]
    fn docker_link_variables() {
        let s = svc(
            "ns",
            "fooservice",
            "10.43.0.10",
            serde_json::json!([{"name": "http-web", "port": 8765, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]),
        );
        let env = service_env_vars(&[s]);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("FOOSERVICE_SERVICE_HOST"), Some("10.43.0.10"));
        assert_eq!(get("FOOSERVICE_SERVICE_PORT"), Some("8765"));
        assert_eq!(get("FOOSERVICE_SERVICE_PORT_HTTP_WEB"), Some("8765"));
        assert_eq!(get("FOOSERVICE_PORT"), Some("tcp://10.43.0.10:8765"));
        assert_eq!(
            get("FOOSERVICE_PORT_8765_TCP"),
            Some("tcp://10.43.0.10:8765")
        );
        assert_eq!(get("FOOSERVICE_PORT_8765_TCP_PROTO"), Some("tcp"));
        assert_eq!(get("FOOSERVICE_PORT_8765_TCP_PORT"), Some("8765"));
        assert_eq!(get("FOOSERVICE_PORT_8765_TCP_ADDR"), Some("10.43.0.10"));
        assert_eq!(get("FOOSERVICE_PORT_53_UDP"), Some("udp://10.43.0.10:53"));
        assert_eq!(env.len(), 12);
        let v6 = svc("ns", "my-svc", "fd00::1", serde_json::json!([{"port": 80}]));
        let env = service_env_vars(&[v6]);
        assert!(env.contains(&("MY_SVC_PORT".into(), "tcp://[fd00::1]:80".into())));
        // Headless services and services without an IP give nothing.
        let headless = svc("ns", "h", "None", serde_json::json!([{"port": 80}]));
        assert!(service_env_vars(&[headless]).is_empty());
    }

    #[test]
    fn which_services_a_pod_sees() {
        let all = || {
            vec![
                svc(
                    "default",
                    "kubernetes",
                    "10.43.0.1",
                    serde_json::json!([{"name": "https", "port": 443}]),
                ),
                svc(
                    "default",
                    "other",
                    "10.43.0.2",
                    serde_json::json!([{"port": 80}]),
                ),
                svc("ns", "mine", "10.43.0.3", serde_json::json!([{"port": 80}])),
                svc("ns", "headless", "None", serde_json::json!([{"port": 80}])),
                svc(
                    "elsewhere",
                    "theirs",
                    "10.43.0.4",
                    serde_json::json!([{"port": 80}]),
                ),
            ]
        };
        let names = |v: Vec<Service>| -> Vec<String> {
            v.into_iter().map(|s| s.metadata.name.unwrap()).collect()
        };
        assert_eq!(
            names(services_for_pod(all(), "ns", true)),
            ["kubernetes", "mine"]
        );
        // enableServiceLinks: false still gets the master service.
        assert_eq!(names(services_for_pod(all(), "ns", false)), ["kubernetes"]);
        assert_eq!(
            names(services_for_pod(all(), "default", true)),
            ["kubernetes", "other"]
        );
    }

    #[test]
    fn downward_env_fields() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"a": "b"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa", "containers": [
                {"name": "c", "image": "i", "resources": {"requests": {"memory": "32Mi"}, "limits": {"cpu": "500m"}}}]}
        }))
        .unwrap();
        let r = |p: &str| field_env(&pod, p, "192.0.2.1").unwrap();
        assert_eq!(r("status.podIP"), EnvValue::PodIp);
        assert_eq!(r("status.podIPs"), EnvValue::PodIps);
        assert_eq!(r("status.hostIP"), EnvValue::Resolved("192.0.2.1".into()));
        assert_eq!(r("status.hostIPs"), EnvValue::Resolved("192.0.2.1".into()));
        assert_eq!(r("spec.nodeName"), EnvValue::Resolved("n1".into()));
        assert_eq!(
            r("spec.serviceAccountName"),
            EnvValue::Resolved("sa".into())
        );
        assert_eq!(r("metadata.uid"), EnvValue::Resolved("u".into()));
        assert_eq!(r("metadata.labels['a']"), EnvValue::Resolved("b".into()));
        assert!(field_env(&pod, "spec.nope", "x").is_err());
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let alloc = Allocatable {
            cpu_millis: 2000,
            memory_bytes: 1 << 30,
        };
        let sel =
            |v: serde_json::Value| -> ResourceFieldSelector { serde_json::from_value(v).unwrap() };
        // No containerName: this container.
        assert_eq!(
            resource_env(
                &pod,
                c,
                &sel(serde_json::json!({"resource": "limits.cpu", "divisor": "1m"})),
                &alloc
            )
            .unwrap(),
            "500"
        );
        assert_eq!(
            resource_env(
                &pod,
                c,
                &sel(serde_json::json!({"resource": "requests.memory", "divisor": "1Mi"})),
                &alloc
            )
            .unwrap(),
            "32"
        );
        // No memory limit: node allocatable.
        assert_eq!(
            resource_env(
                &pod,
                c,
                &sel(serde_json::json!({"resource": "limits.memory"})),
                &alloc
            )
            .unwrap(),
            (1u64 << 30).to_string()
        );
    }
}
