//! Property test of the routing policy: random indicators, labels, sharing groups, regional
//! subscriptions, CERT filters and the CERTs' sightings (every kind, every label, with and
//! without `[feedback]`) and decay (`[decay]` with lifetimes of minutes, so views expire and
//! revive within a round) go through iocflow's columnar core (state, enrichment, the
//! CERT filters compiled by DataFusion, routing) in random batch sizes, and every record, every
//! withheld report and every outcome is compared with the policy model (`tests/testkit/src/policy.rs`).
//!
//! Checked per report and CERT (a "decision"): no record the policy forbids, none it requires
//! missing, each record's content exactly the CERT's view; and, independently of the model,
//! that no record shows anything of a report its CERT may not see (every report carries a unique
//! tag, and a record's tags, sources and countries must all come from reports its CERT may see;
//! a record's `sighted_by` only names the CERT itself or CERTs that sent CLEAR or GREEN sightings).
//!
//! `IOCFLOW_SEED` replays a failing run; `IOCFLOW_POLICY_ROUNDS` makes it longer.

use iocflow_testkit as harness;

use harness::ASEAN;
use harness::policy::{
    Cert, Decay, Filter, Policy, Report as Sent, Sighting, View, by_cert_and_value, view_from_record,
};
use harness::stream::TLDS;
use iocflow::columnar::{ColumnarCore, ColumnarOutput};
use iocflow::config::Config;
use iocflow::indicator_batch::IndicatorBatchBuilder;
use iocflow_model::sighting::{self, SightingKind};
use iocflow_model::{Country, Indicator, IndicatorType, Report, Tlp};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const GROUPS: [&str; 4] = [
    "5a1e0000-0000-4000-8000-000000000001",
    "5a1e0000-0000-4000-8000-000000000002",
    "5a1e0000-0000-4000-8000-000000000003",
    // No CERT is ever a member of this one.
    "5a1e0000-0000-4000-8000-0000000000ff",
];
const FEEDS: [&str; 5] = ["alpha", "bravo", "charlie", "delta", "echo"];
const TARGETS: [&str; 6] = ["SG", "MY", "TH", "VN", "US", "AU"];
const TTL_MS: i64 = 3_600_000;

fn org(k: usize) -> String {
    format!("b0e2c1d4-0000-4000-8000-{k:012}")
}

/// A random deployment: regional subscribers, sharing-group members and filters.
fn random_certs(rng: &mut fastrand::Rng) -> Vec<Cert> {
    ASEAN
        .iter()
        .map(|cc| Cert {
            country: cc,
            regional: rng.u8(..4) == 0,
            groups: GROUPS[..3].iter().filter(|_| rng.bool()).map(|g| g.to_string()).collect(),
            filter: (rng.u8(..3) == 0).then(|| Filter::MENU[rng.usize(..Filter::MENU.len())]),
        })
        .collect()
}

fn config_of(certs: &[Cert], fp_revoke_after: Option<usize>, decay: Option<&Decay>) -> Config {
    let mut toml = String::from(
        "[kafka]\nbootstrap_servers = \"unused:1\"\npartitions = 1\n[dedupe]\nttl_hours = 1\n\
         [[feeds]]\nname = \"x\"\ntopic = \"feeds.x\"\nformat = \"json\"\nprovider = \"X\"\ntlp = \"GREEN\"\n",
    );
    for (k, c) in certs.iter().enumerate() {
        toml += &format!(
            "[[certs]]\ncountry = \"{}\"\nname = \"CERT {}\"\nregional = {}\nmisp_org_uuid = \"{}\"\n",
            c.country,
            c.country,
            c.regional,
            org(k)
        );
        if let Some(f) = c.filter {
            toml += &format!("filter = \"{}\"\n", f.sql());
        }
    }
    for g in GROUPS {
        let members: Vec<String> = certs
            .iter()
            .enumerate()
            .filter(|(_, c)| c.groups.contains(g))
            .map(|(k, _)| format!("\"{}\"", org(k)))
            .collect();
        toml += &format!("[[sharing_groups]]\nuuid = \"{g}\"\nmembers = [{}]\n", members.join(", "));
    }
    if let Some(n) = fp_revoke_after {
        toml += &format!("[feedback]\nfalse_positive_revoke_after = {n}\n");
    }
    if let Some(d) = decay {
        toml += &format!("[decay]\nthreshold = {}\n", d.threshold);
        for (kind, (days, speed)) in &d.curves {
            toml += &format!("[decay.types.{kind}]\nlifetime_days = {days}\nspeed = {speed}\n");
        }
    }
    Config::parse(&toml).unwrap()
}

