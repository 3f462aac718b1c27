//! End-to-end RBAC against a real `daas up` with the real kubectl: `kubectl auth can-i` (one
//! question and `--list`) and `kubectl auth whoami` as the cluster admin and as a user-tier
//! staker, and the default policy objects as kubectl shows them.

use crate::common;

use common::{stderr, stdout, Cluster};

fn can_i(c: &Cluster, kubeconfig: Option<&std::path::Path>, args: &[&str]) -> String {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let o = match kubeconfig {
        Some(k) => c.kubectl_as(k, &all),
        None => c.kubectl(&all),
    };
    let answer = stdout(&o).trim().to_string();
    assert!(
        answer == "yes" || answer == "no",
        "kubectl {all:?}: {answer} / {}",
        stderr(&o)
    );
    // kubectl exits 0 for "yes" and 1 for "no".
    assert_eq!(
        o.status.success(),
        answer == "yes",
        "kubectl {all:?}: {answer} / {}",
        stderr(&o)
    );
    answer
}

#[test]
fn kubectl_auth_can_i_and_whoami() {
    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let chain = c.chain_url();

    // ---- the admin
    assert_eq!(can_i(&c, None, &["create", "pods", "-n", "default"]), "yes");
    assert_eq!(can_i(&c, None, &["*", "*"]), "yes");
    let who: serde_json::Value =
        serde_json::from_str(&c.ok(&["auth", "whoami", "-o", "json"])).unwrap();
    assert_eq!(who["kind"], "SelfSubjectReview", "{who}");
    let groups = who["status"]["userInfo"]["groups"].to_string();
    assert!(groups.contains("system:masters"), "{who}");
    let roles = c.ok(&["get", "clusterroles"]);
    for r in ["cluster-admin", "admin", "edit", "view", "system:discovery"] {
        assert!(
            roles.lines().any(|l| l.starts_with(&format!("{r} "))),
            "{roles}"
        );
    }

    // ---- a user-tier staker
    let (key, addr) = c.staker(&chain, "alice", &["--amount", "200", "--role", "user"]);
    let (alice, out) = c.join(&chain, &key);
    let ns = crate::common::joined_namespace(&out);
    assert!(ns.starts_with("u-"), "{out}");
    let who = c.kubectl_as(&alice, &["auth", "whoami"]);
    let table = stdout(&who);
    assert!(who.status.success(), "{}", stderr(&who));
    assert!(table.contains(&format!("daas:user:{addr}")), "{table}");
    assert!(table.contains(&format!("daas:namespace:{ns}")), "{table}");
    assert!(table.contains("system:authenticated"), "{table}");
    let alice = alice.as_path();
    assert_eq!(
        can_i(&c, Some(alice), &["create", "pods", "-n", &ns]),
        "yes"
    );
    assert_eq!(
        can_i(&c, Some(alice), &["create", "deployments.apps"]),
        "yes"
    );
    assert_eq!(
        can_i(&c, Some(alice), &["create", "pods", "-n", "default"]),
        "no"
    );
    assert_eq!(
        can_i(
            &c,
            Some(alice),
            &["create", "pods", "--subresource", "binding", "-n", &ns]
        ),
        "no"
    );
    assert_eq!(
        can_i(&c, Some(alice), &["get", &format!("namespaces/{ns}")]),
        "yes"
    );
    assert_eq!(
        can_i(&c, Some(alice), &["patch", &format!("namespaces/{ns}")]),
        "no"
    );
    assert_eq!(can_i(&c, Some(alice), &["list", "nodes"]), "no");
    let list = c.kubectl_as(alice, &["auth", "can-i", "--list", "-n", &ns]);
    let list = stdout(&list);
    let pods = list
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(pods.contains("create"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("selfsubjectaccessreviews.authorization.k8s.io")),
        "{list}"
    );
    assert!(!list.contains("pods/binding"), "{list}");
    // The admin sees the user's binding, which it may change.
    let rb = c.ok(&["get", "rolebindings", "-n", &ns]);
    assert!(
        rb.contains("daas:namespace-owner   ClusterRole/daas:namespace-owner"),
        "{rb}"
    );
    c.ok(&["delete", "rolebinding", "daas:namespace-owner", "-n", &ns]);
    assert_eq!(can_i(&c, Some(alice), &["create", "pods", "-n", &ns]), "no");

    // ---- impersonation with extras (kubeconfig `as` / `as-user-extra`): client-go
    // percent-encodes the key in the header name.
    let impersonating = |kubeconfig: &std::path::Path, name: &str| {
        let text = std::fs::read_to_string(kubeconfig).unwrap();
        assert_eq!(text.matches("  user:\n").count(), 1, "{text}");
        let text = text.replace(
            "  user:\n",
            "  user:\n    as: jane\n    as-user-extra:\n      example.com/project: [p1]\n      scopes: [view, dev]\n",
        );
        let path = c.data_dir().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let admin_as_jane = impersonating(&c.kubeconfig(), "admin-as-jane.yaml");
    let o = c.kubectl_as(&admin_as_jane, &["auth", "whoami", "-o", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let who: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "jane", "{who}");
    assert_eq!(
        who["status"]["userInfo"]["extra"],
        serde_json::json!({"example.com/project": ["p1"], "scopes": ["view", "dev"]}),
        "{who}"
    );
    // The user tier may not impersonate at all (kubectl shows the server's refusal).
    let alice_as_jane = impersonating(alice, "alice-as-jane.yaml");
    let o = c.kubectl_as(&alice_as_jane, &["get", "pods", "-n", &ns]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!(
            "users \"jane\" is forbidden: User \"daas:user:{addr}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        )),
        "{}",
        stderr(&o)
    );
}
