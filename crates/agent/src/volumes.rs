//! What the kubelet does before a pod starts: resolve `env[].valueFrom` / `envFrom` and prepare
//! volumes (emptyDir, hostPath, configMap, secret, downwardAPI, projected with secret, configMap,
//! downwardAPI and serviceAccountToken sources) as host directories bind-mounted into the
//! containers. configMap, secret, downwardAPI and projected volumes are written like the
//! kubelet's atomic writer (a timestamped directory behind a `..data` symlink swapped in one
//! rename) and synced again while the pod runs ([`refresh`]); a projected token is requested as
//! the node (a TokenRequest bound to the pod) and renewed after 80% of its lifetime or 24h. Anything not supported is refused with a clear message (the pod then shows
//! CreateContainerConfigError), never silently dropped. hostPath, configMap and secret volumes are
//! always mounted read-only; hostPaths over the agent's own files are refused (again, after
//! creating `DirectoryOrCreate` paths and resolving `subPath`s, so a symlink cannot sneak one in).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use daas_protocol::localpath::{local_path_node, CLEANUP_FINALIZER, LOCAL_PATH_PREFIX};
use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Node, NodeSelectorRequirement, PersistentVolume,
    PersistentVolumeClaim, Pod, ResourceFieldSelector, Secret, ServiceAccountTokenProjection,
    Volume,
};
use kube::Api;

use crate::runtime::pullsecrets::PullKeyring;
use crate::runtime::{parse_cpu_millis, parse_memory_bytes, EtcHosts, MountLite, PodSpecLite};
use crate::security::NodeAdmission;

pub(crate) async fn config_map(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let read = read_config_map(client.clone(), ns.to_string(), name.to_string());
    match crate::apireads::shared() {
        Some((reads, fresh_after)) => {
            let key = ("configmap", ns.to_string(), name.to_string());
            reads.objects.run(key, fresh_after, read).await
        }
        None => read.await,
    }
}

async fn read_config_map(
    client: kube::Client,
    ns: String,
    name: String,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
    let cm = api
        .get_opt(&name)
        .await
        .map_err(|e| format!("reading configmap {name}: {e}"))?;
    Ok(cm.map(|cm| {
        let mut out: BTreeMap<String, Vec<u8>> = cm
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect();
        for (k, v) in cm.binary_data.unwrap_or_default() {
            out.insert(k, v.0);
        }
        out
    }))
}

pub(crate) async fn secret(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let read = read_secret(client.clone(), ns.to_string(), name.to_string());
    match crate::apireads::shared() {
        Some((reads, fresh_after)) => {
            let key = ("secret", ns.to_string(), name.to_string());
            reads.objects.run(key, fresh_after, read).await
        }
        None => read.await,
    }
}

async fn read_secret(
    client: kube::Client,
    ns: String,
    name: String,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let api: Api<Secret> = Api::namespaced(client, &ns);
    let s = api
        .get_opt(&name)
        .await
        .map_err(|e| format!("reading secret {name}: {e}"))?;
    Ok(s.map(|s| {
        let mut out: BTreeMap<String, Vec<u8>> = s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        for (k, v) in s.string_data.unwrap_or_default() {
            out.insert(k, v.into_bytes());
        }
        out
    }))
}

/// The registry credentials of the pod's `imagePullSecrets`. As the kubelet, a missing or
/// unreadable secret is not fatal (logged; the pull goes on without it); a malformed one is
/// skipped with the reason (never its content).
async fn pull_keyring(
    client: &kube::Client,
    ns: &str,
    pspec: &k8s_openapi::api::core::v1::PodSpec,
) -> PullKeyring {
    let mut keyring = PullKeyring::default();
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    for name in pspec
        .image_pull_secrets
        .iter()
        .flatten()
        .map(|r| r.name.as_str())
        .filter(|n| !n.is_empty())
    {
        let s = match api.get_opt(name).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                tracing::warn!(
                    namespace = ns,
                    secret = name,
                    "imagePullSecret not found; pulling without it"
                );
                continue;
            }
            Err(e) => {
                tracing::warn!(namespace = ns, secret = name, error = %e, "reading imagePullSecret failed; pulling without it");
                continue;
            }
        };
        let mut data: BTreeMap<String, Vec<u8>> = s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        for (k, v) in s.string_data.unwrap_or_default() {
            data.insert(k, v.into_bytes());
        }
        let secret_type = s.type_.unwrap_or_default();
        match keyring.add_secret(&secret_type, &data) {
            Ok(0) => tracing::warn!(
                namespace = ns,
                secret = name,
                secret_type,
                "imagePullSecret holds no registry credentials; ignored"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(namespace = ns, secret = name, error = %e, "imagePullSecret skipped")
            }
        }
    }
    keyring
}

pub(crate) fn field_ref(pod: &Pod, path: &str) -> Result<String, String> {
    let md = &pod.metadata;
    let label = |prefix: &str, map: &Option<BTreeMap<String, String>>| {
        path.strip_prefix(prefix)
            .and_then(|k| k.strip_suffix("']"))
            .map(|k| {
                map.as_ref()
                    .and_then(|m| m.get(k).cloned())
                    .unwrap_or_default()
            })
    };
    if let Some(v) = label("metadata.labels['", &md.labels) {
        return Ok(v);
    }
    if let Some(v) = label("metadata.annotations['", &md.annotations) {
        return Ok(v);
    }
    Ok(match path {
        "metadata.name" => md.name.clone().unwrap_or_default(),
        "metadata.namespace" => md.namespace.clone().unwrap_or_default(),
        "metadata.uid" => md.uid.clone().unwrap_or_default(),
        "spec.nodeName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => pod
            .status
            .as_ref()
            .and_then(|s| s.host_ip.clone())
            .unwrap_or_default(),
        "status.podIP" => pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default(),
        other => return Err(format!("fieldRef {other} is not supported")),
    })
}

/// One file of a volume's content: bytes and permission bits.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileProjection {
    data: Vec<u8>,
    mode: u32,
}

/// A volume's whole content, by relative path.
type Payload = BTreeMap<String, FileProjection>;

/// Who owns the files of a volume, as upstream's `fsGroup` (and, for a projected token, the
/// pod's common `runAsUser`) sets it.
#[derive(Debug, Clone, Copy, Default)]
struct Ownership {
    user: Option<u32>,
    group: Option<u32>,
}

fn check_rel_path(rel: &str) -> Result<(), String> {
    if rel.is_empty()
        || rel.starts_with('/')
        || rel.starts_with("..")
        || rel.split('/').any(|p| p == ".." || p.is_empty())
    {
        return Err(format!("invalid item path {rel:?}"));
    }
    Ok(())
}

fn mode_of(m: Option<i32>, default: u32) -> u32 {
    m.map(|m| (m as u32) & 0o777).unwrap_or(default)
}

