//! Decode throughput per feed format: the same 4,096 indicators written in each format, one
//! record each, as a batching producer would send them. Reported as indicators/s and bytes/s;
//! compare formats with each other and with the canonical-JSON baseline of the same run.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iocflow_benches::{canonical_json_lines, formats};
use iocflow_model::Tlp;
use iocflow_model::decode::delimited::{Column, CsvOptions};
use iocflow_model::decode::{Decoder, FeedDefaults, Limits, decode};

const N: usize = 4096;

fn per_format(c: &mut Criterion) {
    let defaults = FeedDefaults { tlp: Tlp::Green, confidence: Some(50) };
    let limits = Limits { max_record_bytes: 64 << 20, ..Limits::default() };
    let csv = CsvOptions {
        first_seen: Some(Column::Index(1)),
        threat: Some(Column::Index(5)),
        tags: Some(Column::Index(6)),
        ..CsvOptions::new(Column::Index(2))
    };
    let cases: Vec<(&str, Decoder, String)> = vec![
        ("json (canonical, baseline)", Decoder::Json(None), canonical_json_lines(N, 0, 7).join("\n")),
        ("intelmq", Decoder::Intelmq, formats::intelmq(&formats::distinct(N))),
        ("stix2", Decoder::Stix2, formats::stix2(&formats::distinct(N))),
        ("misp", Decoder::Misp(Default::default()), formats::misp(&formats::distinct(N))),
        ("csv", Decoder::Csv(csv), formats::csv(N)),
        ("lines", Decoder::Lines(Default::default()), formats::lines(N)),
        ("text", Decoder::Text(Default::default()), formats::text(N)),
    ];
    for (name, decoder, record) in &cases {
        let bytes = record.as_bytes();
        let expected = decode(decoder, bytes, &limits, &defaults).reports.len();
        assert!(expected >= N, "{name}: {expected} indicators");
        let mut g = c.benchmark_group(format!("decode/{name}"));
        g.throughput(Throughput::Elements(expected as u64));
        g.bench_function("indicators", |b| b.iter(|| decode(decoder, bytes, &limits, &defaults)));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("bytes", |b| b.iter(|| decode(decoder, bytes, &limits, &defaults)));
        g.finish();
    }
}

criterion_group!(benches, per_format);
criterion_main!(benches);
