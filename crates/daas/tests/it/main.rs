//! All integration tests of this crate in one test binary (one link, one executable on disk);
//! nextest still runs every test in its own process.

mod admission;
mod agent;
mod agent_security;
mod attestation;
mod batch;
mod cli;
mod common;
mod containerenv;
mod containers;
mod controllers;
mod crd;
mod kube_client;
mod kubectl;
mod metrics;
mod openapi;
mod rbac;
mod rollback;
mod satoken;
mod ssa;
mod staking;
mod storage;
mod streaming;
mod tenancy;
mod trust;
mod up;
mod workloads;
