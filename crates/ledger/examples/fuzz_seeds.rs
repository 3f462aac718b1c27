//! Writes the seed corpora of the `credential` and `sui_tx` fuzz targets (fuzz/): real
//! credentials and real signed transactions made by the same code the CLI uses.
//!
//! `cargo run -p daas-ledger --example fuzz_seeds -- fuzz/corpus` (scripts/fuzz-seeds.sh).

use std::path::{Path, PathBuf};

use daas_ledger::credential::{self, Claims};
use daas_ledger::keys::SuiKeypair;
use daas_ledger::tx::{self, Deployment, SharedRef, TxContext};
use sui_sdk_types::{Address, Digest, ObjectReference};

/// The clock and audience of fuzz/fuzz_targets/credential.rs.
const NOW_MS: u64 = 1_800_000_000_000;
const AUDIENCE: &str = "k3s-daas:fuzz";

fn write(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("seed-{name}")), data)
}

fn framed(mode: u8, sig: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut v = vec![mode];
    v.extend_from_slice(&u16::try_from(sig.len()).unwrap_or(u16::MAX).to_be_bytes());
    v.extend_from_slice(sig);
    v.extend_from_slice(rest);
    v
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let key = SuiKeypair::from_seed([7; 32]);
    let token = Address::new([9; 32]);

    let cred_dir = out.join("credential");
    let good = credential::issue(&key, token, AUDIENCE, NOW_MS - 1_000, 600_000)?;
    write(&cred_dir, "valid", format!("Bearer {good}").as_bytes())?;
    let expired = credential::issue(&key, token, AUDIENCE, NOW_MS - 700_000, 600_000)?;
    write(&cred_dir, "expired", format!("Bearer {expired}").as_bytes())?;
    let other = credential::issue(&key, token, "k3s-daas:other", NOW_MS, 60_000)?;
    write(&cred_dir, "audience", format!("Bearer {other}").as_bytes())?;
    let wrong_owner = credential::sign(
        &key,
        &Claims {
            v: 1,
            token,
            owner: Address::new([1; 32]),
            aud: AUDIENCE.into(),
            iat: NOW_MS,
            exp: NOW_MS + 1,
        },
    );
    write(
        &cred_dir,
        "owner",
        format!("Bearer {wrong_owner}").as_bytes(),
    )?;

    let tx_dir = out.join("sui_tx");
    let oref = |b: u8| ObjectReference::new(Address::new([b; 32]), 3, Digest::new([b; 32]));
    let shared = |b: u8| SharedRef {
        id: Address::new([b; 32]),
        initial_shared_version: 1,
    };
    let d = Deployment {
        package: Address::new([2; 32]),
        pool: shared(3),
        gateway: shared(4),
        admin_cap: Some(oref(5)),
        enclave_config: Some(shared(6)),
        market: Some(shared(8)),
    };
    let ctx = TxContext::new(key.address(), vec![oref(10)]);
    let txs = [
        ("stake", tx::stake(&ctx, &d, 1_000, 1, "node-1")?),
        ("token", tx::issue_seal_token(&ctx, &d)?),
        ("deposit", tx::deposit(&ctx, &d, 5)?),
        (
            "transfer",
            tx::transfer_sui(&ctx, &Address::new([11; 32]), 7)?,
        ),
    ];
    for (name, t) in &txs {
        let signed = tx::sign(t, &key)?;
        let body = serde_json::json!({
            "tx_bytes": signed.tx_bytes_base64(),
            "signatures": signed.signatures_base64(),
        });
        let mut json = vec![0u8];
        json.extend_from_slice(body.to_string().as_bytes());
        write(&tx_dir, &format!("{name}-json"), &json)?;
        write(
            &tx_dir,
            &format!("{name}-raw"),
            &framed(1, &signed.signatures[0], &signed.tx_bytes),
        )?;
    }
    let msg = b"{\"v\":1}";
    let sig = tx::sign_personal_message(msg, &key);
    write(&tx_dir, "personal", &framed(2, &sig, msg))?;
    Ok(())
}
