//! The CRI v1 bindings in `src/runtime/cri_api/runtime.v1.rs` are generated from
//! `proto/runtime/v1/api.proto` and checked in, so that building the agent needs no `protoc`.
//! This test regenerates them with `tonic-prost-build` (which needs `protoc`) and fails when the
//! checked-in file differs. `DAAS_REGEN_CRI=1` writes the fresh output instead
//! (`scripts/regen-cri.sh`).

use std::path::{Path, PathBuf};

const GENERATED: &str = "src/runtime/cri_api/runtime.v1.rs";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn protoc_available() -> bool {
    let protoc = std::env::var_os("PROTOC").unwrap_or_else(|| "protoc".into());
    std::process::Command::new(protoc)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn generate(out: &Path) -> std::io::Result<String> {
    let root = manifest_dir();
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .build_transport(true)
        .emit_rerun_if_changed(false)
        .out_dir(out)
        .compile_protos(
            &[root.join("proto/runtime/v1/api.proto")],
            &[root.join("proto")],
        )?;
    std::fs::read_to_string(out.join("runtime.v1.rs"))
}

#[test]
fn checked_in_cri_bindings_match_the_proto() {
    assert!(
        protoc_available(),
        "protoc is needed to check the checked-in CRI bindings (Debian: protobuf-compiler); \
         building the agent itself does not need it"
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let fresh = generate(tmp.path()).expect("generating CRI bindings");
    assert!(
        fresh.contains("pub mod runtime_service_client")
            && fresh.contains("pub mod image_service_client"),
        "generated code lacks the CRI clients"
    );
    let path = manifest_dir().join(GENERATED);
    if std::env::var_os("DAAS_REGEN_CRI").is_some() {
        std::fs::write(&path, &fresh).expect("writing the regenerated bindings");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).expect("reading the checked-in bindings");
    assert!(
        checked_in == fresh,
        "{GENERATED} is stale: run scripts/regen-cri.sh and commit the result"
    );
}
