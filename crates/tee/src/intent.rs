/// BCS encoding of a Nautilus `IntentMessage<T> { intent: u8, timestamp_ms: u64, data: T }`, given
/// the already BCS-encoded `data`. This is the message the enclave key signs (Ed25519, no extra
/// hashing), as checked on chain by `enclave::verify_signature`.
pub fn intent_message_bcs(intent: u8, timestamp_ms: u64, data_bcs: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 8 + data_bcs.len());
    out.push(intent);
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    out.extend_from_slice(data_bcs);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let m = intent_message_bcs(7, 0x0102, &[0xaa, 0xbb]);
        assert_eq!(m, vec![7, 0x02, 0x01, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb]);
    }
}