/// ConfigMap / Secret keys as files: all keys, or only `items` (a missing key is an error
/// unless the source is optional).
fn project_keys(
    what: &str,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: u32,
    optional: bool,
    payload: &mut Payload,
) -> Result<(), String> {
    match items {
        Some(items) => {
            for i in items {
                check_rel_path(&i.path)?;
                match data.get(&i.key) {
                    Some(b) => {
                        payload.insert(
                            i.path.clone(),
                            FileProjection {
                                data: b.clone(),
                                mode: mode_of(i.mode, default_mode),
                            },
                        );
                    }
                    None if optional => {}
                    None => return Err(format!("{what} references non-existent key: {}", i.key)),
                }
            }
        }
        None => {
            for (k, b) in data {
                check_rel_path(k)?;
                payload.insert(
                    k.clone(),
                    FileProjection {
                        data: b.clone(),
                        mode: default_mode,
                    },
                );
            }
        }
    }
    Ok(())
}

/// Go's `%q` of a string, as upstream's `fieldpath.FormatMap` quotes values.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `key="value"` lines, sorted by key, without a trailing newline (upstream `FormatMap`).
fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    m.map(|m| {
        m.iter()
            .map(|(k, v)| format!("{k}={}", go_quote(v)))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .unwrap_or_default()
}

/// The node's allocatable CPU (millicores) and memory (bytes): the default of an unset limit.
#[derive(Debug, Clone, Copy)]
pub struct Allocatable {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

impl Allocatable {
    /// What this machine offers (as the agent reports it in the Node's `status.allocatable`).
    pub fn of_host() -> Allocatable {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as u64;
        Allocatable {
            cpu_millis: cpus * 1000,
            memory_bytes: crate::agent::mem_total_bytes(),
        }
    }
}

/// The value of a `resourceFieldRef` (upstream `ExtractContainerResourceValue` with limits
/// defaulting to node allocatable), rounded up to whole `divisor`s.
pub(crate) fn resource_field(
    pod: &Pod,
    r: &ResourceFieldSelector,
    alloc: &Allocatable,
) -> Result<String, String> {
    let spec = pod.spec.as_ref().ok_or("pod has no spec")?;
    let cname = r.container_name.as_deref().unwrap_or_default();
    let c = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == cname)
        .ok_or_else(|| format!("container {cname:?} not found for resourceFieldRef"))?;
    let res = c.resources.as_ref();
    let get = |which: &str, key: &str| -> Option<String> {
        let m = if which == "limits" {
            res.and_then(|r| r.limits.as_ref())
        } else {
            res.and_then(|r| r.requests.as_ref())
        };
        m.and_then(|m| m.get(key)).map(|q| q.0.clone())
    };
    let divisor = r.divisor.as_ref().map(|q| q.0.as_str()).unwrap_or("1");
    let (which, key) = r
        .resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource: {}", r.resource))?;
    if !matches!(which, "limits" | "requests") {
        return Err(format!("unsupported container resource: {}", r.resource));
    }
    let bad = |q: &str| format!("resourceFieldRef {}: invalid quantity {q:?}", r.resource);
    let ceil_div = |a: u64, b: u64| -> Result<String, String> {
        if b == 0 {
            return Err(format!(
                "resourceFieldRef {}: divisor must be positive",
                r.resource
            ));
        }
        Ok(a.div_ceil(b).to_string())
    };
    match key {
        "cpu" => {
            let v = match get(which, "cpu") {
                Some(q) => parse_cpu_millis(&q).ok_or_else(|| bad(&q))?,
                None if which == "limits" => alloc.cpu_millis,
                None => 0,
            };
            ceil_div(v, parse_cpu_millis(divisor).ok_or_else(|| bad(divisor))?)
        }
        "memory" => {
            let v = match get(which, "memory") {
                Some(q) => parse_memory_bytes(&q).ok_or_else(|| bad(&q))?,
                None if which == "limits" => alloc.memory_bytes,
                None => 0,
            };
            ceil_div(v, parse_memory_bytes(divisor).ok_or_else(|| bad(divisor))?)
        }
        _ => Err(format!("unsupported container resource: {}", r.resource)),
    }
}

/// The files of a downwardAPI volume (or projected source).
fn project_downward(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: u32,
    alloc: &Allocatable,
    payload: &mut Payload,
) -> Result<(), String> {
    for i in items {
        check_rel_path(&i.path)?;
        let value = match (&i.field_ref, &i.resource_field_ref) {
            (Some(f), None) => match f.field_path.as_str() {
                "metadata.labels" => format_map(pod.metadata.labels.as_ref()),
                "metadata.annotations" => format_map(pod.metadata.annotations.as_ref()),
                p if p.starts_with("metadata.") => field_ref(pod, p)?,
                p => return Err(format!("downwardAPI volume: fieldRef {p} is not supported")),
            },
            (None, Some(r)) => resource_field(pod, r, alloc)?,
            _ => {
                return Err(format!(
                    "downwardAPI item {}: exactly one of fieldRef and resourceFieldRef is required",
                    i.path
                ))
            }
        };
        payload.insert(
            i.path.clone(),
            FileProjection {
                data: value.into_bytes(),
                mode: mode_of(i.mode, default_mode),
            },
        );
    }
    Ok(())
}

/// The `runAsUser` every container of the pod runs with, if they agree (upstream `FsUserFrom`).
fn common_run_as_user(pod: &Pod) -> Option<u32> {
    let spec = pod.spec.as_ref()?;
    let pod_user = spec.security_context.as_ref().and_then(|s| s.run_as_user);
    let mut users = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| {
            c.security_context
                .as_ref()
                .and_then(|s| s.run_as_user)
                .or(pod_user)
        });
    let first = users.next()??;
    users
        .all(|u| u == Some(first))
        .then_some(first)
        .and_then(|u| u32::try_from(u).ok())
}

/// The sum of the containers' memory limits, if every container has one (the default size of a
/// memory-backed emptyDir).
fn pod_memory_limit(pod: &Pod) -> Option<u64> {
    let spec = pod.spec.as_ref()?;
    spec.containers.iter().try_fold(0u64, |sum, c| {
        let q = c.resources.as_ref()?.limits.as_ref()?.get("memory")?;
        Some(sum.saturating_add(parse_memory_bytes(&q.0)?))
    })
}

fn chown_group(p: &Path, gid: u32) -> Result<(), String> {
    std::os::unix::fs::chown(p, None, Some(gid)).map_err(|e| format!("{}: {e}", p.display()))
}

fn fs_group(pod: &Pod) -> Option<u32> {
    pod.spec
        .as_ref()?
        .security_context
        .as_ref()?
        .fs_group
        .and_then(|g| u32::try_from(g).ok())
}

/// When a token issued at `iat` expiring at `exp` is due for renewal: after 80% of its lifetime
/// or 24h, whichever comes first (upstream's kubelet token manager).
pub fn token_refresh_at(iat: i64, exp: i64) -> i64 {
    let ttl = (exp - iat).max(0);
    iat + (ttl * 8 / 10).min(24 * 3600)
}

/// `iat` and `exp` of a JWT (unverified: the agent only decides whether to renew its own token).
fn jwt_times(token: &[u8]) -> Option<(i64, i64)> {
    use base64::Engine;
    let s = std::str::from_utf8(token).ok()?;
    let payload = s.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some((v["iat"].as_i64()?, v["exp"].as_i64()?))
}

