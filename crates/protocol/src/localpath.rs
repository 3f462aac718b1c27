//! Local-path volumes as the master provisions them and the agent mounts them.

use serde_json::Value;

/// The virtual root of local-path volumes: each agent maps it onto `<its data dir>/storage`
/// (the master does not know agents' data directories) and refuses any other path.
pub const LOCAL_PATH_PREFIX: &str = "/var/lib/k3s-daas/storage";
/// Keeps a local-path volume until the node holding its data has removed it.
pub const CLEANUP_FINALIZER: &str = "k3s-daas.io/local-path-cleanup";
/// The node label local-path volumes are pinned by (agents set it to their node name).
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The node a local-path volume lives on: a `local` source under [`LOCAL_PATH_PREFIX`] with a
/// required node affinity of exactly one term `kubernetes.io/hostname In [<node>]`.
pub fn local_path_node(pv: &Value) -> Option<&str> {
    let path = pv["spec"]["local"]["path"].as_str()?;
    path.strip_prefix(LOCAL_PATH_PREFIX)?.strip_prefix('/')?;
    let terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"].as_array()?;
    let [term] = terms.as_slice() else {
        return None;
    };
    let exprs = term["matchExpressions"].as_array()?;
    let [e] = exprs.as_slice() else { return None };
    if e["key"] != HOSTNAME_LABEL || e["operator"] != "In" {
        return None;
    }
    match e["values"].as_array()?.as_slice() {
        [v] => v.as_str(),
        _ => None,
    }
}
