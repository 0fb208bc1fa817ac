use clap::Parser;

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