/// A pool of indicators: domains under ccTLDs and generic TLDs, and hashes (no infrastructure).
fn pool(rng: &mut fastrand::Rng, n: usize) -> Vec<(&'static str, String, Option<&'static str>)> {
    (0..n)
        .map(|i| {
            if rng.u8(..5) == 0 {
                ("md5", format!("{:032x}", rng.u128(..)), None)
            } else {
                let (tld, cc) = TLDS[rng.usize(..TLDS.len())];
                ("domain", format!("h{i}.example.{tld}"), cc)
            }
        })
        .collect()
}

/// Decay whose lifetimes (5 to 40 minutes) let views expire and revive within a round of about
/// three hours of report time; hashes decay in some rounds.
fn random_decay(rng: &mut fastrand::Rng) -> Decay {
    let curve = |rng: &mut fastrand::Rng| (f64::from(rng.u32(5..40)) / 1440.0, [0.3, 1.0, 3.0][rng.usize(..3)]);
    let mut curves = std::collections::BTreeMap::from([("domain", curve(rng))]);
    if rng.bool() {
        curves.insert("md5", curve(rng));
    }
    Decay { threshold: f64::from(rng.u8(0..60)), curves }
}

fn random_label(rng: &mut fastrand::Rng) -> &'static str {
    match rng.u8(..20) {
        0..=5 => "GREEN",
        6..=9 => "CLEAR",
        10..=14 => "AMBER",
        15..=16 => "RED",
        17..=18 => "AMBER+STRICT",
        _ => "UNKNOWN",
    }
}

/// A random CERT's sighting of an indicator of the pool: mostly seen, some false positives and
/// expirations, under every label.
fn random_sighting(
    rng: &mut fastrand::Rng,
    pool: &[(&'static str, String, Option<&'static str>)],
    at: i64,
) -> Sighting {
    let (indicator_kind, value, _) = pool[rng.usize(..pool.len())].clone();
    Sighting {
        kind: match rng.u8(..10) {
            0..=5 => "sighting",
            6..=8 => "false_positive",
            _ => "expiration",
        },
        by: ASEAN[rng.usize(..ASEAN.len())],
        label: random_label(rng),
        count: rng.u64(1..5),
        indicator_kind,
        value,
        at,
    }
}

/// The sighting as the ingest stage hands it to the columnar stage.
fn push_sighting(builder: &mut IndicatorBatchBuilder, s: &Sighting) {
    let kind = SightingKind::ALL.into_iter().find(|k| k.as_str() == s.kind).unwrap();
    let indicator = Indicator::new(IndicatorType::parse(s.indicator_kind).unwrap(), &s.value).unwrap();
    let r = Report {
        sighting: Some(sighting::Sighting { kind, count: s.count as u32 }),
        ..Report::new(indicator, Tlp::parse(s.label))
    };
    let by = Country::parse(s.by).unwrap();
    builder.push(&r, &sighting::contribution_name(kind, by), &format!("CERT {}", s.by), s.at);
}

fn random_report(
    rng: &mut fastrand::Rng,
    n: usize,
    pool: &[(&'static str, String, Option<&'static str>)],
    at: i64,
) -> Sent {
    let (kind, value, infra) = pool[rng.usize(..pool.len())].clone();
    let label = random_label(rng);
    let feed = FEEDS[rng.usize(..FEEDS.len())];
    let mut tags = vec![format!("r{n}")];
    if rng.u8(..3) == 0 {
        tags.push("hot".into());
    }
    Sent {
        sharing_group: (rng.u8(..6) == 0).then(|| GROUPS[rng.usize(..GROUPS.len())].to_string()),
        targets: TARGETS.iter().copied().filter(|_| rng.u8(..6) == 0).collect(),
        confidence: (rng.u8(..4) != 0).then(|| rng.u8(..=100)),
        tags,
        threat: (rng.bool()).then(|| format!("threat-{n}")),
        revoked: rng.u8(..10) == 0,
        at,
        ..Sent::of(kind, &value, infra, feed, label)
    }
}

