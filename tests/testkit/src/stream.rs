//! Generated feed streams: indicators whose registry or ccTLD country is known in advance, and
//! reports of them by two canonical-JSON feeds (`industry`, GREEN; `member`, AMBER) with
//! duplicates, other labels and feed-given targets.

use super::reference::{Ind, Sent, SentSighting, stricter};
use super::{ASEAN, Deployment, Record, TestFeed, produce, produce_to_topics};
use std::collections::BTreeMap;
use std::thread::JoinHandle;
use std::time::Duration;

/// Address blocks whose registry country is known (checked against the built-in RIR data).
const V4: &[(&str, Option<&str>)] = &[
    ("203.116.1.", Some("SG")),
    ("175.139.1.", Some("MY")),
    ("1.46.1.", Some("TH")),
    ("14.160.1.", Some("VN")),
    ("112.198.1.", Some("PH")),
    ("36.64.1.", Some("ID")),
    ("115.84.64.", Some("LA")),
    ("203.81.64.", Some("MM")),
    ("8.8.8.", Some("US")),
    ("1.1.1.", Some("AU")),
    ("10.1.1.", None),
    ("192.0.2.", None),
];
const V6: &[(&str, Option<&str>)] = &[
    ("2401:7400::", Some("SG")),
    ("2001:e68::", Some("MY")),
    ("2001:fb0::", Some("TH")),
    ("2405:4800::", Some("VN")),
    ("2001:db8::", None),
];
/// Top-level domains and the country their ccTLD gives (ASEAN, one elsewhere, one generic).
pub const TLDS: &[(&str, Option<&str>)] = &[
    ("sg", Some("SG")),
    ("my", Some("MY")),
    ("th", Some("TH")),
    ("vn", Some("VN")),
    ("ph", Some("PH")),
    ("id", Some("ID")),
    ("la", Some("LA")),
    ("mm", Some("MM")),
    ("kh", Some("KH")),
    ("bn", Some("BN")),
    ("tl", Some("TL")),
    ("de", Some("DE")),
    ("com", None),
];

/// An indicator a policy test draws: (type, value, infrastructure country).
pub type PoolIndicator = (&'static str, String, Option<&'static str>);

/// `domains` domains `<prefix><i>.example.<tld>` over the [`TLDS`] in turn, and `hashes` MD5
/// hashes counting up from `first_hash` (no infrastructure country).
pub fn domains_and_hashes(prefix: &str, domains: usize, hashes: u128, first_hash: u128) -> Vec<PoolIndicator> {
    let domains = (0..domains).map(|i| {
        let (tld, cc) = TLDS[i % TLDS.len()];
        ("domain", format!("{prefix}{i}.example.{tld}"), cc)
    });
    let hashes = (0..hashes).map(|i| ("md5", format!("{:032x}", first_hash + i), None));
    domains.chain(hashes).collect()
}

/// `n` indicators; the IPv4 addresses come from a few hundred, so some entries name the same
/// indicator (see [`distinct_pool`]).
pub fn pool(rng: &mut fastrand::Rng, n: usize) -> Vec<Ind> {
    pool_of(rng, n, false)
}

/// `n` indicators, each one distinct: IPv6 addresses where [`pool`] draws an IPv4 one.
pub fn distinct_pool(rng: &mut fastrand::Rng, n: usize) -> Vec<Ind> {
    pool_of(rng, n, true)
}

