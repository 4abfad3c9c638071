//! The columnar stage without Kafka or codecs' I/O: a 4,096-row indicator batch through state,
//! enrichment and routing (with and without CERT filters), against the cost of building the batch
//! as a baseline.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use iocflow::columnar::{ColumnarCore, ColumnarOutput};
use iocflow::indicator_batch::IndicatorBatchBuilder;
use iocflow_benches::{asean_config, canonical_json_lines};
use iocflow_model::Tlp;
use iocflow_model::decode::{Decoder, FeedDefaults, Limits, decode};

fn columnar(c: &mut Criterion) {
    let record = canonical_json_lines(4096, 30, 11).join("\n").into_bytes();
    let defaults = FeedDefaults { tlp: Tlp::Green, confidence: Some(50) };
    let reports = decode(&Decoder::Json(None), &record, &Limits::default(), &defaults).reports;
    let build = || {
        let mut b = IndicatorBatchBuilder::new();
        for (i, r) in reports.iter().enumerate() {
            b.push(r, "bench", "Bench", 1_714_557_600_000 + i as i64);
        }
        b.finish().unwrap()
    };
    let config = asean_config();
    let mut g = c.benchmark_group("columnar");
    g.throughput(Throughput::Elements(reports.len() as u64));
    g.bench_function("build_batch/4096 (baseline)", |b| b.iter(build));
    g.bench_function("process/4096 (fresh state)", |b| {
        b.iter_batched(
            || (ColumnarCore::new(&config).unwrap(), build()),
            |(mut core, batch)| {
                let mut out = ColumnarOutput::default();
                core.process(0, &batch, &mut out).unwrap();
                out
            },
            BatchSize::LargeInput,
        )
    });
    // Every CERT with a filter: each visible view becomes a candidate record, laid out as an
    // Arrow batch per CERT and judged by the DataFusion-compiled filter.
    let mut filtered = config.clone();
    for cert in &mut filtered.certs {
        cert.filter = Some("confidence >= 40 AND NOT array_has(countries, 'US')".into());
    }
    g.bench_function("process/4096 (fresh state, every CERT filtered)", |b| {
        b.iter_batched(
            || (ColumnarCore::new(&filtered).unwrap(), build()),
            |(mut core, batch)| {
                let mut out = ColumnarOutput::default();
                core.process(0, &batch, &mut out).unwrap();
                out
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, columnar);
criterion_main!(benches);