/// A token for the pod's ServiceAccount bound to the pod, requested as this node; `current` (the
/// token in the volume now) is kept while it is not yet due for renewal.
async fn service_account_token(
    client: &kube::Client,
    pod: &Pod,
    src: &ServiceAccountTokenProjection,
    current: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    let now = chrono::Utc::now().timestamp();
    if let Some(cur) = current {
        if let Some((iat, exp)) = jwt_times(cur) {
            if now < token_refresh_at(iat, exp) && now < exp {
                return Ok(cur.to_vec());
            }
        }
    }
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let sa = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.as_deref())
        .filter(|s| !s.is_empty())
        .unwrap_or("default");
    let mut spec = serde_json::json!({
        "expirationSeconds": src.expiration_seconds.unwrap_or(3600),
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid},
    });
    if let Some(aud) = src.audience.as_deref().filter(|a| !a.is_empty()) {
        spec["audiences"] = serde_json::json!([aud]);
    }
    let body = serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec,
    });
    let req = http::Request::builder()
        .method("POST")
        .uri(format!(
            "/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token"
        ))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let out: serde_json::Value = client
        .request(req)
        .await
        .map_err(|e| format!("requesting a token for serviceaccount {ns}/{sa}: {e}"))?;
    out["status"]["token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(|t| t.as_bytes().to_vec())
        .ok_or_else(|| format!("the TokenRequest for serviceaccount {ns}/{sa} returned no token"))
}

fn io_err(p: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", p.display())
}

/// The files under `dir` (recursively), by relative path.
fn read_tree(dir: &Path) -> Option<Payload> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Payload::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()? {
            let e = e.ok()?;
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let md = std::fs::symlink_metadata(e.path()).ok()?;
            if md.is_dir() {
                stack.push((e.path(), rel));
            } else {
                let data = std::fs::read(e.path()).ok()?;
                out.insert(
                    rel,
                    FileProjection {
                        data,
                        mode: md.permissions().mode() & 0o777,
                    },
                );
            }
        }
    }
    Some(out)
}

/// The payload as it lands on disk: with an fsGroup, files are group-readable (upstream
/// `SetVolumeOwnership` for read-only volumes).
fn effective(payload: &Payload, own: Ownership) -> Payload {
    payload
        .iter()
        .map(|(k, f)| {
            let mode = if own.group.is_some() {
                f.mode | 0o440
            } else {
                f.mode
            };
            (
                k.clone(),
                FileProjection {
                    data: f.data.clone(),
                    mode,
                },
            )
        })
        .collect()
}

/// Write `payload` into `dir` as upstream's atomic writer does: the files go into a new
/// timestamped directory `..<time>`, the `..data` symlink is swapped to it in one rename, and
/// each top-level name is a symlink through `..data`; so a container sees either the old or the
/// new content, never a mix. Returns whether anything changed.
fn write_atomic(dir: &Path, payload: &Payload, own: Ownership) -> Result<bool, String> {
    use std::os::unix::fs::PermissionsExt;
    for rel in payload.keys() {
        check_rel_path(rel)?;
    }
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let want = effective(payload, own);
    let data_link = dir.join("..data");
    let old = std::fs::read_link(&data_link).ok();
    let unchanged = old
        .as_ref()
        .and_then(|o| read_tree(&dir.join(o)))
        .map(|have| have == want)
        .unwrap_or(false);
    let top: std::collections::BTreeSet<String> = payload
        .keys()
        .map(|k| k.split('/').next().unwrap_or(k).to_string())
        .collect();
    if !unchanged {
        let now = chrono::Utc::now();
        let ts_name = format!("..{}", now.format("%Y_%m_%d_%H_%M_%S.%9f"));
        let ts = dir.join(&ts_name);
        std::fs::create_dir(&ts).map_err(|e| io_err(&ts, e))?;
        let chown = |p: &Path, user: Option<u32>| -> Result<(), String> {
            if user.is_some() || own.group.is_some() {
                std::os::unix::fs::chown(p, user, own.group).map_err(|e| io_err(p, e))?;
            }
            Ok(())
        };
        let dir_mode = if own.group.is_some() { 0o2755 } else { 0o755 };
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m))
                .map_err(|e| io_err(p, e))
        };
        set(&ts, dir_mode)?;
        chown(&ts, None)?;
        for (rel, f) in &want {
            let path = ts.join(rel);
            if let Some(parent) = path.parent().filter(|p| !p.exists()) {
                std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
                let mut p = parent;
                while p != ts {
                    set(p, dir_mode)?;
                    chown(p, None)?;
                    p = p.parent().unwrap_or(&ts);
                }
            }
            std::fs::write(&path, &f.data).map_err(|e| io_err(&path, e))?;
            set(&path, f.mode)?;
            chown(&path, own.user)?;
        }
        let tmp = dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&ts_name, &tmp).map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, &data_link).map_err(|e| io_err(&data_link, e))?;
        if let Some(o) = &old {
            let o = dir.join(o);
            if o.parent() == Some(dir) {
                let _ = std::fs::remove_dir_all(o);
            }
        }
    }
    // User-visible names: symlinks through `..data`; names no longer in the payload go.
    for e in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let e = e.map_err(|e| io_err(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") || top.contains(&name) {
            continue;
        }
        let p = e.path();
        let md = std::fs::symlink_metadata(&p).map_err(|e| io_err(&p, e))?;
        if md.is_dir() {
            std::fs::remove_dir_all(&p).map_err(|e| io_err(&p, e))?;
        } else {
            std::fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
        }
    }
    for name in &top {
        let p = dir.join(name);
        let target = Path::new("..data").join(name);
        match std::fs::symlink_metadata(&p) {
            Ok(md) if md.file_type().is_symlink() => {
                if std::fs::read_link(&p).ok().as_deref() == Some(target.as_path()) {
                    continue;
                }
                std::fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
            }
            // Written directly by an older agent: replaced by the link.
            Ok(md) if md.is_dir() => std::fs::remove_dir_all(&p).map_err(|e| io_err(&p, e))?,
            Ok(_) => std::fs::remove_file(&p).map_err(|e| io_err(&p, e))?,
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&target, &p).map_err(|e| io_err(&p, e))?;
    }
    Ok(!unchanged)
}

fn set_mode(p: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", p.display()))
}

