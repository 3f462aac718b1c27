//! Authentication and authorization of the master's own endpoints that sit next to the
//! Kubernetes API (`/metrics`, the node metrics proxy, the console's data API), exactly as the
//! API authorizes: the bearer token goes through the API server's authenticator chain (admin and
//! internal tokens, seal-token credentials, service-account tokens), the identity gets
//! `system:authenticated`, and the decision is the API server's own SubjectAccessReview (Node
//! authorizer and RBAC), asked over the in-process client.

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use daas_apiserver::{ApiError, LocalClient, User};
use serde_json::{json, Value};

/// Why a request was refused: the ready-made Kubernetes `Status` response.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("unauthorized")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("access review failed: {0}")]
    Review(#[source] ApiError),
}

impl IntoResponse for AccessError {
    fn into_response(self) -> Response {
        match self {
            AccessError::Unauthenticated => ApiError::unauthorized().into_response(),
            AccessError::Forbidden(m) => ApiError::forbidden(m).into_response(),
            AccessError::Review(e) => e.into_response(),
        }
    }
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The identity behind the request's bearer token (with `system:authenticated`), or 401.
pub async fn identify(
    auth: &dyn daas_apiserver::Authenticator,
    headers: &HeaderMap,
) -> Result<User, AccessError> {
    let token = bearer(headers).ok_or(AccessError::Unauthenticated)?;
    let mut user = auth
        .authenticate(token)
        .await
        .ok_or(AccessError::Unauthenticated)?;
    let all = daas_apiserver::rbac::GROUP_AUTHENTICATED;
    if !user.groups.iter().any(|g| g == all) {
        user.groups.push(all.to_string());
    }
    Ok(user)
}

/// What is asked: a resource verb (optionally a subresource of a named object) or a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask<'a> {
    Resource {
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        subresource: Option<&'a str>,
        name: Option<&'a str>,
        namespace: Option<&'a str>,
    },
    Path {
        verb: &'a str,
        path: &'a str,
    },
}

impl Ask<'_> {
    /// The SubjectAccessReview `spec` attributes.
    fn attributes(&self) -> (&'static str, Value) {
        match self {
            Ask::Resource {
                verb,
                group,
                resource,
                subresource,
                name,
                namespace,
            } => (
                "resourceAttributes",
                json!({"verb": verb, "group": group, "resource": resource,
                    "subresource": subresource.unwrap_or(""), "name": name.unwrap_or(""),
                    "namespace": namespace.unwrap_or("")}),
            ),
            Ask::Path { verb, path } => {
                ("nonResourceAttributes", json!({"verb": verb, "path": path}))
            }
        }
    }

    /// Upstream's wording of a refusal.
    fn refusal(&self, user: &str) -> String {
        match self {
            Ask::Resource {
                verb,
                group,
                resource,
                subresource,
                name,
                ..
            } => {
                let res = match subresource {
                    Some(s) => format!("{resource}/{s}"),
                    None => resource.to_string(),
                };
                let group = if group.is_empty() { "" } else { group };
                match name {
                    Some(n) => format!("{res} \"{n}\" is forbidden: User \"{user}\" cannot {verb} resource \"{res}\" in API group \"{group}\" at the cluster scope"),
                    None => format!("{res} is forbidden: User \"{user}\" cannot {verb} resource \"{res}\" in API group \"{group}\" at the cluster scope"),
                }
            }
            Ask::Path { verb, path } => {
                format!("forbidden: User \"{user}\" cannot {verb} path \"{path}\"")
            }
        }
    }
}

/// The SubjectAccessReview for `user` asking `ask`.
pub fn review_body(user: &User, ask: &Ask<'_>) -> Value {
    let (key, attrs) = ask.attributes();
    let mut spec = json!({"user": user.name, "groups": user.groups, "extra": user.extra});
    if !user.uid.is_empty() {
        spec["uid"] = json!(user.uid);
    }
    spec[key] = attrs;
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
}

/// Is `user` allowed `ask`? `system:masters` always is; everyone else as the API server's
/// authorizer chain decides.
pub async fn allowed(
    client: &LocalClient,
    user: &User,
    ask: &Ask<'_>,
) -> Result<bool, AccessError> {
    if daas_apiserver::authz::is_master(user) {
        return Ok(true);
    }
    let answer = client
        .create(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            &review_body(user, ask),
        )
        .await
        .map_err(AccessError::Review)?;
    Ok(answer["status"]["allowed"].as_bool().unwrap_or(false))
}

/// 401 without a valid credential, 403 when the authorizer says no.
pub async fn authorize(
    auth: &dyn daas_apiserver::Authenticator,
    client: &LocalClient,
    headers: &HeaderMap,
    ask: &Ask<'_>,
) -> Result<User, AccessError> {
    let user = identify(auth, headers).await?;
    if allowed(client, &user, ask).await? {
        Ok(user)
    } else {
        Err(AccessError::Forbidden(ask.refusal(&user.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_bodies_carry_the_identity_and_one_kind_of_attributes() {
        let u = User {
            name: "system:serviceaccount:monitoring:prometheus".into(),
            uid: "abc".into(),
            groups: vec!["system:serviceaccounts".into()],
            ..Default::default()
        };
        let b = review_body(
            &u,
            &Ask::Path {
                verb: "get",
                path: "/metrics",
            },
        );
        assert_eq!(b["spec"]["user"], u.name);
        assert_eq!(b["spec"]["uid"], "abc");
        assert_eq!(b["spec"]["nonResourceAttributes"]["path"], "/metrics");
        assert!(b["spec"]["resourceAttributes"].is_null());
        let b = review_body(
            &u,
            &Ask::Resource {
                verb: "get",
                group: "",
                resource: "nodes",
                subresource: Some("metrics"),
                name: Some("n1"),
                namespace: None,
            },
        );
        assert_eq!(b["spec"]["resourceAttributes"]["subresource"], "metrics");
        assert_eq!(b["spec"]["resourceAttributes"]["name"], "n1");
        assert!(b["spec"]["nonResourceAttributes"].is_null());
    }

    #[test]
    fn refusals_read_like_upstream() {
        let a = Ask::Path {
            verb: "get",
            path: "/metrics",
        };
        assert_eq!(
            a.refusal("bob"),
            "forbidden: User \"bob\" cannot get path \"/metrics\""
        );
        let a = Ask::Resource {
            verb: "get",
            group: "",
            resource: "nodes",
            subresource: Some("metrics"),
            name: Some("n1"),
            namespace: None,
        };
        assert!(a
            .refusal("bob")
            .starts_with("nodes/metrics \"n1\" is forbidden"));
    }

    #[tokio::test]
    async fn no_or_unknown_token_is_unauthenticated() {
        let auth = daas_apiserver::StaticTokens::new(vec![(
            "good".to_string(),
            User {
                name: "a".into(),
                ..Default::default()
            },
        )]);
        let mut h = HeaderMap::new();
        assert!(matches!(
            identify(&auth, &h).await,
            Err(AccessError::Unauthenticated)
        ));
        h.insert(header::AUTHORIZATION, "Bearer bad".parse().unwrap());
        assert!(matches!(
            identify(&auth, &h).await,
            Err(AccessError::Unauthenticated)
        ));
        h.insert(header::AUTHORIZATION, "Bearer good".parse().unwrap());
        let u = identify(&auth, &h).await.unwrap();
        assert!(u
            .groups
            .contains(&daas_apiserver::rbac::GROUP_AUTHENTICATED.to_string()));
    }
}