fn pool_of(rng: &mut fastrand::Rng, n: usize, distinct: bool) -> Vec<Ind> {
    (0..n)
        .map(|i| {
            let host = i % 250 + 1;
            match rng.u64(..4) {
                0 if !distinct => {
                    let (prefix, cc) = V4[rng.usize(..V4.len())];
                    let v = format!("{prefix}{host}");
                    Ind { kind: "ipv4", raw: v.replace('.', "[.]"), canonical: v, country: cc }
                }
                0 | 1 => {
                    let (prefix, cc) = V6[rng.usize(..V6.len())];
                    // The (i + 1)-th address of the block, written as std writes it (compressed).
                    let base: std::net::Ipv6Addr = format!("{prefix}0").parse().expect("a block");
                    let v = std::net::Ipv6Addr::from(u128::from(base) + i as u128 + 1).to_string();
                    Ind { kind: "ipv6", raw: v.to_uppercase(), canonical: v, country: cc }
                }
                2 => {
                    let (tld, cc) = TLDS[rng.usize(..TLDS.len())];
                    let v = format!("host{i}.example.{tld}");
                    Ind {
                        kind: "domain",
                        raw: format!("HOST{i}.Example.{}.", tld.to_uppercase()),
                        canonical: v,
                        country: cc,
                    }
                }
                _ => {
                    if rng.u64(..4) == 0 {
                        let v = format!("http://203.116.1.{host}/dl/{i}");
                        Ind { kind: "url", raw: v.replace("http", "hxxp"), canonical: v, country: Some("SG") }
                    } else {
                        let (tld, cc) = TLDS[rng.usize(..TLDS.len())];
                        let v = format!("https://login{i}.example.{tld}/account?id={i}");
                        let raw = format!("HTTPS://Login{i}.Example.{}:443/account?id={i}", tld.to_uppercase());
                        Ind { kind: "url", raw, canonical: v, country: cc }
                    }
                }
            }
        })
        .collect()
}

/// `n` reports of indicators drawn from `pool` at random (so with duplicates), two feeds.
pub fn reports(rng: &mut fastrand::Rng, pool: &[Ind], n: usize) -> Vec<Sent> {
    reports_of(rng, pool, n, |rng, _| rng.usize(..pool.len()))
}

/// One report of each indicator of `pool`, in order, two feeds.
pub fn report_each(rng: &mut fastrand::Rng, pool: &[Ind]) -> Vec<Sent> {
    reports_of(rng, pool, pool.len(), |_, j| j)
}

/// `n` reports, the j-th of the indicator `pick(rng, j)` of `pool`, two feeds. The label and
/// targets are fixed per (indicator, feed), as a feed restates the same thing when it repeats an
/// indicator.
fn reports_of(
    rng: &mut fastrand::Rng,
    pool: &[Ind],
    n: usize,
    mut pick: impl FnMut(&mut fastrand::Rng, usize) -> usize,
) -> Vec<Sent> {
    type Own = Option<(&'static str, &'static str)>; // (as written, effective label)
    // Keyed by the canonical value: two pool entries may name the same indicator.
    let mut fixed: BTreeMap<(String, &str), (Own, Vec<&'static str>)> = BTreeMap::new();
    (0..n)
        .map(|j| {
            let i = pick(rng, j);
            let (feed, default) = if rng.u64(..10) < 7 { ("industry", "GREEN") } else { ("member", "AMBER") };
            let (own, targets) = fixed
                .entry((pool[i].canonical.clone(), feed))
                .or_insert_with(|| {
                    let own = match rng.u64(..100) {
                        0..=7 => Some(("TLP:RED", "RED")),
                        8..=11 => Some(("amber+strict", "AMBER+STRICT")),
                        12..=14 => Some(("TLP:PURPLE", "UNKNOWN")),
                        15..=24 => Some(("white", "CLEAR")),
                        _ => None,
                    };
                    let targets = if rng.u64(..20) == 0 { vec!["MY"] } else { vec![] };
                    (own, targets)
                })
                .clone();
            let label = stricter(own.map_or("CLEAR", |o| o.1), default);
            let ind = pool[i].clone();
            let mut obj = serde_json::json!({"type": ind.kind, "value": ind.raw});
            if let Some((written, _)) = own {
                obj["tlp"] = written.into();
            }
            if !targets.is_empty() {
                obj["target_countries"] = serde_json::json!(targets);
            }
            Sent { ind, feed, label, targets, revoked: false, sharing_group: false, json: obj.to_string() }
        })
        .collect()
}

/// Produces the reports as JSON Lines records of `per_record` reports each, per feed.
pub fn records_of(sent: &[Sent], feed: &str, per_record: usize) -> Vec<(Option<String>, Vec<u8>)> {
    let lines: Vec<&str> = sent.iter().filter(|s| s.feed == feed).map(|s| s.json.as_str()).collect();
    lines.chunks(per_record).map(|c| (None, c.join("\n").into_bytes())).collect()
}

/// A stream of `n` reports over `distinct` indicators (so with duplicates), from `seed`.
pub fn stream(seed: u64, distinct: usize, n: usize) -> Vec<Sent> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let pool = pool(&mut rng, distinct);
    reports(&mut rng, &pool, n)
}