/// The content of an atomic-writer volume (configMap, secret, downwardAPI, projected), or `None`
/// for other kinds.
async fn payload_of(
    client: &kube::Client,
    pod: &Pod,
    ns: &str,
    v: &Volume,
    dir: &Path,
    alloc: &Allocatable,
) -> Result<Option<(Payload, Ownership)>, String> {
    let group = fs_group(pod);
    let mut payload = Payload::new();
    let mut own = Ownership { user: None, group };
    if let Some(cm) = &v.config_map {
        let mode = mode_of(cm.default_mode, 0o644);
        let optional = cm.optional.unwrap_or(false);
        match config_map(client, ns, &cm.name).await? {
            Some(d) => project_keys(
                &format!("configmap {:?}", cm.name),
                &d,
                cm.items.as_ref(),
                mode,
                optional,
                &mut payload,
            )?,
            None if optional => {}
            None => return Err(format!("configmap \"{}\" not found", cm.name)),
        }
    } else if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        let mode = mode_of(s.default_mode, 0o644);
        let optional = s.optional.unwrap_or(false);
        match secret(client, ns, &name).await? {
            Some(d) => project_keys(
                &format!("secret {name:?}"),
                &d,
                s.items.as_ref(),
                mode,
                optional,
                &mut payload,
            )?,
            None if optional => {}
            None => return Err(format!("secret \"{name}\" not found")),
        }
    } else if let Some(d) = &v.downward_api {
        let mode = mode_of(d.default_mode, 0o644);
        project_downward(
            pod,
            d.items.as_deref().unwrap_or_default(),
            mode,
            alloc,
            &mut payload,
        )?;
    } else if let Some(p) = &v.projected {
        let mode = mode_of(p.default_mode, 0o644);
        let sources: Vec<_> = p.sources.iter().flatten().collect();
        // The sources' API reads (the pod's token, the CA ConfigMap) run concurrently; the
        // results are projected in order.
        let fetched = futures::future::try_join_all(
            sources
                .iter()
                .map(|src| fetch_projection(client, pod, ns, dir, src)),
        )
        .await?;
        for (src, got) in sources.into_iter().zip(fetched) {
            match got {
                Fetched::Keys(data) => {
                    let (what, items, optional) = if let Some(cm) = &src.config_map {
                        (format!("configmap {:?}", cm.name), cm.items.as_ref(), cm.optional)
                    } else if let Some(s) = &src.secret {
                        (format!("secret {:?}", s.name), s.items.as_ref(), s.optional)
                    } else {
                        continue;
                    };
                    let optional = optional.unwrap_or(false);
                    match data {
                        Some(d) => project_keys(&what, &d, items, mode, optional, &mut payload)?,
                        None if optional => {}
                        None => return Err(format!("{what} not found")),
                    }
                }
                Fetched::Token(token) => {
                    let Some(t) = &src.service_account_token else {
                        continue;
                    };
                    // Upstream: the token is private to its owner when an fsUser/fsGroup is set.
                    let user = common_run_as_user(pod);
                    let tmode = if user.is_some() || group.is_some() {
                        0o600
                    } else {
                        mode
                    };
                    own.user = user;
                    payload.insert(
                        t.path.clone(),
                        FileProjection {
                            data: token,
                            mode: tmode,
                        },
                    );
                }
                Fetched::Nothing => match &src.downward_api {
                    Some(d) => project_downward(
                        pod,
                        d.items.as_deref().unwrap_or_default(),
                        mode,
                        alloc,
                        &mut payload,
                    )?,
                    None => {
                        return Err(format!(
                            "volume {}: this projected volume source is not supported by this agent yet",
                            v.name
                        ))
                    }
                },
            }
        }
    } else {
        return Ok(None);
    }
    Ok(Some((payload, own)))
}

/// What one projected source needed from the API.
enum Fetched {
    /// ConfigMap or Secret data (`None`: not found).
    Keys(crate::apireads::KeyData),
    /// The pod's ServiceAccount token.
    Token(Vec<u8>),
    /// Nothing (downward API, unsupported sources).
    Nothing,
}

/// The API read of one projected source.
async fn fetch_projection(
    client: &kube::Client,
    pod: &Pod,
    ns: &str,
    dir: &Path,
    src: &k8s_openapi::api::core::v1::VolumeProjection,
) -> Result<Fetched, String> {
    if let Some(cm) = &src.config_map {
        Ok(Fetched::Keys(config_map(client, ns, &cm.name).await?))
    } else if let Some(s) = &src.secret {
        Ok(Fetched::Keys(secret(client, ns, &s.name).await?))
    } else if let Some(t) = &src.service_account_token {
        check_rel_path(&t.path)?;
        let current = std::fs::read(dir.join("..data").join(&t.path)).ok();
        let token = service_account_token(client, pod, t, current.as_deref()).await?;
        Ok(Fetched::Token(token))
    } else {
        Ok(Fetched::Nothing)
    }
}

/// Write the atomic-writer volumes of a pod again (new ConfigMap/Secret content, a token due
/// for renewal): the kubelet's periodic volume sync. Volumes that cannot be read now keep their
/// content.
pub async fn refresh(client: &kube::Client, pod: &Pod, data_dir: &Path) -> Result<(), String> {
    let (Some(pspec), Some(uid)) = (pod.spec.as_ref(), pod.metadata.uid.as_deref()) else {
        return Ok(());
    };
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let root = pod_volumes_dir(data_dir, uid);
    let alloc = Allocatable::of_host();
    let mut first_err = None;
    for v in pspec.volumes.iter().flatten() {
        let dir = root.join(&v.name);
        match payload_of(client, pod, ns, v, &dir, &alloc).await {
            Ok(Some((payload, own))) => {
                if let Err(e) = write_atomic(&dir, &payload, own) {
                    first_err.get_or_insert(e);
                }
            }
            Ok(None) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Directory holding the volumes of pod `uid`.
pub fn pod_volumes_dir(data_dir: &Path, uid: &str) -> PathBuf {
    data_dir.join("volumes").join(uid)
}

/// Where this agent keeps the data of local-path volumes: `<data dir>/storage/<pv name>`.
pub fn storage_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("storage")
}

/// The host directory of a volume whose path is `path`: only the master's virtual local-path
/// root (`LOCAL_PATH_PREFIX/<one component>`) is accepted, mapped onto [`storage_dir`]. Any
/// other path (an admin's hostPath volume, `..`, nested components) is refused.
pub fn local_volume_dir(data_dir: &Path, pv: &str, path: &str) -> Result<PathBuf, String> {
    let rest = path
        .strip_prefix(LOCAL_PATH_PREFIX)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|r| !r.is_empty() && !r.contains('/') && *r != "." && *r != "..");
    match rest {
        Some(r) => Ok(storage_dir(data_dir).join(r)),
        None => Err(format!(
            "persistentvolume {pv:?}: path {path:?} is outside the agent's storage directory ({LOCAL_PATH_PREFIX}/<name>)"
        )),
    }
}

/// Does the volume's required node affinity admit `node` (true without one)?
fn volume_fits_node(pv: &PersistentVolume, node: &Node) -> bool {
    let Some(req) = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    else {
        return true;
    };
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let node_name = node.metadata.name.clone().unwrap_or_default();
    let matches = |r: &NodeSelectorRequirement, value: Option<&str>| {
        let values = r.values.clone().unwrap_or_default();
        match r.operator.as_str() {
            "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
            "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            op @ ("Gt" | "Lt") => {
                let (Some(v), [b]) = (value.and_then(|v| v.parse::<i64>().ok()), &values[..])
                else {
                    return false;
                };
                let Ok(b) = b.parse::<i64>() else {
                    return false;
                };
                if op == "Gt" {
                    v > b
                } else {
                    v < b
                }
            }
            _ => false,
        }
    };
    req.node_selector_terms.iter().any(|term| {
        let exprs = term.match_expressions.clone().unwrap_or_default();
        let fields = term.match_fields.clone().unwrap_or_default();
        (!exprs.is_empty() || !fields.is_empty())
            && exprs
                .iter()
                .all(|r| matches(r, labels.get(&r.key).map(String::as_str)))
            && fields.iter().all(|r| {
                let v = (r.key == "metadata.name").then_some(node_name.as_str());
                matches(r, v)
            })
    })
}

