//! serde_json against sonic-rs and simd-json on iocflow's canonical-JSON items (the fields the
//! decoder reads, `pipeline/model/src/decode/canonical_json.rs`), 4,096 items as the decode bench
//! writes them, the best of five rounds of 300 passes. Also the decoder's own shape with
//! serde_json: the record as a stream of raw values, then each item.

use serde::Deserialize;
use std::borrow::Cow;
use std::time::Instant;

#[allow(dead_code)]
#[derive(Deserialize)]
struct Item<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    value: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tlp: Option<Cow<'a, str>>,
    confidence: Option<f64>,
    threat: Option<String>,
    tags: Option<Vec<String>>,
    #[serde(borrow)]
    first_seen: Option<Cow<'a, str>>,
    target_countries: Option<Vec<String>>,
    revoked: Option<bool>,
}

fn main() {
    let n = 4096;
    let labels = ["TLP:GREEN", "amber", "", "clear", "red"];
    let lines: Vec<String> = (0..n)
        .map(|k| {
            let (kind, value) = match k % 4 {
                0 => ("ipv4", format!("203.0.{}.{}", (k / 250) % 256, k % 250 + 1)),
                1 => ("domain", format!("host{k}.example.sg")),
                2 => ("url", format!("https://login{k}.example.sg/account?id={k}")),
                _ => ("ipv6", format!("2401:7400::{:x}", k + 1)),
            };
            let l = labels[k % labels.len()];
            let tlp = if l.is_empty() { String::new() } else { format!(r#","tlp":"{l}""#) };
            format!(r#"{{"type":"{kind}","value":"{value}"{tlp},"confidence":{},"threat":"phishing","tags":["bench"],"first_seen":"2024-05-01T10:00:00Z"}}"#, 50 + k % 50)
        })
        .collect();
    let text = lines.join("\n");
    let rounds = 300;
    let mut best = [f64::MAX; 5];
    let mut buf: Vec<u8> = Vec::new();
    for _ in 0..5 {
        // serde_json, each line parsed as an Item
        let t = Instant::now();
        let mut c = 0;
        for _ in 0..rounds {
            for l in &lines {
                let it: Item = serde_json::from_str(l).unwrap();
                c += it.value.map_or(0, |v| v.len());
            }
        }
        best[0] = best[0].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..rounds {
            for l in &lines {
                let it: Item = sonic_rs::from_str(l).unwrap();
                c += it.value.map_or(0, |v| v.len());
            }
        }
        best[1] = best[1].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..rounds {
            for l in &lines {
                buf.clear();
                buf.extend_from_slice(l.as_bytes());
                let it: Item = simd_json::serde::from_slice(&mut buf).unwrap();
                c += it.value.map_or(0, |v| v.len());
            }
        }
        best[4] = best[4].min(t.elapsed().as_secs_f64());
        // serde_json: the whole record as a stream of RawValue then each item (what the decoder does)
        let t = Instant::now();
        for _ in 0..rounds {
            for raw in serde_json::Deserializer::from_str(&text).into_iter::<&serde_json::value::RawValue>() {
                let it: Item = serde_json::from_str(raw.unwrap().get()).unwrap();
                c += it.value.map_or(0, |v| v.len());
            }
        }
        best[2] = best[2].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..rounds {
            for raw in serde_json::Deserializer::from_str(&text).into_iter::<&serde_json::value::RawValue>() {
                std::hint::black_box(raw.unwrap());
            }
        }
        best[3] = best[3].min(t.elapsed().as_secs_f64());
        std::hint::black_box(c);
    }
    let per = |s: f64| (rounds * n) as f64 / s / 1e6;
    println!(
        "items/s (M): serde_json {:.2}, sonic-rs {:.2} (ratio {:.2}); serde_json RawValue stream + item {:.2}; RawValue stream alone {:.2}; simd-json (copy + parse) {:.2} (ratio {:.2})",
        per(best[0]),
        per(best[1]),
        best[0] / best[1],
        per(best[2]),
        per(best[3]),
        per(best[4]),
        best[0] / best[4]
    );
}
