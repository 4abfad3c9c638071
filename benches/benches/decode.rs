//! Decode throughput of canonical JSON: one 4,096-line JSON Lines record, as a feed producer
//! batching its output would send it.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iocflow_benches::canonical_json_lines;
use iocflow_model::Tlp;
use iocflow_model::decode::{FeedDefaults, Format, Limits, decode};

fn canonical_json(c: &mut Criterion) {
    let record = canonical_json_lines(4096, 30, 7).join("\n").into_bytes();
    let defaults = FeedDefaults { tlp: Tlp::Green, confidence: Some(50) };
    let limits = Limits::default();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(4096));
    g.bench_function("canonical_json/4096", |b| {
        b.iter(|| {
            let d = decode(Format::Json, &record, &limits, &defaults);
            assert_eq!(d.reports.len(), 4096);
            d
        })
    });
    g.throughput(Throughput::Bytes(record.len() as u64));
    g.bench_function("canonical_json/bytes", |b| b.iter(|| decode(Format::Json, &record, &limits, &defaults)));
    g.finish();
}

criterion_group!(benches, canonical_json);
criterion_main!(benches);