/// A `persistentVolumeClaim` volume: claim -> bound volume -> its directory on this node
/// (created if missing). Refused: an unbound claim, a volume whose node affinity does not match
/// this node, a path outside the agent's storage directory (also after resolving symlinks).
async fn claim_dir(
    client: &kube::Client,
    pod: &Pod,
    ns: &str,
    claim: &str,
    data_dir: &Path,
) -> Result<PathBuf, String> {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let pvc = pvcs
        .get(claim)
        .await
        .map_err(|e| format!("persistentvolumeclaim {claim:?}: {e}"))?;
    let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let pv_name = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|v| !v.is_empty() && bound)
        .ok_or_else(|| format!("persistentvolumeclaim {claim:?} is not bound"))?;
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(&pv_name)
        .await
        .map_err(|e| format!("persistentvolume {pv_name:?}: {e}"))?;
    let node_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    let node = Api::<Node>::all(client.clone())
        .get(&node_name)
        .await
        .map_err(|e| format!("node {node_name:?}: {e}"))?;
    if !volume_fits_node(&pv, &node) {
        return Err(format!(
            "persistentvolume {pv_name:?}: node affinity does not match node {node_name:?}"
        ));
    }
    let spec = pv.spec.as_ref();
    let path = spec
        .and_then(|s| s.local.as_ref().map(|l| l.path.clone()))
        .or_else(|| spec.and_then(|s| s.host_path.as_ref().map(|h| h.path.clone())))
        .ok_or_else(|| {
            format!("persistentvolume {pv_name:?}: only local and hostPath volumes are supported by this agent")
        })?;
    let dir = local_volume_dir(data_dir, &pv_name, &path)?;
    if !dir.exists() {
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        // World-writable like an emptyDir, so containers running as any user can use it.
        set_mode(&dir, 0o777)?;
    }
    let root = storage_dir(data_dir)
        .canonicalize()
        .map_err(|e| io_err(&storage_dir(data_dir), e))?;
    let real = dir.canonicalize().map_err(|e| io_err(&dir, e))?;
    if real.parent() != Some(root.as_path()) {
        return Err(format!(
            "persistentvolume {pv_name:?}: {} resolves outside the agent's storage directory",
            dir.display()
        ));
    }
    Ok(real)
}

/// Reclaim Delete on this node: the data of local-path volumes being deleted (pinned to this
/// node, carrying the cleanup finalizer) is removed, then the finalizer, which lets the volume
/// go.
pub async fn reclaim(client: &kube::Client, node: &str, data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(storage_dir(data_dir)) else {
        return;
    };
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let pv = match pvs.get(&name).await {
            Ok(pv) => pv,
            // Gone or not ours to read (the node reads only its own local-path volumes): the
            // data stays; only a volume this node can see being deleted is cleaned up.
            Err(e) => {
                tracing::debug!(volume = %name, error = %e, "volume lookup failed");
                continue;
            }
        };
        let json = serde_json::to_value(&pv).unwrap_or_default();
        let deleting = pv.metadata.deletion_timestamp.is_some();
        let finalizers = pv.metadata.finalizers.clone().unwrap_or_default();
        if !deleting
            || !finalizers.iter().any(|f| f == CLEANUP_FINALIZER)
            || local_path_node(&json) != Some(node)
        {
            continue;
        }
        if let Err(e) = std::fs::remove_dir_all(entry.path()) {
            tracing::warn!(volume = %name, error = %e, "removing volume data failed");
            continue;
        }
        let mut done = pv.clone();
        done.metadata.finalizers = Some(
            finalizers
                .into_iter()
                .filter(|f| f != CLEANUP_FINALIZER)
                .collect(),
        );
        match pvs.replace(&name, &Default::default(), &done).await {
            Ok(_) => tracing::info!(volume = %name, "volume data deleted"),
            Err(e) => {
                tracing::warn!(volume = %name, error = %e, "clearing the cleanup finalizer failed")
            }
        }
    }
}

/// Fill `spec` (env and mounts) from the pod's env sources and volumes.
/// The default cluster DNS domain of pod FQDNs (config `cluster_domain`).
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Upstream's cap on a pod's FQDN used as its hostname (`setHostnameAsFQDN`).
const MAX_FQDN_HOSTNAME: usize = 64;

/// Hostname, FQDN and host aliases of the pod's managed `/etc/hosts` (upstream
/// `GeneratePodHostNameAndDomain`), and the sandbox hostname (the FQDN under
/// `setHostnameAsFQDN`).
pub fn pod_hosts(
    pod: &Pod,
    path: PathBuf,
    cluster_domain: &str,
) -> Result<(EtcHosts, String), String> {
    let spec = pod.spec.as_ref().ok_or("pod has no spec")?;
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let hostname: String = spec
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default()
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches(['-', '.'])
        .to_string();
    let fqdn = spec
        .subdomain
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|sub| format!("{hostname}.{sub}.{ns}.svc.{cluster_domain}"));
    let sandbox_hostname = match (&fqdn, spec.set_hostname_as_fqdn) {
        (Some(f), Some(true)) => {
            if f.len() > MAX_FQDN_HOSTNAME {
                return Err(format!("failed to construct FQDN from pod hostname and cluster domain, FQDN {f} is too long ({MAX_FQDN_HOSTNAME} characters is the max, {} characters requested)", f.len()));
            }
            f.clone()
        }
        _ => hostname.clone(),
    };
    let aliases = spec
        .host_aliases
        .iter()
        .flatten()
        .map(|a| (a.ip.clone(), a.hostnames.clone().unwrap_or_default()))
        .collect();
    Ok((
        EtcHosts {
            path,
            hostname,
            fqdn,
            aliases,
        },
        sandbox_hostname,
    ))
}

/// Upstream's checks of a `subPath` (after `subPathExpr` expansion).
pub fn check_sub_path(sub: &str) -> Result<(), String> {
    if sub.starts_with('/') {
        return Err(format!(
            "error SubPath `{sub}` must not be an absolute path"
        ));
    }
    if sub.split('/').any(|p| p == "..") {
        return Err(format!(
            "unable to provision SubPath `{sub}`: must not contain '..'"
        ));
    }
    Ok(())
}

