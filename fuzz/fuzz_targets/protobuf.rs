//! The Kubernetes protobuf decoder (`application/vnd.kubernetes.protobuf` request bodies):
//! the `k8s\0` magic, the `runtime.Unknown` envelope and the typed message of every built-in
//! kind it knows, into JSON. A decoded object must encode back to protobuf without panicking.
#![no_main]

use daas_apimachinery::protobuf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(obj) = protobuf::decode_object(data) {
        let _ = protobuf::encode_object(&obj);
    }
});
