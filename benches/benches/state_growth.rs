//! Growth without stalls: 5 M distinct indicators (each sent to two CERTs) through one partition's columnar core, 4,096
//! a batch (process, then the changelog a stage would write), timing every batch. A hash table
//! that grows by doubling rehashes everything in the batch that crosses each power of two; the
//! state spreads its entries over 256 tables that double on their own (`state/mod.rs`,
//! `Shards`), so growth is spread over many batches. The baseline, in the same run: the longest
//! single insert into one plain table of the same entries grown from empty (its last doubling).
//! The state times its own table growth (`PartitionState::take_growth`), so the report gives
//! the growth in the worst batch apart from the batch's other work and the machine's noise.
//!
//! `cargo bench -p iocflow-benches --bench state_growth` (5 M); under `cargo test` a smoke size.

use iocflow::columnar::{ColumnarCore, ColumnarOutput};
use iocflow::indicator_batch::IndicatorBatchBuilder;
use iocflow_benches::asean_config_text;
use iocflow_model::{Country, Indicator, IndicatorType, Report, Tlp};
use std::time::{Duration, Instant};

const BATCH: usize = 4096;
/// Each indicator is a domain under one ASEAN ccTLD and names another ASEAN country as its target,
/// so two CERTs are sent it: the shape issue 22's memory target is stated for.
const TLDS: [&str; 4] = ["sg", "my", "th", "vn"];

fn batch(first: usize) -> datafusion::arrow::array::RecordBatch {
    let mut b = IndicatorBatchBuilder::new();
    for k in first..first + BATCH {
        let value = format!("n{k}.growth.example.{}", TLDS[k % TLDS.len()]);
        let mut report = Report::new(Indicator::new(IndicatorType::Domain, &value).unwrap(), Tlp::Green);
        report.target_countries = vec![Country::parse(TLDS[(k + 1) % TLDS.len()]).unwrap()];
        b.push(&report, "bench", "Bench", 1_714_557_600_000 + k as i64);
    }
    b.finish().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let indicators = if full { 5_000_000 } else { 50_000 };
    let config = iocflow::config::Config::parse(&asean_config_text(&format!(
        "[dedupe]\nmax_entries = {}\nmax_bytes = {}\nttl_hours = 10000\n",
        indicators + indicators / 10,
        u64::MAX / 4
    )))
    .unwrap();
    let mut core = ColumnarCore::new(&config).unwrap();
    let peak_mib = || iocflow_testkit::measure::peak_rss_mib(std::process::id()).expect("/proc/self/status");
    let rss_before = peak_mib();
    let mut pauses = Vec::with_capacity(indicators / BATCH + 1);
    // Per batch, the time the state's tables spent growing (timed by the state itself).
    let mut growth = Vec::with_capacity(indicators / BATCH + 1);
    let mut sent = 0;
    let started = Instant::now();
    for first in (0..indicators).step_by(BATCH) {
        let input = batch(first);
        let mut out = ColumnarOutput::default();
        let t = Instant::now();
        core.process(0, &input, &mut out).unwrap();
        let changelog = core.take_changelog();
        pauses.push(t.elapsed());
        growth.push(out.state_growth);
        sent += out.emits.len();
        drop(std::hint::black_box((out, changelog)));
    }
    let total = started.elapsed();
    // What the state really holds, by the process's memory: its peak grew by the entries (and
    // the allocator's slack around them); the batches come and go.
    let rss_per_entry = (peak_mib() - rss_before) * f64::from(1 << 20) / core.state_entries() as f64;
    let estimate_per_entry = core.state_bytes() as f64 / core.state_entries() as f64;

    // The baseline: a table of the same entries (id → an 80-byte slot, about a state entry's
    // inline size) grown from empty; its longest insert is its last doubling.
    let mut grown: foldhash::HashMap<u128, [u64; 10]> = foldhash::HashMap::default();
    let mut longest_insert = Duration::ZERO;
    for k in 0..indicators as u128 {
        let t = Instant::now();
        grown.insert(k.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835), [k as u64; 10]);
        longest_insert = longest_insert.max(t.elapsed());
    }
    drop(std::hint::black_box(grown));

    let mut sorted = pauses.clone();
    sorted.sort();
    let max = *sorted.last().unwrap();
    let (worst, most_growth) = growth.iter().enumerate().max_by_key(|(_, g)| **g).unwrap();
    let growing = growth.iter().filter(|g| !g.is_zero()).count();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "state_growth: {indicators} indicators in {} batches of {BATCH} ({:.1} s): batch pause median {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms (batch {}); table growth in {growing} batches, at most {:.1} ms in one (batch \
         {worst}, which took {:.1} ms); a plain table grown to the same size: longest insert {:.1} ms; max growth \
         in a batch / that = {:.3}",
        pauses.len(),
        total.as_secs_f64(),
        ms(percentile(&sorted, 0.5)),
        ms(percentile(&sorted, 0.99)),
        ms(max),
        pauses.iter().position(|p| *p == max).unwrap(),
        ms(*most_growth),
        ms(pauses[worst]),
        ms(longest_insert),
        most_growth.as_secs_f64() / longest_insert.as_secs_f64().max(1e-9),
    );
    println!(
        "state_growth: memory per indicator (one contribution, sent to {:.2} CERTs): {rss_per_entry:.0} bytes by \
         RSS, {estimate_per_entry:.0} by the state's estimate",
        sent as f64 / core.state_entries() as f64
    );
    assert!(growing > 0, "the state's growth was not timed");
}
