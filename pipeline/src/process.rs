//! `iocflow process`: the decode → dedupe → enrich → route path over a file, without Kafka.
//!
//! For backfills of feed archives, for trying a new feed's format before it goes live, and for
//! tests. The file is cut into records the way a producer would send it: a JSON document is one
//! record, JSON Lines are one record per line, and line-oriented formats (csv, lines) are cut
//! into chunks of lines (a CSV header is repeated in every chunk). Each CERT's records go to
//! `<output-dir>/<cert topic>.jsonl`, and the withheld and dead-letter records to
//! `withheld.jsonl` and `dlq.jsonl`. Record time is the file's modification time, so processing
//! the same file twice decides the same.

use crate::columnar::{ColumnarCore, ColumnarOutput};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ingest::{Feed, IngestBatch, Origin};
use iocflow_model::Country;
use iocflow_model::decode::Format;
use iocflow_model::time::Millis;
use rdkafka::message::Headers;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Lines per record for line-oriented formats.
const LINES_PER_RECORD: usize = 5_000;

/// What a run produced.
#[derive(Debug, Default)]
pub struct Summary {
    pub records: u64,
    pub reports: u64,
    pub per_cert: BTreeMap<Country, u64>,
    pub withheld: BTreeMap<String, u64>,
    pub dead_letters: BTreeMap<String, u64>,
    pub suppressed: u64,
}

/// Cuts a file's text into the records a producer would send.
pub fn records(format: Format, header: bool, text: &str) -> Vec<String> {
    match format {
        Format::Csv | Format::Lines => {
            let mut lines = text.lines();
            let head = if header {
                lines.by_ref().find(|l| !l.trim().is_empty() && !l.starts_with('#')).map(str::to_string)
            } else {
                None
            };
            let body: Vec<&str> = lines.collect();
            body.chunks(LINES_PER_RECORD)
                .map(|c| head.iter().map(String::as_str).chain(c.iter().copied()).collect::<Vec<_>>().join("\n"))
                .collect()
        }
        Format::Text => vec![text.to_string()],
        Format::Json | Format::Intelmq | Format::Stix2 | Format::Misp => {
            if serde_json::from_str::<&serde_json::value::RawValue>(text).is_ok() {
                vec![text.to_string()]
            } else {
                text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
            }
        }
    }
}

