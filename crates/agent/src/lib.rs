//! K3s-DaaS worker agent.

pub mod agent;
pub mod apireads;
pub mod config;
pub mod net;
pub mod podenv;
pub mod resolvconf;
pub mod runtime;
pub mod security;
pub mod server;
pub mod stats;
pub mod streaming;
pub mod volumes;
