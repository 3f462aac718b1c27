//! The kubeconfig `daas join` writes: one cluster and one context per attested master of the
//! cluster (`k3s-daas`, `k3s-daas-1`, ...; the first is current), all with the same user, the
//! `daas token --exec` credential plugin for the cluster's audience.
//!
//! kubectl does not fail over between the servers of a kubeconfig: each context names one
//! server. When a master is down, pick another context (`kubectl --context k3s-daas-1`, or
//! `kubectl config use-context k3s-daas-1`).

use serde_json::json;

/// The user entry: who the exec plugin mints credentials for, and how.
pub struct JoinUser {
    /// The staker's Sui address (the user entry's name).
    pub name: String,
    /// The `daas` executable.
    pub exe: String,
    /// Ledger endpoint.
    pub chain: String,
    /// The key file (absolute).
    pub key: String,
    /// `k3s-daas:<cluster id>`.
    pub audience: String,
    /// The namespace of every context.
    pub namespace: String,
}

/// Context (and cluster) name of the master at `index`.
pub fn context_name(index: usize) -> String {
    if index == 0 {
        "k3s-daas".to_string()
    } else {
        format!("k3s-daas-{index}")
    }
}

/// The kubeconfig for `masters` (URL, CA PEM), in the order given.
pub fn render(masters: &[(String, String)], user: &JoinUser) -> Result<String, serde_yaml::Error> {
    use base64::Engine;
    let clusters: Vec<_> = masters
        .iter()
        .enumerate()
        .map(|(i, (url, ca))| {
            json!({"name": context_name(i), "cluster": {
                "server": url,
                "certificate-authority-data":
                    base64::engine::general_purpose::STANDARD.encode(ca.as_bytes()),
            }})
        })
        .collect();
    let contexts: Vec<_> = (0..masters.len())
        .map(|i| {
            json!({"name": context_name(i), "context": {
                "cluster": context_name(i), "user": user.name, "namespace": user.namespace,
            }})
        })
        .collect();
    let kc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "users": [{"name": user.name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": user.exe,
            "args": ["token", "--exec", "--chain", user.chain, "--key", user.key,
                "--audience", user.audience],
            "interactiveMode": "Never",
        }}}],
        "contexts": contexts,
        "current-context": context_name(0),
    });
    serde_yaml::to_string(&kc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cluster_and_context_per_master_with_one_user() {
        let user = JoinUser {
            name: "0xabc".into(),
            exe: "/usr/bin/daas".into(),
            chain: "http://127.0.0.1:9100".into(),
            key: "/home/me/me.key".into(),
            audience: "k3s-daas:c1".into(),
            namespace: "u-abc".into(),
        };
        let y = render(
            &[
                ("https://m1:6443".into(), "CA-PEM".into()),
                ("https://m2:6443".into(), "CA-PEM".into()),
            ],
            &user,
        )
        .expect("yaml");
        let v: serde_yaml::Value = serde_yaml::from_str(&y).expect("parse");
        assert_eq!(v["current-context"].as_str(), Some("k3s-daas"));
        let clusters = v["clusters"].as_sequence().expect("clusters");
        assert_eq!(clusters.len(), 2);
        assert_eq!(clusters[0]["name"].as_str(), Some("k3s-daas"));
        assert_eq!(clusters[1]["name"].as_str(), Some("k3s-daas-1"));
        assert_eq!(
            clusters[1]["cluster"]["server"].as_str(),
            Some("https://m2:6443")
        );
        assert_eq!(
            clusters[0]["cluster"]["certificate-authority-data"].as_str(),
            Some("Q0EtUEVN")
        );
        let contexts = v["contexts"].as_sequence().expect("contexts");
        assert_eq!(contexts.len(), 2);
        for (i, c) in contexts.iter().enumerate() {
            assert_eq!(c["name"].as_str(), Some(context_name(i).as_str()));
            assert_eq!(
                c["context"]["cluster"].as_str(),
                Some(context_name(i).as_str())
            );
            assert_eq!(c["context"]["user"].as_str(), Some("0xabc"));
            assert_eq!(c["context"]["namespace"].as_str(), Some("u-abc"));
        }
        let users = v["users"].as_sequence().expect("users");
        assert_eq!(users.len(), 1);
        let args: Vec<&str> = users[0]["user"]["exec"]["args"]
            .as_sequence()
            .expect("args")
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        assert_eq!(
            args,
            [
                "token",
                "--exec",
                "--chain",
                "http://127.0.0.1:9100",
                "--key",
                "/home/me/me.key",
                "--audience",
                "k3s-daas:c1"
            ]
        );
    }
}
