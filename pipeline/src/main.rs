//! The `iocflow` command line: `run`, `check`, `process`, `topics`, `acls`, `state` and `explain`
//! (see `iocflow --help`).

use clap::{Parser, Subcommand};
use iocflow::config::Config;
use iocflow::explain::Query;
use iocflow::kafka::acls::{self, Comparison};
use iocflow::kafka::client_properties::ClientProperties;
use iocflow::kafka::{acl_admin, topics};
use iocflow::shutdown::Shutdown;
use iocflow::{Error, Result};
use iocflow_model::{Country, IndicatorId, IndicatorType};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};

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
        /// The configuration file (TOML, or JSON when it ends in `.json`).
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate the configuration and, unless --offline, the topics on the broker (and, with
    /// --admin, its ACLs against the plan).
    Check {
        /// The configuration file (TOML, or JSON when it ends in `.json`).
        #[arg(long)]
        config: PathBuf,
        /// Check the file only; do not contact the broker.
        #[arg(long, conflicts_with = "admin")]
        offline: bool,
        /// Also verify the broker's ACLs against the plan, as this identity (a librdkafka
        /// properties file; see `acls --admin`).
        #[arg(long, value_name = "PROPS")]
        admin: Option<PathBuf>,
    },
    /// Run one feed's file through decode → dedupe → enrich → route, without Kafka: one output
    /// file per CERT, plus the withheld records and the dead letters.
    Process {
        /// The configuration file (TOML, or JSON when it ends in `.json`).
        #[arg(long)]
        config: PathBuf,
        /// The `[[feeds]]` name whose format and defaults apply.
        #[arg(long)]
        feed: String,
        /// The feed file, as its producer would send it.
        #[arg(long)]
        input: PathBuf,
        /// Where the per-CERT, withheld and dead-letter files go.
        #[arg(long)]
        output_dir: PathBuf,
    },
    /// List (or create) every topic with partitions, retention and cleanup policy.
    Topics {
        /// The configuration file (TOML, or JSON when it ends in `.json`).
        #[arg(long)]
        config: PathBuf,
        /// Create the missing topics (as iocflow's own principal; the ACL plan grants it CREATE
        /// on exactly these) and check the settings of those that exist.
        #[arg(long)]
        create: bool,
    },
    /// The least-privilege ACL plan of every principal: print it, apply it, or verify the
    /// broker's ACLs against it.
    Acls {
        /// The configuration file (TOML, or JSON when it ends in `.json`).
        #[arg(long)]
        config: PathBuf,
        /// How to print the plan: iocflow's lines, or `kafka-acls.sh` command lines.
        #[arg(long, value_enum, default_value = "plan")]
        format: AclFormat,
        /// Create the plan's missing bindings on the broker (idempotent).
        #[arg(long, requires = "admin", conflicts_with = "verify")]
        apply: bool,
        /// Exit 1 listing the plan's missing bindings and those beyond it that reach this
        /// config's topics, groups or transactional ids (or the cluster). The default with --admin.
        #[arg(long, requires = "admin")]
        verify: bool,
        /// A librdkafka properties file (`name=value`; `${env:NAME}` and `${file:/path}` values)
        /// of an identity that may create and describe ACLs. Its bootstrap.servers defaults to
        /// the config's.
        #[arg(long, value_name = "PROPS")]
        admin: Option<PathBuf>,
    },
    /// Why each CERT did or did not receive an indicator: its state in `<app>.state` (one
    /// partition, committed records), its enrichment, and the routing policy's reasons.
    Explain {
        /// The configuration file (TOML, or JSON when it ends in `.json`).
        #[arg(long)]
        config: PathBuf,
        /// The indicator's id (32 hex digits, as the CERT records' `id`).
        #[arg(long, conflicts_with_all = ["kind", "value"], required_unless_present = "value")]
        id: Option<String>,
        /// The indicator's type (`domain`, `ipv4`, `url`, `sha256` …), with --value.
        #[arg(long = "type", value_name = "TYPE", requires = "value")]
        kind: Option<String>,
        /// The indicator's value as a feed would write it (defanged and any case accepted).
        #[arg(long, requires = "kind")]
        value: Option<String>,
        /// Only this CERT (its country code).
        #[arg(long, value_name = "CC")]
        cert: Option<String>,
        /// One JSON object (schemas/explain.schema.json) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Read or rewrite the dedupe state in `<app>.state` (committed records, to the end).
    State {
        #[command(subcommand)]
        action: StateAction,
    },
}

#[derive(Subcommand)]
enum StateAction {
    /// Print each indicator's entry as one JSON line (`{"partition", "id", "entry"}`), whatever
    /// format the changelog holds it in.
    Dump {
        /// The configuration file (TOML, or JSON when it ends in `.json`).
        #[arg(long)]
        config: PathBuf,
        /// Only these partitions of `<app>.state` (all by default).
        #[arg(long, value_delimiter = ',')]
        partition: Vec<i32>,
        /// Only this indicator: its id (32 hex digits, as the CERT records' `id`).
        #[arg(long)]
        id: Option<String>,
    },
    /// Write every entry again in `dedupe.changelog_format` (to roll back to a version that reads
    /// JSON entries only: README, "Upgrade"). Stop every replica first.
    Rewrite {
        /// The configuration file (TOML, or JSON when it ends in `.json`).
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AclFormat {
    /// One binding a line: `ALLOW <principal> <OPERATION> <RESOURCE> <name> (<pattern>)`.
    Plan,
    /// `kafka-acls.sh --add …` command lines.
    KafkaAcls,
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
        Command::Run { config } => {
            let config = Config::load(&config)?;
            let (trigger, shutdown) = Shutdown::new();
            let mut term = signal(SignalKind::terminate()).map_err(Error::io("the SIGTERM handler"))?;
            let mut int = signal(SignalKind::interrupt()).map_err(Error::io("the SIGINT handler"))?;
            tokio::spawn(async move {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM"),
                    _ = int.recv() => tracing::info!("SIGINT"),
                }
                trigger.trigger();
            });
            iocflow::run::run(config, shutdown).await
        }
        Command::Check { config, offline, admin } => {
            let config = Config::load(&config)?;
            let (_, tables) = iocflow::columnar::enrich::Enrichment::new(&config)?;
            for t in tables {
                println!("table {}: {} entries, loaded in {:.3} s", t.table, t.entries, t.seconds);
            }
            if !offline {
                topics::verify(&config, topics::Strictness::SizesFail).await?;
            }
            if let Some(admin) = admin {
                let admin = ClientProperties::load(&admin)?;
                let comparison = blocking(move || acl_admin::check(&config, &admin)).await?;
                report_acls(&comparison)?;
            }
            println!("ok");
            Ok(())
        }
        Command::Process { config, feed, input, output_dir } => {
            let config = Config::load(&config)?;
            let s = iocflow::process::process(&config, &feed, &input, &output_dir)?;
            // Suppressed: a CERT may see the report, but its view is no news (a duplicate, or with
            // `[decay]` a view already expired when it arrived).
            println!("{} records, {} reports, {} suppressed (no news to any CERT)", s.records, s.reports, s.suppressed);
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
        Command::State { action: StateAction::Dump { config, partition, id } } => {
            let config = Config::load(&config)?;
            let only = id.as_deref().map(parse_id).transpose()?;
            // With --id, only its partition is read.
            let partitions = match only {
                Some(id) => vec![id.partition(config.kafka.partitions) as i32],
                None => partition,
            };
            let written = blocking(move || {
                iocflow::state::changelog::dump(&config, &partitions, only, &mut std::io::stdout().lock())
            })
            .await?;
            eprintln!("{written} entries");
            Ok(())
        }
        Command::Explain { config, id, kind, value, cert, json } => {
            let config = Config::load(&config)?;
            let query = match (id, kind, value) {
                (Some(hex), _, _) => Query::Id(parse_id(&hex)?),
                (None, Some(kind), Some(value)) => Query::Value {
                    kind: IndicatorType::parse(&kind).map_err(|_| {
                        Error::Config(format!(
                            "--type {kind:?}: not an indicator type ({})",
                            IndicatorType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
                        ))
                    })?,
                    value,
                },
                _ => return Err(Error::Config("give --id, or --type and --value".into())),
            };
            let only = cert
                .map(|cc| {
                    Country::parse(&cc)
                        .ok_or_else(|| Error::Config(format!("--cert {cc:?}: not a two-letter country code")))
                })
                .transpose()?;
            let answer = blocking(move || iocflow::explain::explain(&config, &query, only)).await?;
            if json {
                let text = serde_json::to_string_pretty(&answer)
                    .map_err(|e| Error::Unexpected(format!("the explanation as JSON: {e}")))?;
                println!("{text}");
            } else {
                print!("{}", iocflow::explain::to_text(&answer));
            }
            Ok(())
        }
        Command::State { action: StateAction::Rewrite { config } } => {
            let config = Config::load(&config)?;
            let format = config.dedupe.changelog_format;
            let written = blocking(move || iocflow::state::changelog::rewrite(&config)).await?;
            println!("rewrote {written} entries as {format:?}");
            Ok(())
        }
        Command::Topics { config, create } => {
            let config = Config::load(&config)?;
            if create {
                for name in topics::create(&config).await? {
                    println!("created {name}");
                }
            }
            println!(
                "{:<32} {:>10}  {:<15} {:>9}  {:>17}",
                "topic", "partitions", "cleanup.policy", "retention", "max.message.bytes"
            );
            for t in topics::plan(&config) {
                let retention = if t.retention_ms == 0 {
                    "forever".to_string()
                } else {
                    format!("{}d", t.retention_ms / 86_400_000)
                };
                println!(
                    "{:<32} {:>10}  {:<15} {:>9}  {:>17}",
                    t.name, t.partitions, t.cleanup_policy, retention, t.max_message_bytes
                );
            }
            Ok(())
        }
        Command::Acls { config, format, apply, verify: _, admin } => {
            let config = Config::load(&config)?;
            let Some(admin) = admin else {
                for b in acls::plan(&config) {
                    match format {
                        AclFormat::Plan => println!("{b}"),
                        AclFormat::KafkaAcls => println!("{}", b.kafka_acls_line(&config.kafka.bootstrap_servers)),
                    }
                }
                return Ok(());
            };
            let admin = ClientProperties::load(&admin)?;
            if apply {
                let applied = blocking(move || acl_admin::apply(&config, &admin)).await?;
                for b in &applied.created {
                    println!("created {b}");
                }
                println!("{} binding(s) created, the plan is applied", applied.created.len());
                for b in &applied.comparison.beyond {
                    println!("warning: beyond the plan: {b}");
                }
                return Ok(());
            }
            // --verify (also what --admin alone does).
            let comparison = blocking(move || acl_admin::check(&config, &admin)).await?;
            report_acls(&comparison)?;
            println!("ok: the broker holds every binding of the plan and none beyond it");
            Ok(())
        }
    }
}

/// Prints how the broker's ACLs differ from the plan; an error if they do.
fn report_acls(comparison: &Comparison) -> Result<()> {
    if comparison.is_clean() {
        return Ok(());
    }
    if !comparison.missing.is_empty() {
        println!("missing (in the plan, not on the broker):");
        for b in &comparison.missing {
            println!("  {b}");
        }
    }
    if !comparison.beyond.is_empty() {
        println!("beyond the plan (access for a principal of this config, or User:*, that the plan does not grant):");
        for b in &comparison.beyond {
            println!("  {b}");
        }
    }
    Err(Error::Acls(format!(
        "the broker's ACLs differ from the plan: {} missing, {} beyond it",
        comparison.missing.len(),
        comparison.beyond.len()
    )))
}

/// An indicator id given on the command line.
fn parse_id(hex: &str) -> Result<IndicatorId> {
    IndicatorId::from_hex(hex).ok_or_else(|| Error::Config(format!("--id {hex:?}: an indicator id is 32 hex digits")))
}

/// Runs blocking Kafka work (librdkafka's synchronous admin calls) off the executor.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.expect("blocking Kafka work does not panic")
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command and every option says what it does in `--help`.
    #[test]
    fn every_command_and_option_has_a_help_line() {
        let cli = Cli::command();
        cli.clone().debug_assert();
        let mut missing = Vec::new();
        for command in cli.get_subcommands() {
            if command.get_about().is_none() {
                missing.push(command.get_name().to_string());
            }
            for arg in command.get_arguments().filter(|a| !matches!(a.get_id().as_str(), "help" | "version")) {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{} --{}", command.get_name(), arg.get_id()));
                }
            }
        }
        assert!(cli.get_subcommands().count() >= 5);
        assert!(missing.is_empty(), "no help line: {missing:?}");
    }
}
