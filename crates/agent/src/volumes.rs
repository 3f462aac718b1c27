//! What the kubelet does before a pod starts: resolve `env[].valueFrom` / `envFrom` and prepare
//! volumes (emptyDir, hostPath, configMap, secret) as host directories bind-mounted into the
//! containers. Anything not supported is refused with a clear message (the pod then shows
//! CreateContainerConfigError), never silently dropped. hostPath, configMap and secret volumes are
//! always mounted read-only; hostPaths over the agent's own files are refused (again, after
//! creating `DirectoryOrCreate` paths and resolving `subPath`s, so a symlink cannot sneak one in).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::Api;

use crate::runtime::{MountLite, PodSpecLite};
use crate::security::NodeAdmission;

async fn config_map(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm = api
        .get_opt(name)
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

async fn secret(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let s = api
        .get_opt(name)
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

fn field_ref(pod: &Pod, path: &str) -> Result<String, String> {
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

fn utf8(name: &str, key: &str, b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| format!("key {key} of {name} is not UTF-8 text"))
}

async fn resolve_env(
    client: &kube::Client,
    pod: &Pod,
    ns: &str,
    c: &Container,
) -> Result<Vec<(String, String)>, String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
        env.retain(|(n, _)| *n != k);
        env.push((k, v));
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
                for (k, v) in d {
                    set(&mut env, format!("{prefix}{k}"), utf8(&what, &k, &v)?);
                }
            }
            None if optional => {}
            None => return Err(format!("{what} not found")),
        }
    }
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (_, Some(from)) => {
                if let Some(r) = &from.config_map_key_ref {
                    match config_map(client, ns, &r.name)
                        .await?
                        .and_then(|d| d.get(&r.key).cloned())
                    {
                        Some(v) => utf8(&r.name, &r.key, &v)?,
                        None if r.optional.unwrap_or(false) => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                r.key, r.name
                            ))
                        }
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    match secret(client, ns, &r.name)
                        .await?
                        .and_then(|d| d.get(&r.key).cloned())
                    {
                        Some(v) => utf8(&r.name, &r.key, &v)?,
                        None if r.optional.unwrap_or(false) => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                r.key, r.name
                            ))
                        }
                    }
                } else if let Some(f) = &from.field_ref {
                    field_ref(pod, &f.field_path)?
                } else {
                    return Err(format!(
                        "env {}: this valueFrom source is not supported",
                        e.name
                    ));
                }
            }
            (Some(v), None) => v.clone(),
            (None, None) => String::new(),
        };
        set(&mut env, e.name.clone(), value);
    }
    Ok(env)
}

fn write_files(
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<k8s_openapi::api::core::v1::KeyToPath>>,
    mode: u32,
) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let files: Vec<(String, String)> = match items {
        Some(items) => items
            .iter()
            .map(|i| (i.key.clone(), i.path.clone()))
            .collect(),
        None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
    };
    for (key, rel) in files {
        if rel.starts_with('/') || rel.split('/').any(|p| p == "..") {
            return Err(format!("invalid item path {rel:?}"));
        }
        let Some(bytes) = data.get(&key) else {
            return Err(format!("key {key} not found"));
        };
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| io(&path, e))?;
        }
    }
    Ok(())
}

fn set_mode(p: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", p.display()))
}

/// Directory holding the volumes of pod `uid`.
pub fn pod_volumes_dir(data_dir: &Path, uid: &str) -> PathBuf {
    data_dir.join("volumes").join(uid)
}

/// Fill `spec` (env and mounts) from the pod's env sources and volumes.
pub async fn prepare(
    client: &kube::Client,
    pod: &Pod,
    spec: &mut PodSpecLite,
    data_dir: &Path,
    admission: &NodeAdmission,
) -> Result<(), String> {
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let Some(pspec) = pod.spec.as_ref() else {
        return Ok(());
    };
    if pspec
        .init_containers
        .as_ref()
        .map(|v| !v.is_empty())
        .unwrap_or(false)
    {
        return Err("init containers are not supported by this agent yet".into());
    }
    let root = pod_volumes_dir(data_dir, &spec.uid);
    let mut dirs: BTreeMap<String, (PathBuf, bool)> = BTreeMap::new();
    for v in pspec.volumes.iter().flatten() {
        let dir = root.join(&v.name);
        let readonly_source;
        if v.empty_dir.is_some() {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            // World-writable like the kubelet's, so containers running as any user can use it.
            set_mode(&dir, 0o777)?;
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
        } else if let Some(cm) = &v.config_map {
            match config_map(client, &ns, &cm.name).await? {
                Some(d) => write_files(
                    &dir,
                    &d,
                    cm.items.as_ref(),
                    cm.default_mode.unwrap_or(0o644) as u32,
                )?,
                None if cm.optional.unwrap_or(false) => {
                    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?
                }
                None => return Err(format!("configmap \"{}\" not found", cm.name)),
            }
            readonly_source = true;
        } else if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            match secret(client, &ns, &name).await? {
                Some(d) => write_files(
                    &dir,
                    &d,
                    s.items.as_ref(),
                    s.default_mode.unwrap_or(0o644) as u32,
                )?,
                None if s.optional.unwrap_or(false) => {
                    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?
                }
                None => return Err(format!("secret \"{name}\" not found")),
            }
            readonly_source = true;
        } else {
            return Err(format!("volume {}: only emptyDir, hostPath, configMap and secret volumes are supported by this agent yet", v.name));
        }
        dirs.insert(v.name.clone(), (dir, readonly_source));
    }
    for (k8s_c, c) in pspec.containers.iter().zip(spec.containers.iter_mut()) {
        c.env = resolve_env(client, pod, &ns, k8s_c).await?;
        for m in k8s_c.volume_mounts.iter().flatten() {
            let (host, ro) = dirs.get(&m.name).ok_or_else(|| {
                format!(
                    "container {}: volumeMount {} names no volume",
                    k8s_c.name, m.name
                )
            })?;
            let mut host = host.clone();
            if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                if sub.starts_with('/') || sub.split('/').any(|p| p == "..") {
                    return Err(format!("invalid subPath {sub:?}"));
                }
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
                    std::fs::create_dir_all(&target)
                        .map_err(|e| format!("{}: {e}", target.display()))?;
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
