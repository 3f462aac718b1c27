//! The ClusterRole aggregation controller (upstream pkg/controller/clusterroleaggregation): a
//! ClusterRole with an `aggregationRule` gets as its `rules` the union, in name order and without
//! duplicates, of the rules of every other ClusterRole whose labels match one of its
//! `clusterRoleSelectors`. This is how `admin`, `edit` and `view` pick up the
//! `aggregate-to-*` labelled roles (including custom resources' roles added later).

use async_trait::async_trait;
use daas_apimachinery::selector::LabelSelector;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::Value;

use crate::util::name;
use crate::Controller;

const CLUSTER_ROLES: &str = "/apis/rbac.authorization.k8s.io/v1/clusterroles";

pub struct ClusterRoleAggregationController {
    client: LocalClient,
}

impl ClusterRoleAggregationController {
    pub fn new(client: LocalClient) -> Self {
        ClusterRoleAggregationController { client }
    }
}

/// The rules `role` should have given all `roles` (None when it has no aggregationRule). Invalid
/// selectors select nothing.
pub fn aggregated_rules(role: &Value, roles: &[Value]) -> Option<Vec<Value>> {
    let selectors: Vec<LabelSelector> = role["aggregationRule"]["clusterRoleSelectors"]
        .as_array()?
        .iter()
        .filter_map(|s| LabelSelector::from_json(s).ok())
        .collect();
    let mut sources: Vec<&Value> = roles
        .iter()
        .filter(|r| name(r) != name(role))
        .filter(|r| {
            selectors
                .iter()
                .any(|s| s.matches_labels_value(&r["metadata"]["labels"]))
        })
        .collect();
    sources.sort_by(|a, b| name(a).cmp(name(b)));
    let mut rules: Vec<Value> = Vec::new();
    for r in sources {
        for rule in r["rules"].as_array().into_iter().flatten() {
            if !rules.contains(rule) {
                rules.push(rule.clone());
            }
        }
    }
    Some(rules)
}

#[async_trait]
impl Controller for ClusterRoleAggregationController {
    fn name(&self) -> &'static str {
        "clusterrole-aggregation"
    }

    fn watches(&self) -> Vec<String> {
        vec![CLUSTER_ROLES.into()]
    }

    async fn reconcile(&mut self) -> Result<Option<std::time::Duration>, ApiError> {
        let roles = self.client.list(CLUSTER_ROLES).await?;
        for role in &roles {
            let Some(rules) = aggregated_rules(role, &roles) else {
                continue;
            };
            let current = role["rules"].as_array().cloned().unwrap_or_default();
            if current == rules {
                continue;
            }
            let mut updated = role.clone();
            updated["rules"] = Value::Array(rules);
            match self
                .client
                .update(&format!("{CLUSTER_ROLES}/{}", name(role)), &updated)
                .await
            {
                Ok(_) => {}
                // Changed meanwhile: the watch brings another pass.
                Err(e) if e.code == 409 || e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn union_in_name_order_without_duplicates() {
        let agg = json!({"metadata": {"name": "view", "labels": {"x/aggregate-to-edit": "true"}},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x/aggregate-to-view": "true"}}]}});
        let r = |n: &str, verb: &str, labelled: bool| {
            let labels = if labelled {
                json!({"x/aggregate-to-view": "true"})
            } else {
                json!({})
            };
            json!({"metadata": {"name": n, "labels": labels},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": [verb]}]})
        };
        let roles = vec![
            agg.clone(),
            r("b", "list", true),
            r("a", "get", true),
            r("c", "get", true),
            r("d", "delete", false),
        ];
        let rules = aggregated_rules(&agg, &roles).unwrap();
        let verbs: Vec<&str> = rules
            .iter()
            .map(|x| x["verbs"][0].as_str().unwrap())
            .collect();
        assert_eq!(verbs, vec!["get", "list"]);
        assert!(aggregated_rules(&r("a", "get", true), &roles).is_none());
    }
}
