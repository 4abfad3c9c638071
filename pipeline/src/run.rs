//! `iocflow run`: both stages in one process, the metrics endpoint, and a clean shutdown.
//!
//! SIGTERM or Ctrl-C asks both stages to close their current micro-batch; each delivers it,
//! stores and commits its offsets, and returns. If a stage fails, the other is stopped the same
//! way and the process exits non-zero: the failed batch's offsets were never stored, so the
//! restart replays it.

use crate::columnar::ColumnarStage;
use crate::config::Config;
use crate::error::Result;
use crate::ingest::IngestStage;
use crate::kafka::topics;
use crate::telemetry::metrics::{self, Health, Metrics};
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

pub async fn run(config: Config) -> Result<()> {
    let config = Arc::new(config);
    topics::verify(&config).await?;
    let metrics = Metrics::new();
    let health = Arc::new(Health::default());
    let (stop, stopped) = watch::channel(false);
    let addr = metrics::serve(&config.metrics.listen, metrics.clone(), health.clone(), stopped.clone()).await?;
    eprintln!("iocflow: metrics on http://{addr}/metrics");

    let ingest = IngestStage::new(config.clone(), metrics.clone(), health.clone())?;
    let columnar = ColumnarStage::new(config.clone(), metrics.clone(), health.clone())?;
    let reloads = tokio::spawn(crate::columnar::table_reload::watch(
        config.clone(),
        columnar.tables(),
        metrics.clone(),
        stopped.clone(),
    ));
    let mut ingest = tokio::spawn(ingest.run(stopped.clone()));
    let mut columnar = tokio::spawn(columnar.run(stopped.clone()));
    health.set_running(true);
    tracing::info!(app_id = %config.app_id, "running");

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut results = Vec::new();
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = int.recv() => tracing::info!("SIGINT: draining"),
        r = &mut ingest => results.push(("ingest", r)),
        r = &mut columnar => results.push(("columnar", r)),
    }
    health.set_running(false);
    let _ = stop.send(true);
    if results.iter().all(|(stage, _)| *stage != "ingest") {
        results.push(("ingest", ingest.await));
    }
    if results.iter().all(|(stage, _)| *stage != "columnar") {
        results.push(("columnar", columnar.await));
    }
    for (stage, r) in results {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!("{stage} stage failed: {e}");
                return Err(e);
            }
            Err(join) => panic!("{stage} stage panicked: {join}"),
        }
    }
    reloads.abort();
    tracing::info!("stopped cleanly");
    Ok(())
}
