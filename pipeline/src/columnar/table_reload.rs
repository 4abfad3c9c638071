//! Hot reload of the enrichment tables: on SIGHUP, or when a table file changes (checked every
//! `enrich.reload_seconds`), every table is loaded and checked again off the hot path and
//! staged; the columnar stage puts it in use between two batches. A file that does not load
//! keeps the tables in use, is logged with its file and line, and counts as a failed reload
//! (`iocflow_enrichment_reloads_total{result="failed"}`) for the operator's alert.

use crate::config::Config;
use crate::shutdown::Shutdown;
use crate::telemetry::metrics::Metrics;
use iocflow_enrichers::tables::{SharedTables, TableLoad, Tables};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::signal::unix::{SignalKind, signal};

/// What identifies a version of the table files: each file's modification time and size.
fn fingerprint(config: &Config) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let Ok(files) = config.table_files() else { return Vec::new() };
    files
        .paths()
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(p).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map_or(0, |m| m.len());
            (p.clone(), modified, len)
        })
        .collect()
}

/// Records how the tables loaded.
pub fn record_loads(metrics: &Metrics, loads: &[TableLoad]) {
    for l in loads {
        metrics.enrichment_table_entries.with_label_values(&[l.table]).set(l.entries as i64);
        metrics.enrichment_table_load_seconds.with_label_values(&[l.table]).set(l.seconds);
    }
}

/// Watches for SIGHUP and file changes until shutdown, staging every good reload in `tables`.
pub async fn watch(config: Arc<Config>, tables: SharedTables, metrics: Metrics, mut shutdown: Shutdown) {
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("no SIGHUP handler: enrichment tables reload on file changes only");
        return;
    };
    let every = config.enrich.reload.max(Duration::from_secs(1));
    let mut seen = fingerprint(&config);
    loop {
        let why = tokio::select! {
            _ = hangup.recv() => {
                seen = fingerprint(&config);
                "SIGHUP"
            }
            _ = tokio::time::sleep(every) => {
                let now = fingerprint(&config);
                if now == seen { continue; }
                seen = now;
                "a table file changed"
            }
            _ = shutdown.wait() => return,
        };
        let c = config.clone();
        let loaded = tokio::task::spawn_blocking(move || -> crate::Result<(Tables, Vec<TableLoad>)> {
            Ok(Tables::load(&c.table_files()?)?)
        })
        .await
        .expect("loading tables does not panic");
        match loaded {
            Ok((new, loads)) => {
                tables.stage(new);
                record_loads(&metrics, &loads);
                metrics.enrichment_reloads.with_label_values(&["ok"]).inc();
                tracing::info!(why, tables = loads.len(), "enrichment tables reloaded; in use from the next batch");
            }
            Err(e) => {
                metrics.enrichment_reloads.with_label_values(&["failed"]).inc();
                tracing::error!(why, "enrichment tables not reloaded, the ones in use stay: {e}");
            }
        }
    }
}
