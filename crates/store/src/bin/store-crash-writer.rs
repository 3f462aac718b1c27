//! Test helper for crash-durability tests: opens an embedded store and writes keys forever,
//! printing `ACK <key> <value>` on stdout after each acknowledged write.
//!
//! Usage: store-crash-writer <store-dir> <64-hex-char sealing key> [max-writes]

use std::io::Write;
use std::path::PathBuf;

use daas_store::{EmbeddedStore, SealingKey, Store};

fn usage() -> ! {
    eprintln!("usage: store-crash-writer <store-dir> <hex-key> [max-writes]");
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| usage()));
    let key = match args.next().map(|k| SealingKey::from_hex(&k)) {
        Some(Ok(k)) => k,
        _ => usage(),
    };
    let max: u64 = match args.next() {
        Some(s) => s.parse().unwrap_or_else(|_| usage()),
        None => u64::MAX,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(1)
        }
    };
    let code = rt.block_on(async move {
        let store = match EmbeddedStore::open(&dir, key) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("open: {e}");
                return 1;
            }
        };
        let stdout = std::io::stdout();
        let mut i = 0u64;
        while i < max {
            let key = format!("/crash/{i:08}");
            let value = format!("value-{i}-{}", "x".repeat((i % 64) as usize));
            let kv = match store.create(&key, value.as_bytes()).await {
                Ok(kv) => kv,
                Err(e) => {
                    eprintln!("write {key}: {e}");
                    return 1;
                }
            };
            let mut out = stdout.lock();
            if writeln!(out, "ACK {key} {value} {}", kv.mod_revision)
                .and_then(|_| out.flush())
                .is_err()
            {
                return 0;
            }
            i += 1;
        }
        0
    });
    std::process::exit(code)
}
