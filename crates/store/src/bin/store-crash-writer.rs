//! Test helper for crash-durability tests: opens an embedded store and writes keys forever,
//! printing `ACK <key> <value> <revision> <commits> <checkpoints>` on stdout after each
//! acknowledged write (`commits`: the store's durable commits so far; `checkpoints`: times the
//! write-ahead log started over).
//!
//! Usage: store-crash-writer <store-dir> <64-hex-char sealing key> [max-writes] [writers]
//!
//! With several writers (default 1) the writes run concurrently, so they share group commits;
//! their ACK lines interleave.
//!
//! Environment: `STORE_WAL_BYTES` sets the write-ahead log size (small: frequent checkpoints);
//! `STORE_CRASH_POINT=<mid-append|after-append|after-checkpoint>:<n>` makes the process abort
//! the (n+1)-th time it reaches that point (see `daas_store::wal::CrashPoint`).

use std::cell::Cell;
use std::io::Write;
use std::path::PathBuf;
use std::rc::Rc;

use daas_store::wal::{set_crash_point, CrashPoint};
use daas_store::{EmbeddedOptions, EmbeddedStore, SealingKey, Store};

fn usage() -> ! {
    eprintln!("usage: store-crash-writer <store-dir> <hex-key> [max-writes] [writers]");
    std::process::exit(2)
}

/// Write `/crash/<i>` for every `i` taken from `next` until `max`; 0 when done (or stdout
/// closed), 1 on a store error.
async fn writer(store: EmbeddedStore, next: Rc<Cell<u64>>, max: u64) -> i32 {
    let stdout = std::io::stdout();
    loop {
        let i = next.get();
        if i >= max {
            return 0;
        }
        next.set(i + 1);
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
        if writeln!(
            out,
            "ACK {key} {value} {} {} {}",
            kv.mod_revision,
            store.commit_count(),
            store.checkpoint_count()
        )
        .and_then(|_| out.flush())
        .is_err()
        {
            return 0;
        }
    }
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
    let writers: usize = match args.next() {
        Some(s) => match s.parse() {
            Ok(n) if n > 0 => n,
            _ => usage(),
        },
        None => 1,
    };
    let mut options = EmbeddedOptions::default();
    if let Ok(v) = std::env::var("STORE_WAL_BYTES") {
        options.wal_bytes = v.parse().unwrap_or_else(|_| usage());
    }
    if let Ok(v) = std::env::var("STORE_CRASH_POINT") {
        let (point, after) = v.split_once(':').unwrap_or_else(|| usage());
        let point = match point {
            "mid-append" => CrashPoint::MidAppend,
            "after-append" => CrashPoint::AfterAppend,
            "after-checkpoint" => CrashPoint::AfterCheckpoint,
            _ => usage(),
        };
        set_crash_point(point, after.parse().unwrap_or_else(|_| usage()));
    }
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
    let code = tokio::task::LocalSet::new().block_on(&rt, async move {
        let store = match EmbeddedStore::open_with(&dir, key, options) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("open: {e}");
                return 1;
            }
        };
        let next = Rc::new(Cell::new(0u64));
        let tasks: Vec<_> = (0..writers)
            .map(|_| tokio::task::spawn_local(writer(store.clone(), next.clone(), max)))
            .collect();
        let mut code = 0;
        for t in tasks {
            code = code.max(t.await.unwrap_or(1));
        }
        code
    });
    std::process::exit(code)
}
