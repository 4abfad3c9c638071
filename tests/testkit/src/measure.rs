//! What the benchmarks measure besides time: a process's CPU and peak memory from `/proc`, the
//! counters on iocflow's metrics endpoint, the messages and bytes on a set of topics, and
//! latency percentiles.

use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

/// CPU seconds (user + system) a process has used so far, its exited threads included; `None`
/// if it is not readable.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// CPU seconds of a process's live threads whose name starts with `prefix`: librdkafka names its
/// threads `rdk:…`, so `"rdk:"` gives the Kafka clients' share (compression, sending, fetching).
pub fn threads_cpu_seconds(pid: u32, prefix: &str) -> Option<f64> {
    let mut sum = 0.0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.starts_with(prefix) {
            // A thread that ended since the listing counts nothing.
            sum += stat_cpu_seconds(&task.path().join("stat").to_string_lossy()).unwrap_or(0.0);
        }
    }
    Some(sum)
}

/// utime + stime of a `/proc/…/stat` file, in seconds.
fn stat_cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces), from field 3 on.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    #[allow(unsafe_code)]
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

/// Peak resident memory of a process (VmHWM), in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The local broker's process (dev/kafka's pid file), for its CPU; `None` with `KAFKA_BOOTSTRAP`.
pub fn broker_pid() -> Option<u32> {
    if std::env::var_os("KAFKA_BOOTSTRAP").is_some() {
        return None;
    }
    let dir = std::env::var("IOCFLOW_KAFKA_DIR")
        .unwrap_or_else(|_| format!("{}/.cache/iocflow/kafka", std::env::var("HOME").unwrap_or_default()));
    std::fs::read_to_string(format!("{dir}/broker.pid")).ok()?.trim().parse().ok()
}

/// The sum of a counter over all its series, from a Prometheus text exposition.
pub fn counter_sum(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Messages, key + payload bytes, and the first few records of a set of topics.
#[derive(Debug, Default, Clone)]
pub struct Census {
    /// Per topic: (messages, bytes, partitions, samples of (key, payload)).
    pub topics: BTreeMap<String, TopicCensus>,
}

/// A record as read: key and payload (`None` for a tombstone).
pub type Sample = (Option<Vec<u8>>, Option<Vec<u8>>);

#[derive(Debug, Default, Clone)]
pub struct TopicCensus {
    pub messages: u64,
    pub bytes: u64,
    pub partitions: i32,
    pub samples: Vec<Sample>,
}

impl Census {
    pub fn messages(&self) -> u64 {
        self.topics.values().map(|t| t.messages).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.topics.values().map(|t| t.bytes).sum()
    }
}

/// Reads `topics` (committed records only) from the beginning to their end, keeping counts
/// and up to `samples` records per topic.
pub fn census(topics: &[String], samples: usize) -> Census {
    let c = crate::committed_reader("iocflow-e2e-census");
    let mut census = Census::default();
    for topic in topics {
        let partitions = crate::partitions_of(&c, topic);
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(topic, *p, Offset::Beginning).expect("a partition");
        }
        let mut t = TopicCensus { partitions: partitions.len() as i32, ..Default::default() };
        crate::visit_topic_to_end(&c, &tpl, Duration::from_secs(600), |m| {
            t.messages += 1;
            t.bytes += (m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len)) as u64;
            if t.samples.len() < samples {
                t.samples.push((m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec)));
            }
            true
        });
        census.topics.insert(topic.clone(), t);
    }
    census
}

/// The `q`-quantile (0..=1) of sorted durations, nearest rank.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_quantiles() {
        let text = "# TYPE iocflow_x_total counter\niocflow_x_total{a=\"1\"} 3\niocflow_x_total{a=\"2\"} 4.5\n\
                    iocflow_x_total_other 100\niocflow_x_total 1\n";
        assert_eq!(counter_sum(text, "iocflow_x_total"), 8.5);
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&ms, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&ms, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&ms, 1.0), Duration::from_millis(100));
        let me = std::process::id();
        // Busy until the kernel has counted CPU to the process and to a live thread (on a loaded
        // machine 50 ms of wall time may not be a clock tick), for at most 10 s.
        let busy = std::time::Instant::now();
        let counted = || cpu_seconds(me).unwrap() > 0.0 && threads_cpu_seconds(me, "").unwrap() > 0.0;
        while !counted() && busy.elapsed() < Duration::from_secs(10) {
            std::hint::black_box(0);
        }
        assert!(cpu_seconds(me).unwrap() > 0.0);
        // Every thread has the empty prefix; none of this test's is librdkafka's.
        assert!(threads_cpu_seconds(me, "").unwrap() > 0.0);
        assert_eq!(threads_cpu_seconds(me, "rdk:"), Some(0.0));
        assert!(peak_rss_mib(std::process::id()).unwrap() > 0.0);
    }
}
