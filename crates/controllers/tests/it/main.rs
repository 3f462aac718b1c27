//! All integration tests of this crate in one test binary (one link, one executable on disk);
//! nextest still runs every test in its own process.

mod cluster;
mod common;
mod crd_gc;
mod cronjobs;
mod csrsigning;
mod endpoints;
mod hpa;
mod ingress;
mod jobs;
mod leader;
mod namespace;
mod nodeipam;
mod nodelifecycle;
mod policy;
mod scale;
mod services;
mod shared;
mod storage;
mod workloads;
