//! Data generators shared by the benches and the end-to-end harness (`benches/e2e`): realistic
//! indicator reports (the indicator types, the 11 ASEAN countries and others, a duplicate rate
//! and a label mix) written in each feed format, deterministic so runs compare.
//!
//! The benches allocate with the iocflow binary's allocator, so they measure what runs.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub(crate) const TLDS: [&str; 14] =
    ["sg", "my", "th", "vn", "ph", "id", "la", "mm", "kh", "bn", "tl", "com", "net", "de"];
/// /16 networks: ten ASEAN operators', a US resolver's and a private one.
pub(crate) const V4: [&str; 10] =
    ["203.116.", "175.139.", "1.46.", "14.160.", "112.198.", "36.64.", "115.84.", "203.81.", "8.8.", "10.1."];
const LABELS: [&str; 6] = ["", "", "", "TLP:CLEAR", "TLP:AMBER", "TLP:RED"];

/// The `k`-th indicator (type, canonical value); distinct for every `k` below 2,560,000.
pub fn indicator(k: usize) -> (&'static str, String) {
    let tld = TLDS[k % TLDS.len()];
    match k % 4 {
        0 => {
            let n = k / 4;
            ("ipv4", format!("{}{}.{}", V4[n % V4.len()], (n / V4.len() / 250) % 256, (n / V4.len()) % 250 + 1))
        }
        1 => ("domain", format!("host{k}.example.{tld}")),
        2 => ("url", format!("https://login{k}.example.{tld}/account?id={k}")),
        _ => {
            let n = (k + 1) as u32;
            let ip = std::net::Ipv6Addr::new(0x2401, 0x7400, 0, 0, 0, 0, (n >> 16) as u16, n as u16);
            ("ipv6", ip.to_string())
        }
    }
}

/// One generated report of an indicator: what every format writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Which indicator ([`indicator`]`(k)`).
    pub k: usize,
    pub kind: &'static str,
    pub value: String,
    /// A TLP label, or "" for the feed's default.
    pub label: &'static str,
    pub confidence: u8,
}

impl Item {
    pub fn of(k: usize) -> Item {
        let (kind, value) = indicator(k);
        Item { k, kind, value, label: LABELS[k % LABELS.len()], confidence: 50 + (k % 50) as u8 }
    }
}

/// `n` reports of indicators `first..`; about `dup_percent` % of them report an indicator again.
pub fn items(n: usize, dup_percent: u64, first: usize, seed: u64) -> Vec<Item> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut fresh = first;
    (0..n)
        .map(|i| {
            if i > 0 && rng.u64(..100) < dup_percent {
                Item::of(first + rng.usize(..fresh - first))
            } else {
                fresh += 1;
                Item::of(fresh - 1)
            }
        })
        .collect()
}

/// `n` canonical-JSON lines; about `dup_percent` % of them repeat an earlier indicator.
pub fn canonical_json_lines(n: usize, dup_percent: u64, seed: u64) -> Vec<String> {
    items(n, dup_percent, 0, seed).iter().map(formats::json_line).collect()
}

/// A configuration with the 11 ASEAN CERTs and one feed, for benches that need one.
pub fn asean_config() -> iocflow::config::Config {
    iocflow::config::Config::parse(&asean_config_text("")).expect("bench config is valid")
}

/// The text of [`asean_config`], with `extra` tables (e.g. `[enrich]`) before the feeds.
pub fn asean_config_text(extra: &str) -> String {
    let mut text = format!(
        "[kafka]\nbootstrap_servers = \"127.0.0.1:1\"\npartitions = 1\n{extra}\n[[feeds]]\nname = \"bench\"\n\
         topic = \"feeds.bench\"\nformat = \"json\"\nprovider = \"Bench\"\ntlp = \"GREEN\"\n",
    );
    for cc in ["BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH", "VN", "TL"] {
        text += &format!("[[certs]]\ncountry = \"{cc}\"\nname = \"CERT {cc}\"\n");
    }
    text
}

