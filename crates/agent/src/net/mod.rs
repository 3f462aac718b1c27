//! Cluster networking on the node: the pod network across nodes, Service rules, cluster DNS,
//! network policies and the built-in ingress proxy. Each part is a module here, started by
//! [`crate::agent::join`] once the node is registered.

pub mod dns;
pub mod ingress;
pub mod nft;
pub mod podnet;
pub mod policy;
pub mod proxy;
