//! Kubernetes API server for K3s-DaaS: REST over the sealed MVCC store, driven by real kubectl.

pub mod admission;
pub mod audit;
pub mod authz;
pub mod client;
pub mod defaulttolerations;
pub mod discovery;
pub mod egress;
pub mod error;
pub mod eventttl;
pub mod flowcontrol;
pub use daas_protocol::files;
pub mod handlers;
pub mod limitranger;
pub mod limits;
mod listshare;
pub mod negotiation;
pub mod nodeauthz;
pub mod objectcache;
pub mod openapi;
pub mod openapi_proto;
pub mod paging;
pub mod podsecurity;
pub mod policy;
pub mod portforward;
pub mod proxy;
pub mod quota;
pub mod rbac;
pub mod registry;
pub mod request;
pub mod resources;
pub mod saadmission;
pub mod satoken;
pub mod server;
pub mod spdy;
pub mod spdyexec;
pub mod streaming;
pub mod table;
pub mod tls;
pub mod typed;
pub mod watch;
pub mod watchcache;
mod watchprefilter;
pub mod webhook;
pub mod x509;

pub use client::{LocalClient, WatchEvent, WriteObserver};
pub use error::{ApiError, ApiResult};
pub use server::{
    bootstrap, bootstrap_with, router, serve_tls, serve_tls_with, spawn_compactor, Authenticator,
    NodeProxy, ServeOptions, ServerOptions, StaticTokens, User,
};
pub use tls::{ClusterCa, TlsMaterial};
