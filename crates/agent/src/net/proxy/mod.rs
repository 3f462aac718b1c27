//! The node's Service proxy (kube-proxy's job, nftables mode): the table `ip daas-proxy`,
//! programmed from Services and EndpointSlices.
//!
//! - [`wellknown`]: the cluster's fixed addresses (pod and Service ranges, `kubernetes` and DNS);
//! - [`model`]: Services and EndpointSlices -> [`model::ServicePort`]s (pure);
//! - [`rules`]: ServicePorts -> the nftables table (pure);
//! - [`sync`]: the watch, apply and drift-repair loop over a [`crate::net::nft::Firewall`];
//! - [`conntrack`]: deleting the UDP conntrack entries a change made stale.

pub mod conntrack;
pub mod model;
pub mod rules;
pub mod sync;
pub mod wellknown;

pub use sync::{run, ProxyConfig};