/// The columnar benches' input: 4,096 decoded reports (30 % duplicates), and a builder of the
/// indicator batch they make (building it is the baseline those benches report against).
pub fn columnar_input() -> (Vec<iocflow_model::Report>, impl Fn() -> datafusion::arrow::array::RecordBatch) {
    use iocflow_model::decode::{Decoder, FeedDefaults, Limits, decode};
    let record = canonical_json_lines(4096, 30, 11).join("\n").into_bytes();
    let defaults = FeedDefaults { tlp: iocflow_model::Tlp::Green, confidence: Some(50) };
    let reports = decode(&Decoder::Json(None), &record, &Limits::default(), &defaults).reports;
    let owned = reports.clone();
    let build = move || {
        let mut b = iocflow::indicator_batch::IndicatorBatchBuilder::new();
        for (i, r) in owned.iter().enumerate() {
            b.push(r, "bench", "Bench", 1_714_557_600_000 + i as i64);
        }
        b.finish().expect("a valid batch")
    };
    (reports, build)
}

/// One batch through a columnar core (state, enrichment, routing). The core is handed back with
/// what it decided, so criterion drops its state outside the timed routine: a running stage keeps
/// its state from batch to batch, and freeing thousands of entries is no part of processing one.
pub fn process_fresh(
    (mut core, batch): (iocflow::columnar::ColumnarCore, datafusion::arrow::array::RecordBatch),
) -> (iocflow::columnar::ColumnarCore, iocflow::columnar::ColumnarOutput) {
    let mut out = iocflow::columnar::ColumnarOutput::default();
    core.process(0, &batch, &mut out).expect("the batch processes");
    (core, out)
}

/// The time `iters` batches take through one columnar core, as a running stage holds it: its
/// tables loaded and its expressions compiled once. Before each batch, untimed, `between` sets
/// the state up (forgets it, for new indicators) and a fresh batch is built; after it, the
/// decided records are dropped untimed. For criterion's `iter_custom`.
pub fn time_batches(
    core: &mut iocflow::columnar::ColumnarCore,
    build: &impl Fn() -> datafusion::arrow::array::RecordBatch,
    between: impl Fn(&mut iocflow::columnar::ColumnarCore),
    iters: u64,
) -> std::time::Duration {
    let mut spent = std::time::Duration::ZERO;
    for _ in 0..iters {
        between(core);
        let batch = build();
        let mut out = iocflow::columnar::ColumnarOutput::default();
        let started = std::time::Instant::now();
        core.process(0, &batch, &mut out).expect("the batch processes");
        spent += started.elapsed();
        drop(std::hint::black_box(out));
    }
    spent
}

/// Reports written in each feed format, one record per call: the per-format decode benches read
/// `n` distinct indicators per record; the end-to-end harness writes its stream in four formats.
pub mod formats {
    use super::Item;

    /// `n` distinct indicators, as reports.
    pub fn distinct(n: usize) -> Vec<Item> {
        (0..n).map(Item::of).collect()
    }

