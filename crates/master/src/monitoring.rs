//! Monitoring endpoints of the master, authorized like the Kubernetes API server's:
//! - `GET /metrics` (served in [`crate::seed`]) needs `get` on the non-resource URL `/metrics`
//!   (the bootstrap ClusterRole `system:monitoring`, bound to the group `system:monitoring`,
//!   grants it; `system:masters` always has it); anonymous 401, others 403;
//! - `GET /api/v1/nodes/{node}/proxy/metrics`: the node agent's Prometheus metrics, fetched by
//!   the master with a request signed by its enclave key (the agent's `/metrics` answers only
//!   attested masters, like its other endpoints). It needs `get` on the subresource
//!   `nodes/metrics` of that node, upstream's permission for kubelet metrics; that permission
//!   reaches nothing else of the agent (no logs, exec, attach, port-forward or stats: this route
//!   fetches exactly `/metrics`).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use daas_apiserver::NodeProxy;
use tracing::Instrument;

use crate::access::{self, Ask};
use crate::seed::SeedState;

/// The path of a node's proxied agent metrics.
pub fn node_metrics_path(node: &str) -> String {
    format!("/api/v1/nodes/{node}/proxy/metrics")
}

pub fn router(state: SeedState) -> Router {
    Router::new()
        .route("/api/v1/nodes/{node}/proxy/metrics", get(node_metrics))
        .with_state(state)
}

async fn node_metrics(
    State(st): State<SeedState>,
    Path(node): Path<String>,
    headers: HeaderMap,
) -> Response {
    let span = tracing::debug_span!("node_metrics", %node);
    async move {
        let ask = Ask::Resource {
            verb: "get",
            group: "",
            resource: "nodes",
            subresource: Some("metrics"),
            name: Some(&node),
            namespace: None,
        };
        if let Err(e) = access::authorize(st.auth.as_ref(), &st.client, &headers, &ask).await {
            return e.into_response();
        }
        let obj = match st.client.get(&format!("/api/v1/nodes/{node}")).await {
            Ok(n) => n,
            Err(e) => return e.into_response(),
        };
        let proxy = crate::nodeproxy::AgentProxy {
            enclave: st.enclave.enclave.clone(),
        };
        match proxy.node_get(&obj, "/metrics").await {
            Ok(body) => {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
            }
            Err(e) => e.into_response(),
        }
    }
    .instrument(span)
    .await
}