fn model_report(s: &Sent) -> Report {
    let kind = IndicatorType::parse(s.kind).unwrap();
    let mut r = Report::new(Indicator::new(kind, &s.value).unwrap(), Tlp::parse(s.label));
    r.confidence = s.confidence;
    r.tags = s.tags.clone();
    r.threat = s.threat.clone();
    r.target_countries = s.targets.iter().map(|c| Country::parse(c).unwrap()).collect();
    r.revoked = s.revoked;
    r.sharing_group = s.sharing_group.clone();
    r.distribution = s.sharing_group.as_ref().map(|_| 4);
    r
}

/// No record shows anything of a report or a sighting its CERT may not see: checked against the
/// reports and sightings themselves, not against the model's views. `shared` holds the
/// (indicator value, CERT) of every CLEAR or GREEN sighting sent.
fn assert_reveals_nothing_hidden(
    certs: &[Cert],
    by_tag: &HashMap<String, Sent>,
    shared: &BTreeSet<(String, String)>,
    k: usize,
    got: &View,
) {
    let cert = &certs[k];
    for by in &got.sighted_by {
        assert!(
            by == cert.country || shared.contains(&(got.value.clone(), by.clone())),
            "CERT {} shows a sighting by {by} it may not see: {got:?}",
            cert.country
        );
    }
    let mut visible_feeds = BTreeSet::new();
    let mut visible_countries: BTreeSet<String> = got.country.iter().cloned().collect();
    for tag in got.tags.iter().filter(|t| t.starts_with('r')) {
        let r = &by_tag[tag];
        assert!(Policy::may_see(cert, r), "CERT {} shows tag {tag} of a report it may not see: {r:?}", cert.country);
        visible_feeds.insert(r.feed.clone());
        visible_countries.extend(r.targets.iter().map(|c| c.to_string()));
    }
    for (feed, _) in &got.sources {
        assert!(
            visible_feeds.contains(feed),
            "CERT {}: source {feed} without a visible report in {got:?}",
            cert.country
        );
    }
    assert!(got.countries.is_subset(&visible_countries), "CERT {} shows hidden countries: {got:?}", cert.country);
}

