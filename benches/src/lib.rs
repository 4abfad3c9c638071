//! Data generators shared by the benches: realistic canonical-JSON feed records (the indicator
//! types, the 11 ASEAN countries and others, a duplicate rate and a label mix), deterministic so
//! runs compare.

pub(crate) const TLDS: [&str; 14] =
    ["sg", "my", "th", "vn", "ph", "id", "la", "mm", "kh", "bn", "tl", "com", "net", "de"];
pub(crate) const V4: [&str; 10] = [
    "203.116.1.",
    "175.139.1.",
    "1.46.1.",
    "14.160.1.",
    "112.198.1.",
    "36.64.1.",
    "115.84.64.",
    "203.81.64.",
    "8.8.8.",
    "10.1.1.",
];
const LABELS: [&str; 6] = ["", "", "", "TLP:CLEAR", "TLP:AMBER", "TLP:RED"];

/// `n` canonical-JSON lines; about `dup_percent` % of them repeat an earlier indicator.
pub fn canonical_json_lines(n: usize, dup_percent: u64, seed: u64) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut lines = Vec::with_capacity(n);
    for i in 0..n {
        let k = if i > 0 && rng.u64(..100) < dup_percent { rng.u64(..i as u64) as usize } else { i };
        let (kind, value) = match k % 4 {
            0 => ("ipv4", format!("{}{}", V4[k % V4.len()], k % 250 + 1)),
            1 => ("domain", format!("host{k}.example.{}", TLDS[k % TLDS.len()])),
            2 => ("url", format!("https://login{k}.example.{}/account?id={k}", TLDS[k % TLDS.len()])),
            _ => ("ipv6", format!("2401:7400::{:x}", k + 1)),
        };
        let label = LABELS[k % LABELS.len()];
        let tlp = if label.is_empty() { String::new() } else { format!(r#","tlp":"{label}""#) };
        lines.push(format!(
            r#"{{"type":"{kind}","value":"{value}"{tlp},"confidence":{},"threat":"phishing","tags":["bench"],"first_seen":"2024-05-01T10:00:00Z"}}"#,
            50 + k % 50
        ));
    }
    lines
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

/// One batch through a fresh columnar core of `config` (state, enrichment, routing).
pub fn process_fresh(
    (mut core, batch): (iocflow::columnar::ColumnarCore, datafusion::arrow::array::RecordBatch),
) -> iocflow::columnar::ColumnarOutput {
    let mut out = iocflow::columnar::ColumnarOutput::default();
    core.process(0, &batch, &mut out).expect("the batch processes");
    out
}

/// The same `n` indicators written in each feed format, as one record each: what the per-format
/// decode benches read.
pub mod formats {

    /// The `k`-th indicator; all distinct (up to 10,000), so every format yields `n` of them.
    fn value(k: usize) -> (&'static str, String) {
        match k % 4 {
            0 => ("ipv4", format!("{}{}", super::V4[(k / 1000) % super::V4.len()], (k / 4) % 250 + 1)),
            1 => ("domain", format!("host{k}.example.{}", super::TLDS[k % super::TLDS.len()])),
            2 => ("url", format!("https://login{k}.example.{}/account?id={k}", super::TLDS[k % super::TLDS.len()])),
            _ => ("ipv6", format!("2401:7400::{:x}", k + 1)),
        }
    }

    pub fn intelmq(n: usize) -> String {
        (0..n)
            .map(|k| {
                let (kind, v) = value(k);
                let field = match kind {
                    "ipv4" | "ipv6" => "source.ip",
                    "domain" => "source.fqdn",
                    _ => "source.url",
                };
                format!(
                    r#"{{"feed.name":"bench","feed.provider":"Bench","classification.type":"phishing","classification.taxonomy":"fraud","{field}":"{v}","time.source":"2024-05-01T10:00:00+00:00","tlp":"GREEN"}}"#
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn stix2(n: usize) -> String {
        let objects: Vec<String> = (0..n)
            .map(|k| {
                let (kind, v) = value(k);
                let path = match kind {
                    "ipv4" => "ipv4-addr:value",
                    "ipv6" => "ipv6-addr:value",
                    "domain" => "domain-name:value",
                    _ => "url:value",
                };
                format!(
                    r#"{{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-{k:012}","created":"2024-05-01T10:00:00.000Z","modified":"2024-05-01T10:00:00.000Z","pattern":"[{path} = '{v}']","pattern_type":"stix","valid_from":"2024-05-01T10:00:00Z","object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],"indicator_types":["malicious-activity"]}}"#
                )
            })
            .collect();
        format!(
            r#"{{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000000","objects":[{}]}}"#,
            objects.join(",")
        )
    }

    pub fn misp(n: usize) -> String {
        let attributes: Vec<String> = (0..n)
            .map(|k| {
                let (kind, v) = value(k);
                let t = match kind {
                    "ipv4" | "ipv6" => "ip-dst",
                    "domain" => "domain",
                    _ => "url",
                };
                format!(r#"{{"type":"{t}","value":"{v}","to_ids":true,"distribution":"5","category":"Network activity","timestamp":"1714557600"}}"#)
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
        (0..n).map(|k| value(k).1).collect::<Vec<_>>().join("\n")
    }

    /// Advisory-like prose with an indicator, often defanged, every sentence or so.
    pub fn text(n: usize) -> String {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut out = String::new();
        for k in 0..n {
            let v = value(k).1;
            let v = if rng.u64(..2) == 0 { v.replace('.', "[.]").replace("https", "hxxps") } else { v };
            out += &format!("The actor used {v} during the campaign (see version 2.4.1, report.pdf). ");
        }
        out
    }
}
