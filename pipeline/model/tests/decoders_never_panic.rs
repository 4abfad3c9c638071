//! Every decoder (the CERTs' sightings' too), fed random bytes and mutated real-format records for a bounded time, never
//! panics and keeps the decode contract: a record yields indicators or a rejection, never more
//! indicators than the limit, and every indicator is in canonical form (canonicalising it again
//! changes nothing; its id is the hash of its type and value; a URL's host read from the text is
//! the one the `url` crate parses).
//!
//! `IOCFLOW_FUZZ_SECONDS` (default 2) bounds the time per decoder.

use iocflow_model::decode::delimited::{Column, CsvOptions};
use iocflow_model::decode::json_mapping::JsonMapping;
use iocflow_model::decode::{Decoded, Decoder, FeedDefaults, Limits, decode, decode_sightings};
use iocflow_model::indicator::{UrlHost, url_host};
use iocflow_model::{Indicator, IndicatorId, IndicatorType, Tlp};
use std::time::{Duration, Instant};

/// The host of a URL as the `url` crate parses it: what `url_host` must read from the text.
fn parsed_host(u: &str) -> Option<UrlHost<'_>> {
    let parsed = url::Url::parse(u).ok()?;
    Some(match parsed.host()? {
        url::Host::Domain(_) => {
            let start = u.find(parsed.host_str()?)?;
            UrlHost::Domain(&u[start..start + parsed.host_str()?.len()])
        }
        url::Host::Ipv4(a) => UrlHost::Ip(a.into()),
        url::Host::Ipv6(a) => UrlHost::Ip(a.into()),
    })
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "\n",
    ";",
    "#",
    " ",
    "'",
    "\\",
    "|",
    "/",
    ".",
    "[.]",
    "hxxp://",
    "@",
    "\"type\"",
    "\"value\"",
    "\"ipv4\"",
    "\"domain\"",
    "\"url\"",
    "\"tlp\"",
    "\"TLP:RED\"",
    "\"objects\"",
    "\"indicator\"",
    "\"pattern\"",
    "\"[ipv4-addr:value = '198.51.100.1']\"",
    "\"pattern_type\"",
    "\"stix\"",
    "\"Event\"",
    "\"Attribute\"",
    "\"to_ids\"",
    "\"sighting\"",
    "\"kind\"",
    "\"sighting_of_ref\"",
    "\"false_positive\"",
    "true",
    "null",
    "\"source.ip\"",
    "192.0.2.1",
    "2001:db8::1",
    "example.com",
    "xn--o3cw4h",
    "AS64500",
    "d41d8cd98f00b204e9800998ecf8427e",
    "1e400",
    "-0",
    "\u{1F600}",
    "\u{202E}",
    "\u{0}",
    "ไทย",
];

const SEEDS: &[&str] = &[
    r#"[{"type":"ipv4","value":"192.0.2.1","tlp":"green","confidence":50,"tags":["x"],"first_seen":"2024-05-01T10:00:00Z"}]"#,
    r#"{"source.ip":"192.0.2.7","source.fqdn":"a.example.sg","classification.type":"c2-server","time.source":"2024-05-01T10:00:00+00:00","tlp":"AMBER"}"#,
    r#"{"type":"bundle","id":"bundle--1","objects":[{"type":"indicator","id":"indicator--1","pattern":"[domain-name:value = 'x.example' OR ipv4-addr:value IN ('198.51.100.1','198.51.100.2')]","pattern_type":"stix","object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}]}"#,
    r#"{"Event":{"distribution":"1","Tag":[{"name":"tlp:amber"}],"Attribute":[{"type":"domain|ip","value":"a.example|192.0.2.9","to_ids":true},{"type":"filename|md5","value":"a.exe|d41d8cd98f00b204e9800998ecf8427e","to_ids":true,"distribution":"4"}]}}"#,
    "# comment\n\"1\",\"2024-05-01 10:00:00\",\"http://198.51.100.7/x\",\"online\"\n192.0.2.0/24 ; SBL1\n",
    "192.0.2.4\nhxxp://evil[.]example/a\n; c\n2001:db8::5\nAS64501\n",
    r#"{"1":[{"v":"192.0.2.1:443","t":"ip:port","f":"2024-05-01","g":"a,b","c":50,"cc":"sg"}],"2":[{"v":"x.example","t":"domain"}]}"#,
    "Block hxxps://login[.]example[.]sg/x, 198.51.100[.]3 and c2.example(.)net; see v1.2.3.4 and setup.exe.",
    r#"{"type":"bundle","id":"bundle--2","objects":[{"type":"indicator","id":"indicator--2","pattern":"[url:value = 'http://x.example/a']","pattern_type":"stix"},{"type":"sighting","id":"sighting--1","sighting_of_ref":"indicator--2","count":2,"x_iocflow_false_positive":true,"object_marking_refs":["marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"]}]}"#,
    r#"[{"value":"evil[.]example.com","type":"0","timestamp":"1767225600"},{"Sighting":{"value":"198.51.100.7","type":1,"tlp":"green"}}]"#,
    r#"{"kind":"false_positive","type":"domain","value":"a.example.sg","count":2,"seen_at":"2026-01-01T00:00:00Z","tlp":"CLEAR"}"#,
];