#[test]
fn routing_matches_the_policy_and_reveals_nothing_hidden() {
    let seed = std::env::var("IOCFLOW_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    let rounds: usize = std::env::var("IOCFLOW_POLICY_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    println!("IOCFLOW_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut decisions, mut records, mut filtered_certs) = (0usize, 0usize, 0usize);
    // Sightings sent, records showing some, records revoked by false positives.
    let (mut sightings, mut sighted, mut fp_revoked) = (0usize, 0usize, 0usize);
    let (mut expiries, mut revivals) = (0usize, 0u64);
    let mut outcomes_total: BTreeMap<&str, u64> = BTreeMap::new();
    for round in 0..rounds {
        let certs = random_certs(&mut rng);
        filtered_certs += certs.iter().filter(|c| c.filter.is_some()).count();
        let fp_revoke_after = (rng.u8(..3) != 0).then(|| rng.usize(1..=3));
        let decay = (rng.u8(..3) != 0).then(|| random_decay(&mut rng));
        let mut core = ColumnarCore::new(&config_of(&certs, fp_revoke_after, decay.as_ref())).unwrap();
        let mut policy = Policy::new(certs.clone(), TTL_MS);
        policy.fp_revoke_after = fp_revoke_after;
        policy.decay = decay;
        let pool = pool(&mut rng, 400);
        let mut by_tag: HashMap<String, Sent> = HashMap::new();
        let mut shared: BTreeSet<(String, String)> = BTreeSet::new();
        let mut at = 1_700_000_000_000 + round as i64;
        let (mut n, total) = (0, 10_000);
        while n < total {
            let size = (1 + rng.usize(..2_000)).min(total - n);
            let before = (policy.expiries.clone(), policy.revivals.clone());
            let mut builder = IndicatorBatchBuilder::new();
            let mut want_records = Vec::new();
            let mut want_outcomes: BTreeMap<&str, u64> = BTreeMap::new();
            let mut want_withheld: BTreeMap<(String, String), usize> = BTreeMap::new();
            for _ in 0..size {
                at += 1 + rng.i64(0..2_000);
                let (value, verdict) = if rng.u8(..4) == 0 {
                    let s = random_sighting(&mut rng, &pool, at);
                    push_sighting(&mut builder, &s);
                    if s.kind == "sighting" && matches!(s.label, "CLEAR" | "GREEN") {
                        shared.insert((s.value.clone(), s.by.to_string()));
                    }
                    sightings += 1;
                    (s.value.clone(), policy.sighting(s))
                } else {
                    let s = random_report(&mut rng, n, &pool, at);
                    builder.push(&model_report(&s), &s.feed, &s.provider, s.at);
                    by_tag.insert(format!("r{n}"), s.clone());
                    (s.value.clone(), policy.report(s))
                };
                *want_outcomes.entry(verdict.outcome).or_default() += 1;
                if let Some(reason) = verdict.reason {
                    *want_withheld.entry((value, reason.to_string())).or_default() += 1;
                }
                want_records.extend(verdict.records);
                decisions += certs.len();
                n += 1;
            }
            // The pipeline looks for the expiries due by its partition's clock after each batch.
            want_records.extend(policy.sweep());
            let mut out = ColumnarOutput::default();
            core.process(0, &builder.finish().unwrap(), &mut out).unwrap();
            let encoded = core.encode(&mut out).unwrap();
            let got: Vec<(usize, View)> = encoded
                .cert_records
                .iter()
                .map(|(k, _, payload)| (*k, view_from_record(&serde_json::from_slice(payload).unwrap())))
                .collect();
            for (k, view) in &got {
                assert_reveals_nothing_hidden(&certs, &by_tag, &shared, *k, view);
                expiries += usize::from(view.expired);
                sighted += usize::from(!view.sighted_by.is_empty());
                fp_revoked += usize::from(view.revocation_reason.is_some());
            }
            records += got.len();
            let (got, want) = (by_cert_and_value(got), by_cert_and_value(want_records));
            if got != want {
                let keys: BTreeSet<_> = got.keys().chain(want.keys()).collect();
                for key in keys.into_iter().filter(|k| got.get(k) != want.get(k)).take(3) {
                    eprintln!(
                        "CERT {} {}:\n  got  {:?}\n  want {:?}",
                        certs[key.0].country,
                        key.1,
                        got.get(key),
                        want.get(key)
                    );
                    eprintln!("  CERT config: {:?}", certs[key.0]);
                }
                panic!("round {round}: records differ from the policy (IOCFLOW_SEED={seed})");
            }
            // The metrics' counts: expiries and revivals per CERT, as the model counted them.
            let since = |now: &BTreeMap<usize, u64>, then: &BTreeMap<usize, u64>| -> BTreeMap<usize, u64> {
                now.iter().map(|(k, n)| (*k, n - then.get(k).copied().unwrap_or(0))).filter(|(_, n)| *n > 0).collect()
            };
            assert_eq!(out.expiries_per_cert, since(&policy.expiries, &before.0), "expiries (IOCFLOW_SEED={seed})");
            assert_eq!(out.revivals_per_cert, since(&policy.revivals, &before.1), "revivals (IOCFLOW_SEED={seed})");
            let outcomes: BTreeMap<&str, u64> = out.outcomes.iter().map(|(k, v)| (*k, *v)).collect();
            assert_eq!(outcomes, want_outcomes, "round {round} (IOCFLOW_SEED={seed})");
            let mut withheld: BTreeMap<(String, String), usize> = BTreeMap::new();
            for (_, json) in &encoded.withheld {
                let v: serde_json::Value = serde_json::from_slice(json).unwrap();
                let key = (v["value"].as_str().unwrap().to_string(), v["reason"].as_str().unwrap().to_string());
                *withheld.entry(key).or_default() += 1;
            }
            assert_eq!(withheld, want_withheld, "round {round} (IOCFLOW_SEED={seed})");
            for (k, v) in want_outcomes {
                *outcomes_total.entry(k).or_default() += v;
            }
        }
        revivals += policy.revivals.values().sum::<u64>();
    }
    println!(
        "{decisions} decisions, {records} records, {filtered_certs} filtered CERTs, outcomes {outcomes_total:?}; \
         {sightings} sightings, {sighted} records show some, {fp_revoked} revoked as false positives; \
         {expiries} expiries, {revivals} revivals"
    );
    assert!(decisions >= 1_000_000 || rounds < 10, "at least 10^6 decisions by default");
    // The generator must reach every outcome and both filter verdicts, or the test proves little.
    for outcome in ["emitted", "suppressed", "withheld", "unrouted"] {
        assert!(outcomes_total.get(outcome).copied().unwrap_or(0) > 100, "{outcome}: {outcomes_total:?}");
    }
    if rounds >= 10 {
        assert!(sighted > 100 && fp_revoked > 10, "sightings shown {sighted}, false-positive revocations {fp_revoked}");
        assert!(expiries > 100 && revivals > 10, "expiries {expiries}, revivals {revivals}");
    }
}