/// `subPathExpr` with the container's variables (upstream `ExpandContainerVolumeMounts`): a
/// reference to a variable that is unset or empty is an error.
pub fn expand_sub_path_expr(expr: &str, env: &[(String, String)]) -> Result<String, String> {
    let missing = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let out =
        crate::runtime::expand::expand(expr, &|k| match env.iter().rev().find(|(n, _)| n == k) {
            Some((_, v)) if !v.is_empty() => Some(v.clone()),
            _ => {
                missing.borrow_mut().insert(k.to_string());
                Some(String::new())
            }
        });
    let missing = missing.into_inner();
    if !missing.is_empty() {
        return Err(format!(
            "missing value for {}",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(out)
}

/// Mount a tmpfs of `size` bytes (none: unlimited) at `dir` unless one is there already.
fn mount_tmpfs(dir: &Path, size: Option<u64>) -> Result<(), String> {
    if crate::runtime::mounts_under(dir).iter().any(|m| m == dir) {
        return Ok(());
    }
    let target = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("{}: path has a NUL byte", dir.display()))?;
    let opts = match size {
        Some(b) => format!("mode=0777,size={b}"),
        None => "mode=0777".to_string(),
    };
    let opts = std::ffi::CString::new(opts).map_err(|e| e.to_string())?;
    let fstype = c"tmpfs";
    // SAFETY: valid NUL-terminated strings; flags restrict the mount.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            opts.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "mounting tmpfs at {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Unmount the pod's memory-backed volumes and remove its volume directories.
pub fn remove_pod_volumes(data_dir: &Path, uid: &str) {
    let root = pod_volumes_dir(data_dir, uid);
    crate::runtime::unmount_all_under(&root);
    let _ = std::fs::remove_dir_all(root);
}

/// Fill `spec` (env and mounts) from the pod's env sources and volumes. `host_ip`: the node's
/// IP (`status.hostIP`).
pub async fn prepare(
    client: &kube::Client,
    pod: &Pod,
    spec: &mut PodSpecLite,
    data_dir: &Path,
    admission: &NodeAdmission,
    host_ip: &str,
    cluster_domain: &str,
) -> Result<(), String> {
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let Some(pspec) = pod.spec.as_ref() else {
        return Ok(());
    };
    let root = pod_volumes_dir(data_dir, &spec.uid);
    let alloc = Allocatable::of_host();
    // The volumes, the Service environment and the pull credentials need separate API reads:
    // made concurrently, as pod start waits for all three.
    let volumes = async {
        let mut dirs: BTreeMap<String, (PathBuf, bool)> = BTreeMap::new();
        for v in pspec.volumes.iter().flatten() {
            let dir = root.join(&v.name);
            let readonly_source;
            if let Some(ed) = &v.empty_dir {
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                match ed.medium.as_deref() {
                    None | Some("") => {}
                    Some("Memory") => {
                        let size = match ed.size_limit.as_ref() {
                            Some(q) => Some(parse_memory_bytes(&q.0).ok_or_else(|| {
                                format!("volume {}: invalid sizeLimit {:?}", v.name, q.0)
                            })?),
                            // Upstream: the pod's memory limit, or what the node has.
                            None => Some(pod_memory_limit(pod).unwrap_or(alloc.memory_bytes)),
                        };
                        mount_tmpfs(&dir, size.filter(|s| *s > 0))?;
                    }
                    Some(m) => {
                        return Err(format!(
                            "volume {}: emptyDir medium {m} is not supported by this agent",
                            v.name
                        ))
                    }
                }
                // World-writable like the kubelet's, so containers running as any user can use it;
                // with fsGroup, owned by that group and inherited by new files (setgid).
                match fs_group(pod) {
                    Some(g) => {
                        chown_group(&dir, g)?;
                        set_mode(&dir, 0o2777)?;
                    }
                    None => set_mode(&dir, 0o777)?,
                }
                readonly_source = false;
            } else if let Some(h) = &v.host_path {
                if let Some(bad) = admission.check_host_path(&v.name, &h.path) {
                    return Err(format!("hostPath volumes ({bad})"));
                }
                let p = PathBuf::from(&h.path);
                if matches!(h.type_.as_deref(), Some("DirectoryOrCreate")) {
                    std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                } else if !p.exists() && !matches!(h.type_.as_deref(), None | Some("")) {
                    return Err(format!("hostPath {} does not exist", h.path));
                }
                // Checked again now that it exists: a symlink resolves to where it points.
                if let Some(bad) = admission.check_host_path(&v.name, &h.path) {
                    return Err(format!("hostPath volumes ({bad})"));
                }
                // The host's files are never writable from a pod.
                dirs.insert(v.name.clone(), (p, true));
                continue;
            } else if let Some(c) = &v.persistent_volume_claim {
                let host = claim_dir(client, pod, &ns, &c.claim_name, data_dir).await?;
                dirs.insert(v.name.clone(), (host, c.read_only.unwrap_or(false)));
                continue;
            } else if let Some((payload, own)) =
                payload_of(client, pod, &ns, v, &dir, &alloc).await?
            {
                write_atomic(&dir, &payload, own)?;
                readonly_source = true;
            } else {
                return Err(format!("volume {}: only emptyDir, hostPath, configMap, secret, downwardAPI, projected and persistentVolumeClaim volumes are supported by this agent yet", v.name));
            }
            dirs.insert(v.name.clone(), (dir, readonly_source));
        }
        Ok::<_, String>(dirs)
    };
    let (dirs, service_env, keyring) = tokio::join!(
        volumes,
        crate::podenv::service_env(client, pod),
        pull_keyring(client, &ns, pspec)
    );
    let dirs = dirs?;
    spec.service_env = service_env?;
    spec.pull_keyring = keyring;
    let pod_dir = root.join("..pod");
    std::fs::create_dir_all(&pod_dir).map_err(|e| format!("{}: {e}", pod_dir.display()))?;
    if pspec.host_network != Some(true) {
        let (hosts, hostname) = pod_hosts(pod, pod_dir.join("etc-hosts"), cluster_domain)?;
        spec.hostname = Some(hostname);
        spec.etc_hosts = Some(hosts);
    }
    spec.pod_dir = Some(pod_dir);
    let ephemeral: Vec<k8s_openapi::api::core::v1::Container> = pspec
        .ephemeral_containers
        .iter()
        .flatten()
        .map(crate::runtime::ephemeral_as_container)
        .collect();
    let all_k8s = pspec
        .init_containers
        .iter()
        .flatten()
        .chain(&pspec.containers)
        .chain(&ephemeral);
    let all_lite = spec
        .init_containers
        .iter_mut()
        .chain(spec.containers.iter_mut())
        .chain(spec.ephemeral_containers.iter_mut());
    for (k8s_c, c) in all_k8s.zip(all_lite) {
        c.env = crate::podenv::resolve_env(client, pod, &ns, k8s_c, host_ip, &alloc).await?;
        // Known before the sandbox: everything but the pod IPs (subPathExpr cannot use those).
        let known_env = {
            let mut probe = c.clone();
            probe.env.retain(|e| {
                !matches!(
                    e.value,
                    crate::runtime::EnvValue::PodIp | crate::runtime::EnvValue::PodIps
                )
            });
            let snapshot = PodSpecLite {
                service_env: spec.service_env.clone(),
                ..Default::default()
            };
            crate::runtime::resolve_container(&snapshot, &probe, &[]).env
        };
        for m in k8s_c.volume_mounts.iter().flatten() {
            let (host, ro) = dirs.get(&m.name).ok_or_else(|| {
                format!(
                    "container {}: volumeMount {} names no volume",
                    k8s_c.name, m.name
                )
            })?;
            match m.mount_propagation.as_deref() {
                None | Some("") | Some("None") => {}
                Some(p) => {
                    return Err(format!(
                        "container {}: volumeMount {}: mountPropagation {p} is not allowed on this node",
                        k8s_c.name, m.name
                    ))
                }
            }
            let mut host = host.clone();
            let sub = match (
                m.sub_path.as_deref().filter(|s| !s.is_empty()),
                m.sub_path_expr.as_deref().filter(|s| !s.is_empty()),
            ) {
                (Some(s), _) => Some(s.to_string()),
                (None, Some(expr)) => Some(expand_sub_path_expr(expr, &known_env)?),
                (None, None) => None,
            };
            if let Some(sub) = sub.as_deref().filter(|s| !s.is_empty()) {
                check_sub_path(sub)?;
                // A symlink inside the volume must not lead out of it (checked before creating).
                let real_base = host
                    .canonicalize()
                    .map_err(|e| format!("{}: {e}", host.display()))?;
                let target = crate::security::resolve_host_path(&real_base.join(sub));
                if !target.starts_with(&real_base) {
                    return Err(format!(
                        "subPath {sub:?} of volume {} resolves outside the volume",
                        m.name
                    ));
                }
                if !target.exists() {
                    // Upstream SafeMakeDir: new directories get the volume root's mode.
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(&real_base)
                        .map_err(|e| format!("{}: {e}", real_base.display()))?
                        .permissions()
                        .mode()
                        & 0o7777;
                    let missing: Vec<PathBuf> = target
                        .ancestors()
                        .take_while(|p| *p != real_base && !p.exists())
                        .map(Path::to_path_buf)
                        .collect();
                    std::fs::create_dir_all(&target)
                        .map_err(|e| format!("{}: {e}", target.display()))?;
                    for d in missing {
                        set_mode(&d, mode)?;
                    }
                }
                host = target;
            }
            c.mounts.push(MountLite {
                host_path: host,
                container_path: m.mount_path.clone(),
                readonly: m.read_only.unwrap_or(false) || *ro,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file(data: &str, mode: u32) -> FileProjection {
        FileProjection {
            data: data.as_bytes().to_vec(),
            mode,
        }
    }

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn atomic_writer_swaps_data_and_links() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("vol");
        let mut p = Payload::new();
        p.insert("a".into(), file("one", 0o644));
        p.insert("sub/b".into(), file("two", 0o600));
        assert!(write_atomic(&dir, &p, Ownership::default()).unwrap());
        let first = std::fs::read_link(dir.join("..data")).unwrap();
        assert!(first.to_string_lossy().starts_with(".."));
        assert_eq!(
            std::fs::read_link(dir.join("a")).unwrap(),
            Path::new("..data/a")
        );
        assert_eq!(std::fs::read_to_string(dir.join("sub/b")).unwrap(), "two");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("sub/b")), 0o600);
        assert_eq!(mode(&dir.join("a")), 0o644);

        // Unchanged content: nothing is rewritten.
        assert!(!write_atomic(&dir, &p, Ownership::default()).unwrap());
        assert_eq!(std::fs::read_link(dir.join("..data")).unwrap(), first);

        // New content: a new timestamped dir, the old one gone, removed names unlinked.
        let mut q = Payload::new();
        q.insert("a".into(), file("three", 0o644));
        assert!(write_atomic(&dir, &q, Ownership::default()).unwrap());
        let second = std::fs::read_link(dir.join("..data")).unwrap();
        assert_ne!(first, second);
        assert!(!dir.join(&first).exists());
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "three");
        assert!(std::fs::symlink_metadata(dir.join("sub")).is_err());
    }

    #[test]
    fn atomic_writer_refuses_escaping_paths() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["../x", "/etc/passwd", "a/../../x", "..data", "", "a//b"] {
            let mut p = Payload::new();
            p.insert(bad.into(), file("x", 0o644));
            assert!(
                write_atomic(&tmp.path().join("v"), &p, Ownership::default()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn fs_group_makes_files_group_readable() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("vol");
        let mut p = Payload::new();
        p.insert("token".into(), file("t", 0o600));
        let own = Ownership {
            user: None,
            group: Some(1234),
        };
        write_atomic(&dir, &p, own).unwrap();
        let md = std::fs::metadata(dir.join("token")).unwrap();
        assert_eq!(md.permissions().mode() & 0o777, 0o640);
        if unsafe { libc::geteuid() } == 0 {
            use std::os::unix::fs::MetadataExt;
            assert_eq!(md.gid(), 1234);
        }
    }

    #[test]
    fn downward_api_files() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u-1",
                "labels": {"b": "2", "a": "x\"y"}, "annotations": {"k": "v"}},
            "spec": {"containers": [{"name": "c", "image": "i",
                "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}}]}
        }));
        let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(serde_json::json!([
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o400},
            {"path": "d/ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
            {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
            {"path": "ann", "fieldRef": {"fieldPath": "metadata.annotations['k']"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}},
            {"path": "cpu_limit", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu"}},
            {"path": "cpu_req", "resourceFieldRef": {"containerName": "c", "resource": "requests.cpu", "divisor": "1m"}},
            {"path": "mem_default", "resourceFieldRef": {"containerName": "c", "resource": "requests.memory"}},
        ]))
        .unwrap();
        let alloc = Allocatable {
            cpu_millis: 3500,
            memory_bytes: 1 << 30,
        };
        let mut out = Payload::new();
        project_downward(&p, &items, 0o644, &alloc, &mut out).unwrap();
        let get = |k: &str| String::from_utf8(out[k].data.clone()).unwrap();
        assert_eq!(get("labels"), "a=\"x\\\"y\"\nb=\"2\"");
        assert_eq!(get("name"), "p");
        assert_eq!(out["name"].mode, 0o400);
        assert_eq!(out["d/ns"].mode, 0o644);
        assert_eq!(get("d/ns"), "ns");
        assert_eq!(get("uid"), "u-1");
        assert_eq!(get("ann"), "v");
        assert_eq!(get("mem"), "64");
        // No CPU limit: node allocatable (3.5 cores), rounded up to whole cores.
        assert_eq!(get("cpu_limit"), "4");
        assert_eq!(get("cpu_req"), "250");
        assert_eq!(get("mem_default"), "0");

        for bad in [
            serde_json::json!([{"path": "x", "fieldRef": {"fieldPath": "spec.nodeName"}}]),
            serde_json::json!([{"path": "x", "resourceFieldRef": {"containerName": "nope", "resource": "limits.cpu"}}]),
            serde_json::json!([{"path": "x", "resourceFieldRef": {"containerName": "c", "resource": "limits.gpu"}}]),
            serde_json::json!([{"path": "../x", "fieldRef": {"fieldPath": "metadata.name"}}]),
        ] {
            let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(bad.clone()).unwrap();
            assert!(
                project_downward(&p, &items, 0o644, &alloc, &mut Payload::new()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_items_and_optional() {
        let mut data = BTreeMap::new();
        data.insert("k1".to_string(), b"v1".to_vec());
        data.insert("k2".to_string(), b"v2".to_vec());
        let items: Vec<KeyToPath> = serde_json::from_value(serde_json::json!([
            {"key": "k1", "path": "p/one", "mode": 0o400}
        ]))
        .unwrap();
        let mut out = Payload::new();
        project_keys("cm", &data, Some(&items), 0o644, false, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out["p/one"], file("v1", 0o400));
        let missing: Vec<KeyToPath> =
            serde_json::from_value(serde_json::json!([{"key": "nope", "path": "x"}])).unwrap();
        assert!(project_keys("cm", &data, Some(&missing), 0o644, false, &mut out).is_err());
        assert!(project_keys("cm", &data, Some(&missing), 0o644, true, &mut out).is_ok());
        let mut all = Payload::new();
        project_keys("cm", &data, None, 0o640, false, &mut all).unwrap();
        assert_eq!(all["k2"], file("v2", 0o640));
    }

    #[test]
    fn local_volume_paths_stay_in_the_storage_dir() {
        let data = Path::new("/data");
        assert_eq!(
            local_volume_dir(data, "pv", &format!("{LOCAL_PATH_PREFIX}/pvc-1")).unwrap(),
            PathBuf::from("/data/storage/pvc-1")
        );
        for bad in [
            "/etc".to_string(),
            "/".to_string(),
            LOCAL_PATH_PREFIX.to_string(),
            format!("{LOCAL_PATH_PREFIX}/"),
            format!("{LOCAL_PATH_PREFIX}/.."),
            format!("{LOCAL_PATH_PREFIX}/a/b"),
            format!("{LOCAL_PATH_PREFIX}/../../etc"),
            format!("{LOCAL_PATH_PREFIX}x/pvc-1"),
        ] {
            let e = local_volume_dir(data, "pv", &bad).unwrap_err();
            assert!(
                e.contains("is outside the agent's storage directory"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn volume_node_affinity() {
        let pv: PersistentVolume = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "pv"},
            "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}}}))
        .unwrap();
        let node = |n: &str| -> Node {
            serde_json::from_value(serde_json::json!({"metadata": {"name": n,
                "labels": {"kubernetes.io/hostname": n}}}))
            .unwrap()
        };
        assert!(volume_fits_node(&pv, &node("n1")));
        assert!(!volume_fits_node(&pv, &node("n2")));
        assert!(volume_fits_node(&PersistentVolume::default(), &node("n2")));
    }

    #[test]
    fn hosts_hostname_and_fqdn() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "web-0", "namespace": "ns"},
            "spec": {"hostname": "h", "subdomain": "sub",
                "hostAliases": [{"ip": "123.45.67.89", "hostnames": ["foo.remote", "bar.remote"]}],
                "containers": [{"name": "c"}]}}));
        let (h, sandbox) = pod_hosts(&p, "/x".into(), CLUSTER_DOMAIN).unwrap();
        assert_eq!(h.hostname, "h");
        assert_eq!(h.fqdn.as_deref(), Some("h.sub.ns.svc.cluster.local"));
        assert_eq!(sandbox, "h");
        assert_eq!(
            h.aliases,
            vec![(
                "123.45.67.89".to_string(),
                vec!["foo.remote".to_string(), "bar.remote".to_string()]
            )]
        );
        let p = pod(serde_json::json!({
            "metadata": {"name": "web-0", "namespace": "ns"},
            "spec": {"subdomain": "sub", "setHostnameAsFQDN": true, "containers": [{"name": "c"}]}}));
        let (h, sandbox) = pod_hosts(&p, "/x".into(), CLUSTER_DOMAIN).unwrap();
        assert_eq!(h.hostname, "web-0");
        assert_eq!(sandbox, "web-0.sub.ns.svc.cluster.local");
        // Too long an FQDN as the hostname is refused, as upstream.
        let long = "a".repeat(60);
        let p = pod(serde_json::json!({
            "metadata": {"name": long, "namespace": "ns"},
            "spec": {"subdomain": "sub", "setHostnameAsFQDN": true, "containers": [{"name": "c"}]}}));
        let err = pod_hosts(&p, "/x".into(), CLUSTER_DOMAIN).unwrap_err();
        assert!(
            err.contains("is too long (64 characters is the max"),
            "{err}"
        );
        // No subdomain: no FQDN; a long pod name is cut to 63 characters.
        let p = pod(serde_json::json!({
            "metadata": {"name": "b".repeat(70), "namespace": "ns"},
            "spec": {"containers": [{"name": "c"}]}}));
        let (h, _) = pod_hosts(&p, "/x".into(), CLUSTER_DOMAIN).unwrap();
        assert_eq!((h.hostname.len(), h.fqdn), (63, None));
    }

    #[test]
    fn sub_path_checks_and_expr() {
        for ok in ["a", "a/b", "a..b", "..a", "a/.../b"] {
            assert!(check_sub_path(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            check_sub_path("/etc").unwrap_err(),
            "error SubPath `/etc` must not be an absolute path"
        );
        for bad in ["..", "../x", "a/../../x", "a/.."] {
            assert!(
                check_sub_path(bad)
                    .unwrap_err()
                    .contains("must not contain '..'"),
                "{bad}"
            );
        }
        let env = vec![
            ("POD_NAME".to_string(), "web-0".to_string()),
            ("EMPTY".to_string(), String::new()),
        ];
        assert_eq!(
            expand_sub_path_expr("logs/$(POD_NAME)", &env).unwrap(),
            "logs/web-0"
        );
        assert_eq!(
            expand_sub_path_expr("$$(POD_NAME)", &env).unwrap(),
            "$(POD_NAME)"
        );
        assert_eq!(
            expand_sub_path_expr("$(NOPE)/$(EMPTY)/$(POD_NAME)", &env).unwrap_err(),
            "missing value for EMPTY, NOPE"
        );
    }

    #[test]
    fn memory_volume_default_size() {
        let p = pod(serde_json::json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"memory": "64Mi"}}},
            {"name": "b", "resources": {"limits": {"memory": "32Mi"}}}]}}));
        assert_eq!(pod_memory_limit(&p), Some(96 << 20));
        let p = pod(serde_json::json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"memory": "64Mi"}}}, {"name": "b"}]}}));
        assert_eq!(pod_memory_limit(&p), None);
    }

    #[test]
    fn token_renewal_time() {
        // 80% of an hour.
        assert_eq!(token_refresh_at(1000, 1000 + 3600), 1000 + 2880);
        // At most 24h, however long the token lives.
        assert_eq!(token_refresh_at(0, 7 * 86400), 86400);
        use base64::Engine;
        let claims =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"iat":100,"exp":3700}"#);
        assert_eq!(
            jwt_times(format!("h.{claims}.s").as_bytes()),
            Some((100, 3700))
        );
        assert_eq!(jwt_times(b"not a jwt"), None);
    }

    #[test]
    fn run_as_user_shared_by_all_containers() {
        let p = pod(serde_json::json!({"spec": {
            "securityContext": {"runAsUser": 1000},
            "containers": [{"name": "a"}, {"name": "b", "securityContext": {"runAsUser": 1000}}]}}));
        assert_eq!(common_run_as_user(&p), Some(1000));
        let p = pod(serde_json::json!({"spec": {
            "securityContext": {"runAsUser": 1000},
            "containers": [{"name": "a"}, {"name": "b", "securityContext": {"runAsUser": 7}}]}}));
        assert_eq!(common_run_as_user(&p), None);
        let p = pod(serde_json::json!({"spec": {"containers": [{"name": "a"}]}}));
        assert_eq!(common_run_as_user(&p), None);
    }
}
