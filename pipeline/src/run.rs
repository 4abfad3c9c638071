//! `iocflow run`: both stages in one process, the metrics endpoint, and a clean shutdown.
//!
//! When the [`Shutdown`] handed in is triggered (by `main` on SIGTERM or Ctrl-C, or by a test),
//! both stages close their current micro-batch; each delivers it, stores and commits its
//! offsets, and returns. If a stage fails, the other is stopped the same way and the run returns
//! the error: the failed batch's offsets were never stored, so the restart replays it.
//!
//! With no broker at start it waits, not ready, until one answers (see
//! `wait_for_broker_and_topics`).

use crate::columnar::stage::ColumnarStage;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ingest::stage::IngestStage;
use crate::kafka::micro_batch::{self, Stage, StageClients};
use crate::kafka::topics;
use crate::shutdown::Shutdown;
use crate::telemetry::metrics::{self, Health, Metrics};
use std::sync::Arc;
use std::time::Duration;

pub async fn run(config: Config, mut shutdown: Shutdown) -> Result<()> {
    let config = Arc::new(config);
    let metrics = Metrics::new();
    let health = Arc::new(Health::default());
    // The stages, the endpoint and the reloader stop on this one: asked for from outside, or
    // when a stage fails.
    let (stop, stopped) = Shutdown::new();
    let addr = metrics::serve(&config.metrics.listen, metrics.clone(), health.clone(), stopped.clone()).await?;
    eprintln!("iocflow: metrics on http://{addr}/metrics");
    if !wait_for_broker_and_topics(&config, &mut shutdown).await? {
        stop.trigger();
        tracing::info!("stopped before the broker answered");
        return Ok(());
    }

    let linger = config.batch.linger;
    let ingest = IngestStage::new(config.clone(), metrics.clone());
    let ingest_clients = StageClients::new(&config, IngestStage::NAME, &ingest.topics(), &metrics, health.clone())?;
    let columnar = ColumnarStage::new(config.clone(), metrics.clone(), health.clone())?;
    let indicators = config.indicators_topic();
    let columnar_clients =
        StageClients::new(&config, ColumnarStage::NAME, &[indicators.as_str()], &metrics, health.clone())?;
    let reloads = tokio::spawn(crate::columnar::table_reload::watch(
        config.clone(),
        columnar.tables(),
        metrics.clone(),
        stopped.clone(),
    ));
    let mut ingest = tokio::spawn(micro_batch::run(ingest, ingest_clients, linger, metrics.clone(), stopped.clone()));
    let mut columnar =
        tokio::spawn(micro_batch::run(columnar, columnar_clients, linger, metrics.clone(), stopped.clone()));
    health.set_running(true);
    tracing::info!(app_id = %config.app_id, "running");

    let mut results = Vec::new();
    tokio::select! {
        _ = shutdown.wait() => tracing::info!("shutdown: draining"),
        r = &mut ingest => results.push((IngestStage::NAME, r)),
        r = &mut columnar => results.push((ColumnarStage::NAME, r)),
    }
    health.set_running(false);
    stop.trigger();
    if results.iter().all(|(stage, _)| *stage != IngestStage::NAME) {
        results.push((IngestStage::NAME, ingest.await));
    }
    if results.iter().all(|(stage, _)| *stage != ColumnarStage::NAME) {
        results.push((ColumnarStage::NAME, columnar.await));
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

/// Waits until a broker answers and the topics are there, as long as it takes (README, "Starting
/// without a broker"): a broker that is down or not up yet, or topics a setup job has not made
/// yet, are retried with a pause growing from 1 s to 30 s, each attempt logged with the address
/// and the cause. Meanwhile `/healthz` answers 200 (the process is alive: no restart loop) and
/// `/readyz` 503. A refused client (SASL, TLS) or wrong topic settings end the wait with the
/// error: retrying cannot fix those. Returns false if shutdown was asked for meanwhile.
async fn wait_for_broker_and_topics(config: &Config, shutdown: &mut Shutdown) -> Result<bool> {
    let mut pause = Duration::from_secs(1);
    loop {
        let verified = tokio::select! {
            r = topics::verify(config, topics::Strictness::SizesWarn) => r,
            _ = shutdown.wait() => return Ok(false),
        };
        match verified {
            Ok(()) => return Ok(true),
            Err(e @ (Error::NoBroker(_) | Error::MissingTopics(_))) => {
                tracing::warn!("not starting yet, retrying in {} s: {e}", pause.as_secs());
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.wait() => return Ok(false),
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}
