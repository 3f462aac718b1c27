//! Service rule programming time (used by `scripts/bench-services.sh`): builds `count` Services
//! with two endpoints each (as Service and EndpointSlice objects), times the model, the table
//! generation, the first `nft` apply in network namespace `netns`, a re-apply after one endpoint
//! changed, and a drift check (list + compare). Service 0 is 10.43.200.1:80 and goes to
//! `endpoint` (ip:port, default 10.42.9.2:8080) only, so the script can send traffic through it.
//!
//! Usage: bench_proxy_rules <netns> [count] [endpoint]

use std::sync::Arc;
use std::time::Instant;

use daas_agent::net::nft::{Firewall, NftCli};
use daas_agent::net::proxy::model::service_ports;
use daas_agent::net::proxy::rules;
use daas_agent::net::proxy::sync::Programmer;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

fn objects(count: u32, endpoint: (&str, u16)) -> (Vec<Service>, Vec<EndpointSlice>) {
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for i in 0..count {
        let ip = format!("10.43.{}.{}", 200 + i / 250, 1 + i % 250);
        let name = format!("svc-{i}");
        let svc = json!({"metadata": {"namespace": "bench", "name": name},
            "spec": {"type": if i % 10 == 0 { "NodePort" } else { "ClusterIP" }, "clusterIP": ip,
                "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                    "nodePort": 30000 + i % 2000}]}});
        let eps = if i == 0 {
            json!([{"addresses": [endpoint.0], "conditions": {"ready": true}}])
        } else {
            json!([
                {"addresses": [format!("10.42.{}.{}", 1 + i % 200, 2 + i % 250)], "conditions": {"ready": true}},
                {"addresses": [format!("10.42.{}.{}", 1 + (i + 7) % 200, 2 + (i + 3) % 250)], "conditions": {"ready": true}},
            ])
        };
        let port = if i == 0 { endpoint.1 } else { 8080 };
        let slice = json!({"metadata": {"namespace": "bench", "name": format!("{name}-1"),
                "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": eps});
        services.push(serde_json::from_value(svc).expect("service"));
        slices.push(serde_json::from_value(slice).expect("slice"));
    }
    (services, slices)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(netns) = args.get(1).cloned() else {
        eprintln!("usage: bench_proxy_rules <netns> [count] [endpoint ip:port]");
        std::process::exit(2);
    };
    let count: u32 = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(1000);
    let endpoint = args.get(3).cloned().unwrap_or("10.42.9.2:8080".into());
    let (ep_ip, ep_port) = endpoint
        .rsplit_once(':')
        .and_then(|(i, p)| Some((i, p.parse::<u16>().ok()?)))
        .unwrap_or(("10.42.9.2", 8080));
    let (services, mut slices) = objects(count, (ep_ip, ep_port));
    let gw = std::net::Ipv4Addr::new(10, 42, 9, 1);

    let t = Instant::now();
    let ports = service_ports(&services, &slices, "bench-node", gw);
    let model_ms = ms(t);
    let t = Instant::now();
    let table = rules::table(&ports);
    let gen_ms = ms(t);

    let nft = Arc::new(NftCli {
        netns: Some(netns),
        ..Default::default()
    });
    let mut p = Programmer::new(nft.clone());
    let t = Instant::now();
    if let Err(e) = p.sync(table, false).await {
        eprintln!("apply failed: {e}");
        std::process::exit(1);
    }
    let apply_ms = ms(t);

    // One endpoint changes: a full re-generation and re-apply.
    if let Some(s) = slices.get_mut(count as usize / 2) {
        s.endpoints[0].addresses = vec!["10.42.250.250".into()];
    }
    let t = Instant::now();
    let table = rules::table(&service_ports(&services, &slices, "bench-node", gw));
    let reapply = p.sync(table.clone(), false).await;
    let reapply_ms = ms(t);
    let t = Instant::now();
    let drift = p.sync(table, true).await;
    let check_ms = ms(t);
    if let Err(e) = reapply.and(drift) {
        eprintln!("re-apply failed: {e}");
        std::process::exit(1);
    }
    let listed = nft
        .list(rules::FAMILY, rules::TABLE)
        .await
        .ok()
        .flatten()
        .map(|l| l.lines().count())
        .unwrap_or(0);
    println!(
        "services={count} service_ports={} table_lines={listed}",
        ports.len()
    );
    println!("model_ms={model_ms:.1}");
    println!("generate_ms={gen_ms:.1}");
    println!("first_apply_ms={apply_ms:.1}");
    println!("update_one_endpoint_ms={reapply_ms:.1}");
    println!("drift_check_ms={check_ms:.1}");
}
