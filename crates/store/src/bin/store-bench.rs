//! Throughput of the embedded store against a real etcd started on 127.0.0.1.
//!
//! Usage: store-bench [--ops N] [--value-size BYTES] [--concurrency C] [--rounds R]
//! Needs the `etcd` binary (PATH or $ETCD_BIN). Both stores seal values the same way.
//!
//! First a table of every operation (the embedded store's pass, then etcd's). Then the
//! concurrent-create row again, `--rounds` times with both stores open, the two alternating
//! (embedded first in even rounds, etcd first in odd ones) so that a machine whose load moves
//! during the run does not favour the store that happened to run in the quiet minute. The last
//! line is the group-commit check: the median of the per-round ratios, embedded/etcd, against
//! the 1.5x target.

use std::sync::Arc;
use std::time::{Duration, Instant};

use daas_store::etcd_server::EtcdProcess;
use daas_store::{EmbeddedOptions, EmbeddedStore, EtcdStore, SealingKey, Store};

struct Opts {
    ops: usize,
    value_size: usize,
    concurrency: usize,
    rounds: usize,
}

fn parse() -> Opts {
    let mut o = Opts {
        ops: 2000,
        value_size: 256,
        concurrency: 16,
        rounds: 7,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> usize {
            match args.next().and_then(|v| v.parse().ok()) {
                Some(n) if n > 0 => n,
                _ => {
                    eprintln!("{name} needs a positive number");
                    std::process::exit(2)
                }
            }
        };
        match a.as_str() {
            "--ops" | "-n" => o.ops = num("--ops"),
            "--value-size" => o.value_size = num("--value-size"),
            "--concurrency" => o.concurrency = num("--concurrency"),
            "--rounds" => o.rounds = num("--rounds"),
            "-h" | "--help" => {
                println!(
                    "usage: store-bench [--ops N] [--value-size BYTES] [--concurrency C] [--rounds R]"
                );
                std::process::exit(0)
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2)
            }
        }
    }
    o
}

/// Issue 15: concurrent creates at least this much faster than etcd.
const GROUP_COMMIT_TARGET: f64 = 1.5;

type DynResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Default, Clone)]
struct Row {
    name: String,
    ops: usize,
    secs: f64,
}

impl Row {
    fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.ops as f64 / self.secs
        } else {
            f64::INFINITY
        }
    }
}

fn row(name: &str, ops: usize, d: Duration) -> Row {
    Row {
        name: name.to_string(),
        ops,
        secs: d.as_secs_f64(),
    }
}

async fn run(store: Arc<dyn Store>, o: &Opts) -> DynResult<Vec<Row>> {
    let value = vec![0x5au8; o.value_size];
    let n = o.ops;
    let mut rows = Vec::new();
    let start_rev = store.current_revision().await?;

    // put: sequential creates.
    let t = Instant::now();
    for i in 0..n {
        store.create(&format!("/bench/seq/{i:08}"), &value).await?;
    }
    rows.push(row("put (sequential create)", n, t.elapsed()));

    // put: concurrent creates.
    rows.push(concurrent_creates(&store, o, "/bench/par/").await?);

    // update with CAS.
    let t = Instant::now();
    for i in 0..n {
        let k = format!("/bench/seq/{i:08}");
        let cur = store.get(&k).await?.ok_or("missing key")?;
        store.update(&k, &value, cur.mod_revision).await?;
    }
    rows.push(row("get+update (CAS)", n, t.elapsed()));

    // get: sequential point reads.
    let t = Instant::now();
    for i in 0..n {
        let kv = store.get(&format!("/bench/seq/{i:08}")).await?;
        if kv.is_none() {
            return Err("missing key".into());
        }
    }
    rows.push(row("get", n, t.elapsed()));

    // list: prefix with 100 keys, and the full prefix.
    let small = n.min(100);
    for i in 0..small {
        store
            .create(&format!("/bench/small/{i:04}"), &value)
            .await?;
    }
    let reps = (n / 10).max(10);
    let t = Instant::now();
    for _ in 0..reps {
        let l = store.list("/bench/small/").await?;
        if l.items.len() != small {
            return Err("short list".into());
        }
    }
    rows.push(row(&format!("list ({small} keys)"), reps, t.elapsed()));
    let reps_full = 10;
    let t = Instant::now();
    for _ in 0..reps_full {
        let l = store.list("/bench/seq/").await?;
        if l.items.len() != n {
            return Err("short list".into());
        }
    }
    rows.push(row(&format!("list ({n} keys)"), reps_full, t.elapsed()));

    // watch replay: every event since the start.
    let end_rev = store.current_revision().await?;
    let total = (end_rev - start_rev) as usize;
    let t = Instant::now();
    let mut w = store.watch("/bench/", start_rev).await?;
    for _ in 0..total {
        w.recv().await.ok_or("watch ended")?;
    }
    rows.push(row("watch replay (events)", total, t.elapsed()));
    drop(w);

    // watch live: one watcher, events delivered while a writer runs (bounded by write speed).
    let now = store.current_revision().await?;
    let mut w = store.watch("/bench/live/", now).await?;
    let writer = {
        let s = store.clone();
        let v = value.clone();
        tokio::spawn(async move {
            for i in 0..n {
                s.create(&format!("/bench/live/{i:08}"), &v).await?;
            }
            Ok::<_, daas_store::StoreError>(())
        })
    };
    let t = Instant::now();
    for _ in 0..n {
        tokio::time::timeout(Duration::from_secs(60), w.recv())
            .await?
            .ok_or("watch ended")?;
    }
    let d = t.elapsed();
    writer.await??;
    rows.push(row("watch live (events while writing)", n, d));
    Ok(rows)
}

