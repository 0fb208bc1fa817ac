use clap::Parser;

/// mimalloc instead of the system allocator: matching and ingest make millions of small
/// allocations, and glibc malloc spent about a third of a large matching run's CPU time
/// (docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = billrecon::cli::Cli::parse();
    match billrecon::cli::dispatch(cli).await {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
