//! End-to-end benchmark: ingest and match N payments against M open bills on SQLite, through
//! exactly the path the daemon uses (archive, streaming parse, one transaction per file,
//! batched matching), then verify.
//!
//! `cargo bench --bench ingest_match` (defaults: 1,000,000 payments, 1,000,000 bills,
//! 500,000 customers). Smaller runs: `BENCH_PAYMENTS=100000 BENCH_BILLS=100000
//! BENCH_CUSTOMERS=50000 cargo bench --bench ingest_match`.
//!
//! Reports payments per second and the peak resident memory (VmHWM) of the process that
//! ingests and matches; the imports run before, in a `billrecon` child process, so their
//! memory is not counted.

/// The same allocator as the `billrecon` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use billrecon::app::App;
use billrecon::config::Config;
use std::path::PathBuf;
use std::time::Instant;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn main() -> anyhow::Result<()> {
    let payments = env("BENCH_PAYMENTS", 1_000_000);
    let bills = env("BENCH_BILLS", 1_000_000);
    let customers = env("BENCH_CUSTOMERS", 500_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let data = root.join(format!("data-{customers}-{bills}-{payments}"));
    if !data.join("bills.csv").exists() {
        let t = Instant::now();
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_billrecon"))
            .args([
                "gen",
                "--customers",
                &customers.to_string(),
                "--bills",
                &bills.to_string(),
            ])
            .args(["--payments", &payments.to_string(), "--out"])
            .arg(&data)
            .status()?;
        anyhow::ensure!(status.success(), "gen failed");
        println!(
            "generated data set in {:.1}s: {}",
            t.elapsed().as_secs_f64(),
            data.display()
        );
    }
    let work = root.join("run");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    // BENCH_CONFIG: more config tables, e.g. "[dunning]\nlate_fee_collect = 'off'" to compare
    // a run without late fees
    let extra = std::env::var("BENCH_CONFIG").unwrap_or_default();
    let toml = format!(
        "[storage]\ndatabase_url = \"sqlite://{}\"\ndata_dir = \"{}\"\n[log]\nlevel = \"warn\"\n{extra}\n\
         [[bank]]\nid = \"GEN\"\nname = \"generated\"\nformat = \"camt054\"\n",
        work.join("bench.db").display(),
        work.join("data").display()
    );
    let config_path = work.join("bench.toml");
    std::fs::write(&config_path, &toml)?;
    let t = Instant::now();
    for (what, file) in [("customers", "customers.csv"), ("bills", "bills.csv")] {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_billrecon"))
            .arg("--config")
            .arg(&config_path)
            .args([what, "import"])
            .arg(data.join(file))
            .status()?;
        anyhow::ensure!(status.success(), "{what} import failed");
    }
    println!(
        "import {customers} customers + {bills} bills (billrecon child process): {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let config = Config::from_toml(&toml, "bench config")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = App::build(config).await?;

        let mut files: Vec<PathBuf> = std::fs::read_dir(&data)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "xml"))
            .collect();
        files.sort();
        let bank = app.bank("GEN")?.clone();
        let t = Instant::now();
        for f in &files {
            billrecon::ingest::ingest_file(&app.store, &app.config.storage.data_dir, &bank, f, app.config.ledger.currency)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        }
        let ingest_secs = t.elapsed().as_secs_f64();
        let summary = app.match_pending().await?;
        let secs = t.elapsed().as_secs_f64();
        println!("ingest {ingest_secs:.1}s, match {:.1}s", secs - ingest_secs);
        let peak = peak_rss_mb();
        println!("{summary}");
        println!(
            "ingest+match {} payments in {} files: {secs:.1}s, {:.0} payments/s, peak RSS {peak:.0} MB",
            summary.processed,
            files.len(),
            summary.processed as f64 / secs
        );
        let t = Instant::now();
        let report = billrecon::ledger::verify(&app.store).await?;
        println!("verify: {} in {:.1}s", if report.ok { "OK" } else { "FAILED" }, t.elapsed().as_secs_f64());
        anyhow::ensure!(report.ok, "{report}");
        Ok(())
    })
}