/// A deployment with the two feeds of these streams (`industry` GREEN 60, `member` AMBER 80),
/// its topics created; `kafka_extra` goes into `[kafka]`.
pub fn two_feed_deployment(test: &str, kafka_extra: &str) -> Deployment {
    two_feed_deployment_with(test, kafka_extra, "")
}

/// [`two_feed_deployment`] with `tail` at the end of its config (e.g. a `[dedupe]` table).
pub fn two_feed_deployment_with(test: &str, kafka_extra: &str, tail: &str) -> Deployment {
    let feeds = [("industry", "GREEN", 60), ("member", "AMBER", 80)]
        .map(|(name, tlp, confidence)| TestFeed::new(name, tlp, confidence, "json", ""));
    let d = Deployment::with_policy(test, feeds.to_vec(), kafka_extra, |_| String::new(), tail);
    d.create_topics();
    d
}

/// Produces the stream to the two feeds of a [`two_feed_deployment`], `per_record` (industry,
/// member) reports a record.
pub fn produce_stream(d: &Deployment, sent: &[Sent], per_record: (usize, usize)) {
    produce_to(&feed_topics(d), sent, per_record);
}

/// Produces the stream to the two feeds in slices with pauses between them (50 and 10 reports a
/// record), so that faults land mid-stream.
pub fn produce_slowly(d: &Deployment, sent: &[Sent], slice: usize, pause: Duration) -> JoinHandle<()> {
    let slices: Vec<Vec<Sent>> = sent.chunks(slice).map(<[Sent]>::to_vec).collect();
    let topics = feed_topics(d);
    std::thread::spawn(move || {
        for slice in slices {
            produce_to(&topics, &slice, (50, 10));
            std::thread::sleep(pause);
        }
    })
}

/// The (industry, member) feed topics of a [`two_feed_deployment`].
fn feed_topics(d: &Deployment) -> (String, String) {
    (d.feed_topic("industry").to_string(), d.feed_topic("member").to_string())
}

fn produce_to(topics: &(String, String), sent: &[Sent], per_record: (usize, usize)) {
    produce(&topics.0, &records_of(sent, "industry", per_record.0));
    produce(&topics.1, &records_of(sent, "member", per_record.1));
}

/// `n` sightings (kind `sighting`, canonical JSON) of indicators of `sent`, by random CERTs, from
/// `seed`: each CERT's label fixed per indicator (CLEAR, GREEN, AMBER or RED).
pub fn sightings_of(seed: u64, sent: &[Sent], n: usize) -> Vec<SentSighting> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut labels: BTreeMap<(String, &str), &'static str> = BTreeMap::new();
    (0..n)
        .map(|_| {
            let ind = sent[rng.usize(..sent.len())].ind.clone();
            let by = ASEAN[rng.usize(..ASEAN.len())];
            let label = *labels
                .entry((ind.canonical.clone(), by))
                .or_insert(["CLEAR", "GREEN", "AMBER", "RED"][rng.usize(..4)]);
            let json = serde_json::json!({"kind": "sighting", "type": ind.kind, "value": ind.raw,
                "count": rng.u64(1..4), "tlp": label})
            .to_string();
            SentSighting { ind, by, label, json }
        })
        .collect()
}

/// Produces the sightings to their CERTs' topics in slices with pauses between them, so that
/// faults land mid-stream.
pub fn produce_sightings_slowly(
    d: &Deployment,
    sightings: &[SentSighting],
    slice: usize,
    pause: Duration,
) -> JoinHandle<()> {
    let slices: Vec<BTreeMap<String, Vec<Record>>> = sightings
        .chunks(slice)
        .map(|chunk| {
            let mut by_topic: BTreeMap<String, Vec<Record>> = BTreeMap::new();
            for s in chunk {
                by_topic.entry(d.sightings_topic(s.by)).or_default().push((None, s.json.clone().into_bytes()));
            }
            by_topic
        })
        .collect();
    std::thread::spawn(move || {
        for by_topic in slices {
            let batches: Vec<(&str, &[Record])> = by_topic.iter().map(|(t, r)| (t.as_str(), r.as_slice())).collect();
            produce_to_topics(&batches);
            std::thread::sleep(pause);
        }
    })
}
