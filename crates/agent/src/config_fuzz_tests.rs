//! Fuzzing of the staker config parse and validation (issue 17), as proptest properties: the
//! agent crate's dependency tree (kube, k8s-openapi, tonic, boringtun) is too large for the
//! cargo-fuzz CI budget of scripts/fuzz.sh, so the config file is fuzzed here, in the normal
//! test suite. Any input must give a `ConfigError` or a config, never a panic.

use super::*;
use proptest::prelude::*;
use serde_json::{json, Value};

fn base() -> Value {
    json!({
        "node_id": "worker-1",
        "sui_private_key": SuiKeypair::from_seed([7; 32]).to_suiprivkey(),
        "sui_rpc_endpoint": "http://127.0.0.1:9100",
        "stake_amount": 1000,
        "nautilus_endpoint": "https://127.0.0.1:6443",
    })
}

/// Every field of the file, so the mutations below reach each validation.
const FIELDS: &[&str] = &[
    "node_id",
    "sui_wallet_address",
    "sui_private_key",
    "sui_key_file",
    "sui_rpc_endpoint",
    "stake_amount",
    "contract_address",
    "nautilus_endpoint",
    "container_runtime",
    "min_stake_amount",
    "data_dir",
    "trust_root",
    "expected_pcrs",
    "node_ip",
    "kubelet_port",
    "images_dir",
    "insecure_registries",
    "allow_host_ports",
    "disable_network_policy",
    "pod_cidr",
    "flannel_backend",
    "wireguard_port",
    "heartbeat_seconds",
    "bridge_name",
    "system_reserved_cpu_millis",
    "system_reserved_memory_mib",
    "shutdown_grace_period_seconds",
    "shutdown_grace_period_critical_pods_seconds",
    "cluster_domain",
    "cluster_dns",
    "resolv_conf",
    "dns_forwarders",
    "cluster_dns_server",
    "ingress_http_port",
    "ingress_https_port",
    "service_proxy",
    "proxy_sync_seconds",
];

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".*".prop_map(Value::from),
        "[a-z0-9./:-]{0,40}".prop_map(Value::from),
        "(suiprivkey1|0x)?[a-z0-9]{0,70}".prop_map(Value::from),
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(/[0-9]{1,2}|:[0-9]{1,6})?"
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[0-9a-z]{0,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Parse and validate as `AgentConfig::load` does (the file's bytes, then `resolve`).
fn load(bytes: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<AgentConfig, ConfigError> {
    let file: StakerConfigFile =
        serde_json::from_slice(bytes).map_err(|source| ConfigError::Json {
            path: "fuzz.json".into(),
            source,
        })?;
    AgentConfig::resolve(file, Path::new("/nonexistent/fuzz"), env)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes: a typed error or a config, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = load(&bytes, &|_| None);
    }

    /// A valid file with some fields replaced by arbitrary JSON and arbitrary environment
    /// overrides: a typed error or a config, never a panic.
    #[test]
    fn mutated_fields_never_panic(
        edits in prop::collection::vec((0..FIELDS.len(), value()), 1..6),
        min_stake in proptest::option::of(".{0,24}"),
        rpc in proptest::option::of(".{0,24}"),
        masters in proptest::option::of("[a-z0-9:/.,]{0,40}"),
    ) {
        let mut v = base();
        for (i, val) in edits {
            v[FIELDS[i]] = val;
        }
        let env = |name: &str| match name {
            "MIN_STAKE_AMOUNT" => min_stake.clone(),
            "SUI_RPC_ENDPOINT" => rpc.clone(),
            "NAUTILUS_ENDPOINT" => masters.clone(),
            _ => None,
        };
        let bytes = serde_json::to_vec(&v).unwrap_or_default();
        if let Ok(cfg) = load(&bytes, &env) {
            // What resolve accepted holds its invariants.
            prop_assert!(valid_node_name(&cfg.node_id));
            prop_assert!(cfg.stake_amount >= cfg.min_stake_amount);
            prop_assert!(cfg.shutdown.critical <= cfg.shutdown.total);
            prop_assert!(!cfg.master_urls.is_empty());
        }
    }
}

#[test]
fn the_base_file_resolves() {
    let bytes = serde_json::to_vec(&base()).unwrap();
    load(&bytes, &|_| None).unwrap();
}
