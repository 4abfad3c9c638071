//! The `iocflow` command line: `run`, `check` and `topics` (see `iocflow --help`).

use clap::{Parser, Subcommand};
use iocflow::config::Config;
use iocflow::{Result, topics};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc: every batch allocates and frees many small records, which glibc's malloc served at
/// about a fifth of iocflow's CPU (measured with perf on `dev/bench-e2e`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "iocflow",
    version,
    about = "The regional threat-feed pipeline: feeds → dedupe → enrich → per-CERT topics under TLP."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run both stages until SIGTERM.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate the configuration and, unless --offline, the topics on the broker.
    Check {
        #[arg(long)]
        config: PathBuf,
        /// Check the file only; do not contact the broker.
        #[arg(long)]
        offline: bool,
    },
    /// Run one feed's file through decode → dedupe → enrich → route, without Kafka: one output
    /// file per CERT, plus the withheld records and the dead letters.
    Process {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        feed: String,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output_dir: PathBuf,
    },
    /// List (or create) every topic with partitions, retention and cleanup policy, and print
    /// the ACL bindings of each principal.
    Topics {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        create: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,librdkafka=warn,rdkafka=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(execute(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iocflow: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> Result<()> {
    match command {
        Command::Run { config } => iocflow::run::run(Config::load(&config)?).await,
        Command::Check { config, offline } => {
            let config = Config::load(&config)?;
            let (_, tables) = iocflow::enrich::Enrichment::new(&config)?;
            for t in tables {
                println!("table {}: {} entries, loaded in {:.3} s", t.table, t.entries, t.seconds);
            }
            if !offline {
                tokio::task::spawn_blocking(move || topics::verify(&config))
                    .await
                    .expect("topic check does not panic")?;
            }
            println!("ok");
            Ok(())
        }
        Command::Process { config, feed, input, output_dir } => {
            let config = Config::load(&config)?;
            let s = iocflow::process::process(&config, &feed, &input, &output_dir)?;
            println!("{} records, {} reports, {} suppressed as duplicates", s.records, s.reports, s.suppressed);
            for c in &config.certs {
                let n = s.per_cert.get(&c.country).copied().unwrap_or(0);
                println!("  {}  {:<24} {n:>8}", c.country, c.topic());
            }
            for (reason, n) in &s.withheld {
                println!("  withheld {reason:<18} {n:>8}");
            }
            for (reason, n) in &s.dead_letters {
                println!("  dead letter {reason:<15} {n:>8}");
            }
            println!("output in {}", output_dir.display());
            Ok(())
        }
        Command::Topics { config, create } => {
            let config = Config::load(&config)?;
            if create {
                for name in topics::create(&config).await? {
                    println!("created {name}");
                }
            }
            println!("{:<32} {:>10}  {:<15} {:>9}", "topic", "partitions", "cleanup.policy", "retention");
            for t in topics::plan(&config) {
                println!(
                    "{:<32} {:>10}  {:<15} {:>8}d",
                    t.name,
                    t.partitions,
                    t.cleanup_policy,
                    t.retention_ms / 86_400_000
                );
            }
            println!("\nACL bindings:");
            for line in topics::acl_bindings(&config) {
                println!("  {line}");
            }
            Ok(())
        }
    }
}