/// `o.concurrency` tasks creating `o.ops` keys under `prefix` between them, each one write at a
/// time (a closed loop, like clients waiting for their answer).
async fn concurrent_creates(store: &Arc<dyn Store>, o: &Opts, prefix: &str) -> DynResult<Row> {
    let value = vec![0x5au8; o.value_size];
    let per = o.ops / o.concurrency.max(1);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..o.concurrency {
        let s = store.clone();
        let v = value.clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                s.create(&format!("{prefix}{w:03}-{i:08}"), &v).await?;
            }
            Ok::<_, daas_store::StoreError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(row(
        &format!("put (x{} concurrent)", o.concurrency),
        per * o.concurrency,
        t.elapsed(),
    ))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() -> DynResult<()> {
    let o = parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let key = SealingKey::generate();
        println!(
            "store-bench: ops={} value_size={}B concurrency={} rounds={} (values sealed with AES-256-GCM in both)",
            o.ops, o.value_size, o.concurrency, o.rounds
        );

        let dir = tempfile::tempdir()?;
        // STORE_BENCH_WAL_BYTES=0: no room in the log, every batch is a durable redb commit
        // (the store before the write-ahead log), for comparison.
        let mut options = EmbeddedOptions::default();
        if let Ok(v) = std::env::var("STORE_BENCH_WAL_BYTES") {
            options.wal_bytes = v.parse()?;
        }
        let opened = EmbeddedStore::open_with(dir.path(), key.clone(), options)?;
        let embedded: Arc<dyn Store> = Arc::new(opened.clone());
        eprintln!("running embedded (redb at {}) ...", dir.path().display());
        let emb = run(embedded.clone(), &o).await?;
        let writes = embedded.current_revision().await?;
        let commits = opened.commit_count();

        let etcd = EtcdProcess::start().await?;
        eprintln!("running etcd ({}, {}) ...", etcd.endpoint(), EtcdProcess::binary().display());
        let store: Arc<dyn Store> = Arc::new(EtcdStore::connect([etcd.endpoint()], key, "/daas-bench/").await?);
        let etc = run(store.clone(), &o).await;
        let etc = match etc {
            Ok(rows) => rows,
            Err(e) => {
                drop(store);
                drop(etcd);
                return Err(e);
            }
        };

        // The concurrent-create row again, alternating the two stores round by round.
        let mut rounds = Vec::new();
        for r in 0..o.rounds {
            let prefix = format!("/bench/round{r:03}/");
            let before = opened.commit_count();
            let rev0 = embedded.current_revision().await?;
            let (e, c) = if r % 2 == 0 {
                let e = concurrent_creates(&embedded, &o, &prefix).await?;
                (e, concurrent_creates(&store, &o, &prefix).await?)
            } else {
                let c = concurrent_creates(&store, &o, &prefix).await?;
                (concurrent_creates(&embedded, &o, &prefix).await?, c)
            };
            let per_commit = (embedded.current_revision().await? - rev0) as f64
                / (opened.commit_count() - before).max(1) as f64;
            eprintln!(
                "round {}: embedded {:.0} ops/s, etcd {:.0} ops/s, {:.2}x ({per_commit:.1} writes per durable commit)",
                r + 1,
                e.rate(),
                c.rate(),
                e.rate() / c.rate()
            );
            rounds.push((e, c));
        }
        drop(store);
        drop(etcd);
        drop(embedded);
        drop(opened);

        println!();
        println!("{:<36} {:>16} {:>16} {:>14}", "operation", "embedded ops/s", "etcd ops/s", "embedded/etcd");
        println!("{}", "-".repeat(36 + 16 + 16 + 14 + 3));
        for (e, c) in emb.iter().zip(etc.iter()) {
            println!("{:<36} {:>16.0} {:>16.0} {:>13.2}x", e.name, e.rate(), c.rate(), e.rate() / c.rate());
        }
        println!();
        println!("embedded: {writes} writes in {commits} durable commits (group commit)");
        println!();
        println!("{:<36} {:>16} {:>16} {:>14}", "interleaved rounds", "embedded ops/s", "etcd ops/s", "embedded/etcd");
        let mut ratios = Vec::new();
        for (i, (e, c)) in rounds.iter().enumerate() {
            let ratio = e.rate() / c.rate();
            ratios.push(ratio);
            println!("{:<36} {:>16.0} {:>16.0} {:>13.2}x", format!("{} round {}", e.name, i + 1), e.rate(), c.rate(), ratio);
        }
        // Row 1 is the concurrent creates; with rounds, their median decides.
        let (ratio, how) = if ratios.is_empty() {
            (emb[1].rate() / etc[1].rate(), "table row".to_string())
        } else {
            (median(ratios.clone()), format!("median of {} interleaved rounds", ratios.len()))
        };
        let verdict = if ratio >= GROUP_COMMIT_TARGET { "PASS" } else { "FAIL" };
        println!(
            "{}: embedded/etcd {ratio:.2}x, {how} (target >= {GROUP_COMMIT_TARGET}x) {verdict}",
            emb[1].name
        );
        Ok(())
    })
}