    /// One canonical-JSON line.
    pub fn json_line(it: &Item) -> String {
        let tlp = if it.label.is_empty() { String::new() } else { format!(r#","tlp":"{}""#, it.label) };
        format!(
            r#"{{"type":"{}","value":"{}"{tlp},"confidence":{},"threat":"phishing","tags":["bench"],"first_seen":"2024-05-01T10:00:00Z"}}"#,
            it.kind, it.value, it.confidence
        )
    }

    pub fn json(items: &[Item]) -> String {
        items.iter().map(json_line).collect::<Vec<_>>().join("\n")
    }

    pub fn intelmq(items: &[Item]) -> String {
        items
            .iter()
            .map(|it| {
                let field = match it.kind {
                    "ipv4" | "ipv6" => "source.ip",
                    "domain" => "source.fqdn",
                    _ => "source.url",
                };
                let tlp = it.label.strip_prefix("TLP:").unwrap_or("GREEN");
                format!(
                    r#"{{"feed.name":"bench","feed.provider":"Bench","classification.type":"phishing","classification.taxonomy":"fraud","{field}":"{}","time.source":"2024-05-01T10:00:00+00:00","tlp":"{tlp}"}}"#,
                    it.value
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A bundle of indicators, TLP 2.0 GREEN.
    pub fn stix2(items: &[Item]) -> String {
        let objects: Vec<String> = items
            .iter()
            .map(|it| {
                let path = match it.kind {
                    "ipv4" => "ipv4-addr:value",
                    "ipv6" => "ipv6-addr:value",
                    "domain" => "domain-name:value",
                    _ => "url:value",
                };
                format!(
                    r#"{{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-{:012}","created":"2024-05-01T10:00:00.000Z","modified":"2024-05-01T10:00:00.000Z","pattern":"[{path} = '{}']","pattern_type":"stix","valid_from":"2024-05-01T10:00:00Z","confidence":{},"object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],"indicator_types":["malicious-activity"]}}"#,
                    it.k, it.value, it.confidence
                )
            })
            .collect();
        format!(
            r#"{{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000000","objects":[{}]}}"#,
            objects.join(",")
        )
    }

    /// An event shared with the community, TLP:GREEN.
    pub fn misp(items: &[Item]) -> String {
        let attributes: Vec<String> = items
            .iter()
            .map(|it| {
                let t = match it.kind {
                    "ipv4" | "ipv6" => "ip-dst",
                    "domain" => "domain",
                    _ => "url",
                };
                format!(
                    r#"{{"type":"{t}","value":"{}","to_ids":true,"distribution":"5","category":"Network activity","timestamp":"1714557600"}}"#,
                    it.value
                )
            })
            .collect();
        format!(
            r#"{{"Event":{{"info":"bench","date":"2024-05-01","distribution":"3","Tag":[{{"name":"tlp:green"}}],"Attribute":[{}]}}}}"#,
            attributes.join(",")
        )
    }

    pub fn csv(n: usize) -> String {
        let mut out = String::from("# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n");
        for k in 0..n {
            out += &format!(
                "\"{k}\",\"2024-05-01 10:00:00\",\"http://198.51.100.{}/bins/{k}.arm7\",\"online\",\"2024-05-01 10:00:00\",\"malware_download\",\"elf,mirai\",\"https://urlhaus.example/url/{k}/\",\"bench\"\n",
                k % 250 + 1
            );
        }
        out
    }

    pub fn lines(n: usize) -> String {
        distinct(n).into_iter().map(|it| it.value).collect::<Vec<_>>().join("\n")
    }

    /// Advisory-like prose with an indicator, often defanged, every sentence or so.
    pub fn text(n: usize) -> String {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut out = String::new();
        for it in distinct(n) {
            let v = it.value;
            let v = if rng.u64(..2) == 0 { v.replace('.', "[.]").replace("https", "hxxps") } else { v };
            out += &format!("The actor used {v} during the campaign (see version 2.4.1, report.pdf). ");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indicators_are_distinct_and_canonical() {
        let n = 200_000;
        let values: std::collections::HashSet<String> = (0..n).map(|k| indicator(k).1).collect();
        assert_eq!(values.len(), n);
        for k in [0, 1, 2, 3, 1_000, 99_999, 2_559_999] {
            let (kind, value) = indicator(k);
            let kind = iocflow_model::IndicatorType::parse(kind).unwrap();
            let canonical = iocflow_model::Indicator::new(kind, &value).unwrap();
            assert_eq!(canonical.value, value, "{k}");
        }
    }

    #[test]
    fn the_duplicate_rate_is_about_as_asked() {
        let stream = items(10_000, 30, 0, 1);
        let distinct: std::collections::HashSet<usize> = stream.iter().map(|it| it.k).collect();
        let dup = 100 * (stream.len() - distinct.len()) / stream.len();
        assert!((27..=33).contains(&dup), "{dup} %");
    }
}