/// A decoder of one record.
type Decode = Box<dyn Fn(&[u8], &Limits, &FeedDefaults) -> Decoded>;

fn decoders() -> Vec<(&'static str, Decode)> {
    let csv = CsvOptions {
        first_seen: Some(Column::Index(1)),
        threat: Some(Column::Index(5)),
        tags: Some(Column::Index(6)),
        ..CsvOptions::new(Column::Index(2))
    };
    let mapping = JsonMapping {
        records: Some("/*".into()),
        type_pointer: Some("/t".into()),
        first_seen: Some("/f".into()),
        tags: vec!["/g".into()],
        confidence: Some("/c".into()),
        target_country: Some("/cc".into()),
        ..JsonMapping::new("/v")
    };
    let feed = |decoder: Decoder| -> Decode {
        Box::new(move |bytes, limits, defaults| decode(&decoder, bytes, limits, defaults))
    };
    vec![
        ("json", feed(Decoder::Json(None))),
        ("json mapping", feed(Decoder::Json(Some(mapping)))),
        ("intelmq", feed(Decoder::Intelmq)),
        ("stix2", feed(Decoder::Stix2)),
        ("misp", feed(Decoder::Misp(Default::default()))),
        ("csv", feed(Decoder::Csv(csv))),
        ("lines", feed(Decoder::Lines(Default::default()))),
        ("text", feed(Decoder::Text(Default::default()))),
        ("sightings", Box::new(|bytes, limits, _| decode_sightings(bytes, limits))),
    ]
}

fn input(rng: &mut fastrand::Rng) -> Vec<u8> {
    match rng.usize(..3) {
        0 => (0..rng.usize(..2048)).map(|_| rng.u8(..)).collect(),
        1 => {
            let mut s = String::new();
            for _ in 0..rng.usize(..300) {
                s.push_str(TOKENS[rng.usize(..TOKENS.len())]);
            }
            s.into_bytes()
        }
        _ => {
            let mut b = SEEDS[rng.usize(..SEEDS.len())].as_bytes().to_vec();
            for _ in 0..=rng.usize(..8) {
                if b.is_empty() {
                    break;
                }
                let i = rng.usize(..b.len());
                match rng.usize(..5) {
                    0 => {
                        b[i] = rng.u8(..);
                    }
                    1 => {
                        let j = (i + rng.usize(..40)).min(b.len());
                        b.drain(i..j);
                    }
                    2 => {
                        let j = (i + rng.usize(..60)).min(b.len());
                        let span = b[i..j].to_vec();
                        b.splice(i..i, span);
                    }
                    3 => {
                        b.splice(i..i, TOKENS[rng.usize(..TOKENS.len())].bytes());
                    }
                    _ => {
                        b.splice(i..i, std::iter::repeat_n(b'[', rng.usize(..64)));
                    }
                }
            }
            b
        }
    }
}

#[test]
fn decoders_never_panic_and_keep_their_contract() {
    let seconds: u64 = std::env::var("IOCFLOW_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    let limits = Limits { max_record_bytes: 4096, max_depth: 16, max_indicators: 200 };
    let defaults = FeedDefaults { tlp: Tlp::Green, confidence: Some(50) };
    for (name, decoder) in decoders() {
        let mut rng = fastrand::Rng::with_seed(0x1234_5678_9abc_def1 ^ name.len() as u64);
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let (mut runs, mut with_reports) = (0u64, 0u64);
        while Instant::now() < deadline {
            let bytes = input(&mut rng);
            let d = decoder(&bytes, &limits, &defaults);
            runs += 1;
            assert!(
                !d.reports.is_empty() || d.rejection.is_some(),
                "{name}: neither indicators nor a rejection for {:?}",
                String::from_utf8_lossy(&bytes)
            );
            assert!(d.reports.len() <= limits.max_indicators, "{name}: {} indicators", d.reports.len());
            if !d.reports.is_empty() {
                with_reports += 1;
            }
            for r in &d.reports {
                let i = &r.indicator;
                assert_eq!(i.id, IndicatorId::of(i.kind, &i.value), "{name}: id of {i:?}");
                let again =
                    Indicator::new(i.kind, &i.value).unwrap_or_else(|e| panic!("{name}: {i:?} is not canonical: {e}"));
                assert_eq!((again.kind, &again.value), (i.kind, &i.value), "{name}: canonical form is not stable");
                assert!(IndicatorType::ALL.contains(&i.kind));
                if i.kind == IndicatorType::Url {
                    assert_eq!(url_host(&i.value), parsed_host(&i.value), "{name}: host of {:?}", i.value);
                }
            }
        }
        eprintln!("{name}: {runs} inputs, {with_reports} with indicators");
        assert!(runs > 100, "{name}: only {runs} inputs in {seconds} s");
    }
}
