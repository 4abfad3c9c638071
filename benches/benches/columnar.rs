//! The columnar stage without Kafka: a 4,096-row indicator batch through state, enrichment and
//! routing (new indicators, with and without CERT filters; indicators seen before), the
//! encoding of the records it decides and of its changelog, against the cost of building the
//! batch as a baseline.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use iocflow::columnar::ColumnarCore;
use iocflow::columnar::ColumnarOutput;
use iocflow_benches::{asean_config, columnar_input, process_fresh, time_batches};

fn columnar(c: &mut Criterion) {
    let (reports, build) = columnar_input();
    let config = asean_config();
    // Every CERT with a filter: each visible view becomes a candidate record, laid out as an
    // Arrow batch per CERT and judged by the DataFusion-compiled filter.
    let mut filtered = config.clone();
    for cert in &mut filtered.certs {
        cert.filter = Some("confidence >= 40 AND NOT array_has(countries, 'US')".into());
    }
    // Views that decay (`[decay]` at its defaults): every record's score, the due-queue of the
    // indicators sent live, and the expiry checks after each batch.
    let mut decaying = config.clone();
    decaying.decay = Some(iocflow::config::DecayConfig { threshold: 20.0, types: Default::default() });
    let mut g = c.benchmark_group("columnar");
    g.throughput(Throughput::Elements(reports.len() as u64));
    g.bench_function("build_batch/4096 (baseline)", |b| b.iter(&build));
    for (name, config) in
        [("fresh state", &config), ("fresh state, every CERT filtered", &filtered), ("fresh state, [decay]", &decaying)]
    {
        let mut core = ColumnarCore::new(config).unwrap();
        g.bench_function(format!("process/4096 ({name})"), |b| {
            b.iter_custom(|iters| time_batches(&mut core, &build, |core| core.drop_partition(0), iters))
        });
    }
    // Steady state: every report was seen before (feeds re-publish most of what they sent), so
    // the state absorbs it and nothing is sent again.
    for (name, config) in [("", &config), (", [decay]", &decaying)] {
        let mut core = ColumnarCore::new(config).unwrap();
        core.process(0, &build(), &mut ColumnarOutput::default()).unwrap();
        g.bench_function(format!("process/4096 (steady state, every report seen before{name})"), |b| {
            b.iter_custom(|iters| time_batches(&mut core, &build, |core| core.enforce_bounds(), iters))
        });
    }
    // The codecs on their own: the CERT records and withheld records one fresh batch decides.
    g.bench_function("encode/4096 (the records of a fresh batch)", |b| {
        b.iter_batched(
            || process_fresh((ColumnarCore::new(&config).unwrap(), build())),
            |(core, mut out): (ColumnarCore, ColumnarOutput)| {
                let encoded = core.encode(&mut out).unwrap();
                (core, encoded)
            },
            BatchSize::LargeInput,
        )
    });
    // The changelog: the whole entry of every indicator the batch changed, binary (the default)
    // and JSON (what versions before it wrote, and `changelog_format = "json"`) side by side.
    let mut json = config.clone();
    json.dedupe.changelog_format = iocflow::config::ChangelogFormat::Json;
    for (name, config) in [("binary", &config), ("JSON", &json)] {
        g.bench_function(format!("changelog/4096 (the entries a fresh batch changed, {name})"), |b| {
            b.iter_batched(
                || process_fresh((ColumnarCore::new(config).unwrap(), build())).0,
                |mut core: ColumnarCore| {
                    let records = core.take_changelog();
                    (core, records)
                },
                BatchSize::LargeInput,
            )
        });
        let entries = process_fresh((ColumnarCore::new(config).unwrap(), build())).0.take_changelog().entries;
        let bytes: usize = entries.iter().map(|e| e.value.as_ref().map_or(0, Vec::len)).sum();
        println!("changelog ({name}): {:.0} bytes an entry", bytes as f64 / entries.len() as f64);
    }
    g.finish();
}

criterion_group!(benches, columnar);
criterion_main!(benches);