/// Runs one feed's file through the pipeline into `output_dir`.
pub fn process(config: &Config, feed_name: &str, input: &Path, output_dir: &Path) -> Result<Summary> {
    let feed_config = config
        .feeds
        .iter()
        .find(|f| f.name == feed_name)
        .ok_or_else(|| Error::Config(format!("no feed named {feed_name:?} (see [[feeds]] name)")))?;
    let feed = Feed::from(feed_config);
    let bytes = std::fs::read(input).map_err(Error::io(input.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let reported_at: Millis = std::fs::metadata(input)
        .and_then(|m| m.modified())
        .map_err(Error::io(input.display()))?
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis);
    let header = feed_config.csv.as_ref().is_some_and(|c| c.header);
    let records = records(feed_config.format, header, &text);
    let origin_name = format!("file:{}", input.display());

    std::fs::create_dir_all(output_dir).map_err(Error::io(output_dir.display()))?;
    let mut cert_files = config
        .certs
        .iter()
        .map(|c| Lines::create(&output_dir.join(format!("{}.jsonl", c.topic()))))
        .collect::<Result<Vec<_>>>()?;
    let mut withheld_file = Lines::create(&output_dir.join("withheld.jsonl"))?;
    let mut dlq_file = Lines::create(&output_dir.join("dlq.jsonl"))?;

    let mut core = ColumnarCore::new(config)?;
    let limits = config.limits.decode_limits();
    let mut summary = Summary::default();
    let mut batch = IngestBatch::new(1);
    let started = Instant::now();
    let mut last_progress = started;
    for (i, record) in records.iter().enumerate() {
        let origin = Origin { topic: &origin_name, partition: 0, offset: i as i64, timestamp: reported_at, key: None };
        batch.add(&feed, record.as_bytes(), origin, &limits, config.limits.dead_letter_max_bytes);
        summary.records += 1;
        if batch.rows() >= config.batch.max_rows || i + 1 == records.len() {
            flush(&mut batch, &mut core, &mut summary, &mut cert_files, &mut withheld_file, &mut dlq_file, config)?;
        }
        if last_progress.elapsed() > Duration::from_secs(2) {
            last_progress = Instant::now();
            eprintln!(
                "iocflow process: {}/{} records, {} reports, {:.0} reports/s",
                i + 1,
                records.len(),
                summary.reports,
                summary.reports as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    for f in cert_files.iter_mut().chain([&mut withheld_file, &mut dlq_file]) {
        f.flush()?;
    }
    Ok(summary)
}

/// An output file of JSON lines; its errors name it.
struct Lines {
    path: PathBuf,
    file: BufWriter<File>,
}

impl Lines {
    fn create(path: &Path) -> Result<Lines> {
        let file = File::create(path).map_err(Error::io(path.display()))?;
        Ok(Lines { path: path.to_path_buf(), file: BufWriter::new(file) })
    }

    fn line(&mut self, json: &[u8]) -> Result<()> {
        self.file.write_all(json).and_then(|()| self.file.write_all(b"\n")).map_err(Error::io(self.path.display()))
    }

    fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(Error::io(self.path.display()))
    }
}

#[allow(clippy::too_many_arguments)]
fn flush(
    batch: &mut IngestBatch,
    core: &mut ColumnarCore,
    summary: &mut Summary,
    cert_files: &mut [Lines],
    withheld_file: &mut Lines,
    dlq_file: &mut Lines,
    config: &Config,
) -> Result<()> {
    let mut out = ColumnarOutput::default();
    for builder in batch.builders.iter_mut() {
        if builder.rows() > 0 {
            summary.reports += builder.rows() as u64;
            core.process(0, &builder.finish()?, &mut out)?;
        }
    }
    let encoded = core.encode(&mut out)?;
    for (k, _key, json) in &encoded.cert_records {
        cert_files[*k].line(json)?;
        *summary.per_cert.entry(config.certs[*k].country).or_default() += 1;
    }
    for (_key, json) in &encoded.withheld {
        withheld_file.line(json)?;
    }
    for (reason, n) in &out.withheld_per_reason {
        *summary.withheld.entry(reason.as_str().to_string()).or_default() += n;
    }
    summary.suppressed += out.suppressed;
    // No changelog for files: taking the changes only keeps the state within its bounds.
    core.enforce_bounds();
    for dl in batch.dead_letters.drain(..) {
        let mut line: BTreeMap<String, String> = dl
            .headers
            .iter()
            .map(|h| {
                let key = h.key.trim_start_matches("iocflow.").to_string();
                (key, String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
            })
            .collect();
        *summary.dead_letters.entry(line.get("reason").cloned().unwrap_or_default()).or_default() += 1;
        line.insert("raw".into(), String::from_utf8_lossy(&dl.payload).into_owned());
        dlq_file.line(&serde_json::to_vec(&line).expect("a map of strings serialises"))?;
    }
    *batch = IngestBatch::new(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_cut_like_a_producer_would_send_them() {
        assert_eq!(records(Format::Json, false, "[{\"a\":1},\n{\"a\":2}]").len(), 1);
        assert_eq!(records(Format::Intelmq, false, "{\"a\":1}\n\n{\"a\":2}\n").len(), 2);
        let csv: String = std::iter::once("ioc,type".to_string())
            .chain((0..12_000).map(|i| format!("192.0.2.{},ipv4", i % 250)))
            .collect::<Vec<_>>()
            .join("\n");
        let chunks = records(Format::Csv, true, &csv);
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| c.starts_with("ioc,type\n")));
        assert_eq!(chunks.iter().map(|c| c.lines().count() - 1).sum::<usize>(), 12_000);
    }
}
