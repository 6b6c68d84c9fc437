//! Stand-alone `airlock scan` for benchmarks and fuzz triage:
//! `cargo run --release -p airlock-scan --example airlock-scan -- [scan args]`.

use std::io::Write as _;

use clap::Parser;

#[derive(Parser)]
#[command(name = "airlock-scan")]
struct Cli {
    #[command(flatten)]
    args: airlock_scan::cli::ScanArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match airlock_scan::cli::run(&cli.args, &mut out) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "airlock: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
