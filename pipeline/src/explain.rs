//! `iocflow explain`: why each CERT did or did not receive an indicator.
//!
//! The question a regional CERT hears most from its members is "why did we (not) get X?". Every
//! input of that decision is at hand: the indicator's entry in the changelog `<app>.state` (its
//! contributions, and what each CERT was last sent), the enrichment tables and the CERTs of the
//! configuration. So explain reads the one changelog partition that owns the indicator
//! (committed records, to the end; no running replica needed, and an auditor's read access is
//! enough), enriches the indicator with the stage's own expression, and asks the routing policy
//! (`policy/route.rs`, [`Router::explain`]) for each CERT's view with the reason for every
//! contribution it does or does not see. Nothing here decides anything: the route module stays
//! the one source of truth, so an explanation cannot drift from what was done.
//!
//! RECEIVED / NOT RECEIVED is what the state says the CERT was sent (its last emission), which is
//! what its topic holds. The reasons are the policy's view of the entry now; the label of a sent
//! view is that of its sources as the state holds them now (an emission records its sources,
//! confidence and revocation, not its label).

use crate::columnar::ColumnarCore;
use crate::columnar::enrich::EnrichmentColumns;
use crate::config::{Config, OutputFormat};
use crate::error::{Error, Result};
use crate::policy::route::{Subject, ViewExplained, Visibility};
use crate::state::changelog::{self, Forgotten, Lookup};
use crate::state::{Contribution, Entry};
use iocflow_model::time;
use iocflow_model::{Country, Indicator, IndicatorId, IndicatorType, Name, Tlp};
use iocflow_sinks::stix_indicator;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Which indicator to explain.
#[derive(Debug, Clone)]
pub enum Query {
    /// Its id (32 hex digits, as the CERT records' `id`).
    Id(IndicatorId),
    /// Its type and value as a feed would write it (defanged, any case): canonicalised as the
    /// decoders do.
    Value { kind: IndicatorType, value: String },
}

/// The answer, as `--json` prints it (`schemas/explain.schema.json`).
#[derive(Debug, Serialize)]
pub struct Explanation {
    pub indicator: IndicatorPart,
    pub state: StatePart,
    /// `None` when the indicator's value is unknown (an id the changelog does not name).
    pub enrichment: Option<EnrichmentPart>,
    pub contributions: Vec<ContributionPart>,
    pub certs: Vec<CertPart>,
}

#[derive(Debug, Serialize)]
pub struct IndicatorPart {
    #[serde(rename = "type")]
    pub kind: Option<&'static str>,
    pub value: Option<String>,
    pub id: String,
    /// The partition of `<app>.indicators` and `<app>.state` that owns it.
    pub partition: i32,
}

#[derive(Debug, Serialize)]
pub struct StatePart {
    /// `held`, `never_seen`, or forgotten: `expired`, `evicted`, `forgotten` (expired or
    /// evicted; compaction has removed what would tell).
    pub status: &'static str,
    /// When a report of it was last seen (record time), if the changelog still tells.
    pub last_seen: Option<String>,
    /// The partition's record time: the latest report time of its entries ("now" for the TTL).
    pub clock: Option<String>,
    /// Changelog records read.
    pub records_read: usize,
}

#[derive(Debug, Serialize)]
pub struct EnrichmentPart {
    /// The infrastructure country, and where it comes from: `mmdb`, `rir`, `cctld`.
    pub country: Option<Country>,
    pub country_source: Option<&'static str>,
    pub asn: Option<u32>,
    pub as_org: Option<String>,
    /// The constituent organisation (the constituency registry), its country and sectors.
    pub org: Option<String>,
    pub org_country: Option<Country>,
    pub sectors: Vec<String>,
    /// The warninglist that calls it benign.
    pub warninglist: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ContributionPart {
    pub feed: String,
    pub provider: String,
    pub tlp: &'static str,
    /// MISP distribution 4: the sharing group whose members alone may see it.
    pub sharing_group: Option<String>,
    pub confidence: Option<u8>,
    pub threat: Option<String>,
    pub tags: Vec<String>,
    pub target_countries: Vec<Country>,
    pub first_seen: String,
    pub last_seen: String,
    pub sightings: u64,
    pub revoked: bool,
}

#[derive(Debug, Serialize)]
pub struct CertPart {
    pub country: Country,
    pub name: String,
    pub topic: String,
    pub format: &'static str,
    pub regional: bool,
    pub filter: Option<String>,
    /// `received` or `not_received`.
    pub verdict: &'static str,
    pub received: Option<ReceivedPart>,
    /// Why not (empty when received).
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Serialize)]
pub struct ReceivedPart {
    /// When it was last sent, and first (record time; STIX `modified` and `created`).
    pub last_sent: String,
    pub first_sent: String,
    /// The view last sent: its sources (feeds), the CERTs whose sightings it showed,
    /// confidence, revocation, and the label of those sources as the state holds them now.
    pub sources: Vec<String>,
    pub sighted_by: Vec<Country>,
    pub confidence: Option<u8>,
    pub revoked: bool,
    pub label: Option<&'static str>,
    /// The STIX indicator id, for a CERT that takes STIX.
    pub stix_id: Option<String>,
    /// Whether its view now would be sent again on the next report in it, and why.
    pub would_send_again: bool,
    pub why: String,
    /// With `[decay]`: the last record was the view's expiry; the view's score at the partition's
    /// clock, and when it expires (the types that decay).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub expired: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

/// One reason a CERT did not receive the indicator.
#[derive(Debug, Serialize)]
pub struct Reason {
    /// `no_state`, `benign`, `tlp_red`, `tlp_amber_strict`, `unknown_label`, `sharing_group`,
    /// `not_implicated`, `sighting`, `filter`, `revoked`, `not_sent_yet`.
    pub code: &'static str,
    pub detail: String,
    /// The contribution it concerns (feed, label).
    pub feed: Option<String>,
    pub label: Option<&'static str>,
    /// `not_implicated`: the countries the contribution implicates.
    pub implicated: Option<Vec<Country>>,
    /// `filter`: the values of the view's columns the filter names, as SQL prints them.
    pub values: Option<BTreeMap<String, String>>,
}

impl Reason {
    fn new(code: &'static str, detail: String) -> Reason {
        Reason { code, detail, feed: None, label: None, implicated: None, values: None }
    }

    fn of(code: &'static str, c: &Contribution, detail: String) -> Reason {
        Reason { feed: Some(c.feed.to_string()), label: Some(c.tlp.as_str()), ..Reason::new(code, detail) }
    }
}

/// Explains `query` for every CERT of `config` (or only `only`'s). Blocking: it reads Kafka.
pub fn explain(config: &Config, query: &Query, only: Option<Country>) -> Result<Explanation> {
    Explainer::new(config)?.explain(query, only)
}

/// The policy of one deployment, loaded once (its enrichment tables, its CERTs' compiled
/// filters), to explain one indicator after another.
pub struct Explainer<'c> {
    config: &'c Config,
    core: ColumnarCore,
}

impl<'c> Explainer<'c> {
    pub fn new(config: &'c Config) -> Result<Explainer<'c>> {
        Ok(Explainer { config, core: ColumnarCore::new(config)? })
    }

    /// Explains `query` for every CERT (or only `only`'s). Blocking: it reads Kafka.
    pub fn explain(&self, query: &Query, only: Option<Country>) -> Result<Explanation> {
        let (config, core) = (self.config, &self.core);
        if let Some(cc) = only
            && !config.certs.iter().any(|c| c.country == cc)
        {
            return Err(Error::Config(format!(
                "--cert {cc}: no [[certs]] entry of this configuration has that country"
            )));
        }
        let (asked, id) = match query {
            Query::Id(id) => (None, *id),
            Query::Value { kind, value } => {
                let indicator = Indicator::new(*kind, value)
                    .map_err(|e| Error::Config(format!("--value {value:?}: not a {kind}: {e}")))?;
                let id = indicator.id;
                (Some(indicator), id)
            }
        };
        let found = changelog::lookup(config, id)?;
        // The changelog names what it holds; an id alone is named by it.
        let indicator = match asked {
            Some(i) => Some(i),
            None => found.named.as_ref().and_then(|n| Indicator::new(n.kind, &n.value).ok()).filter(|i| i.id == id),
        };
        let enriched = indicator.as_ref().map(|i| core.enrich_one(i)).transpose()?;
        let columns = enriched.as_ref().map(EnrichmentColumns::of_struct);
        let enrichment = match &columns {
            Some(Some(columns)) => Some(columns.row(0)),
            Some(None) => return Err(Error::Unexpected("the enrichment struct lacks a column".into())),
            None => None,
        };
        let mut answer = Explanation {
            indicator: IndicatorPart {
                kind: indicator.as_ref().map(|i| i.kind.as_str()),
                value: indicator.as_ref().map(|i| i.value.clone()),
                id: id.to_hex(),
                partition: found.partition,
            },
            state: state_part(&found),
            enrichment: None,
            contributions: found.entry.iter().flat_map(|e| e.contributions.iter()).map(contribution_part).collect(),
            certs: Vec::new(),
        };
        if let (Some(indicator), Some(enrichment)) = (&indicator, &enrichment) {
            let tables = core.tables().snapshot();
            let target = iocflow_enrichers::address::Target::of(indicator.kind, &indicator.value);
            answer.enrichment = Some(EnrichmentPart {
                country: enrichment.country,
                country_source: enrichment.country.and(tables.country_source(&target)),
                asn: enrichment.asn,
                as_org: enrichment.as_org.map(str::to_string),
                org: enrichment.org.map(str::to_string),
                org_country: enrichment.org_country,
                sectors: enrichment.sectors.iter().map(|s| s.to_string()).collect(),
                warninglist: enrichment.benign.map(str::to_string),
            });
        }
        let subject = match (&indicator, enrichment) {
            (Some(i), Some(enrichment)) => Some(Subject { enrichment, ..Subject::bare(id, i.kind, &i.value) }),
            _ => None,
        };
        for (k, cert) in config.certs.iter().enumerate().filter(|(_, c)| only.is_none_or(|cc| c.country == cc)) {
            let mut part = CertPart {
                country: cert.country,
                name: cert.name.clone(),
                topic: cert.topic(),
                format: match cert.format {
                    OutputFormat::Json => "json",
                    OutputFormat::Stix => "stix",
                },
                regional: cert.regional,
                filter: cert.filter.clone(),
                verdict: "not_received",
                received: None,
                reasons: Vec::new(),
            };
            match (&found.entry, &subject) {
                (None, _) => part.reasons.push(no_state(&found, config)),
                (Some(entry), None) => {
                    // An id the changelog does not name: what was sent is known, not why.
                    let last = entry.emitted.get(cert.country);
                    if let Some(last) = last {
                        part.verdict = "received";
                        part.received = Some(received(last, entry, None, None, cert.format, id));
                    } else {
                        part.reasons.push(Reason::new(
                            "unknown_value",
                            "the changelog does not name this id's value (written before iocflow named it); \
                             ask with --type and --value"
                                .into(),
                        ));
                    }
                }
                (Some(entry), Some(subject)) => {
                    let view = core.router().explain(entry, subject, k, found.clock);
                    let accepted = match (core.filter(k), &view.record) {
                        (Some(filter), Some(record)) => Some(filter.accepts([record])?[0]),
                        _ => None,
                    };
                    match view.last {
                        Some(last) => {
                            part.verdict = "received";
                            part.received = Some(received(last, entry, Some(&view), accepted, cert.format, id));
                        }
                        None => {
                            part.reasons = not_received(entry, &view, accepted, core.filter(k), subject)?;
                        }
                    }
                }
            }
            answer.certs.push(part);
        }
        Ok(answer)
    }
}

fn state_part(found: &Lookup) -> StatePart {
    let (status, last_seen) = match (&found.entry, found.forgotten) {
        (Some(e), _) => ("held", Some(e.last_seen)),
        (None, None) => ("never_seen", None),
        (None, Some(Forgotten::Expired { last_seen })) => ("expired", Some(last_seen)),
        (None, Some(Forgotten::Evicted { last_seen })) => ("evicted", Some(last_seen)),
        (None, Some(Forgotten::Unknown)) => ("forgotten", None),
    };
    StatePart {
        status,
        last_seen: last_seen.map(time::format),
        clock: (found.records > 0).then(|| time::format(found.clock)),
        records_read: found.records,
    }
}

fn contribution_part(c: &Contribution) -> ContributionPart {
    ContributionPart {
        feed: c.feed.to_string(),
        provider: c.provider.to_string(),
        tlp: c.tlp.as_str(),
        sharing_group: c.sharing_group.as_ref().map(Name::to_string),
        confidence: c.confidence,
        threat: c.threat.as_ref().map(|t| t.to_string()),
        tags: c.tags.iter().map(|t| t.to_string()).collect(),
        target_countries: c.target_countries.clone(),
        first_seen: time::format(c.first_seen),
        last_seen: time::format(c.last_seen),
        sightings: c.sightings,
        revoked: c.revoked,
    }
}

/// The one reason of a CERT when the state holds nothing of the indicator.
fn no_state(found: &Lookup, config: &Config) -> Reason {
    let ttl = format!("dedupe.ttl_hours = {}", config.dedupe.ttl.as_secs() / 3600);
    let detail = match found.forgotten {
        None => "never seen: no report of it reached the columnar stage (or its state topic was reset)".to_string(),
        Some(Forgotten::Expired { last_seen }) => {
            format!(
                "expired: last seen {}, not reported within the TTL ({ttl}) since; what CERTs were sent was \
                 forgotten with it (the next report is news to every CERT)",
                time::format(last_seen)
            )
        }
        Some(Forgotten::Evicted { last_seen }) => format!(
            "evicted: last seen {}, forgotten (least recently seen first) to keep the state within \
             dedupe.max_entries / max_bytes; what CERTs were sent was forgotten with it",
            time::format(last_seen)
        ),
        Some(Forgotten::Unknown) => format!(
            "forgotten: expired after the TTL ({ttl}) or evicted over the state's bounds (compaction removed what would tell)"
        ),
    };
    Reason::new("no_state", detail)
}

/// What a CERT was last sent, and whether its view now would be sent again.
fn received(
    last: &crate::state::Emission,
    entry: &Entry,
    view: Option<&ViewExplained<'_>>,
    accepted: Option<bool>,
    format: OutputFormat,
    id: IndicatorId,
) -> ReceivedPart {
    let label = last
        .sources
        .places()
        .filter_map(|i| entry.contributions.get(i))
        .map(|c| c.tlp)
        .filter(|t| matches!(t, Tlp::Clear | Tlp::Green | Tlp::Amber))
        .max()
        .map(Tlp::as_str);
    let (would_send_again, why) = match view {
        None => (false, "unknown: the changelog does not name this id's value".to_string()),
        Some(v) if v.owed_revocation && v.record.as_ref().is_some_and(|r| r.expired) => {
            (true, "its view has expired ([decay]): the expiry is owed to it".into())
        }
        Some(v) if v.owed_revocation => (true, "its view is revoked now: the revocation is owed to it".into()),
        Some(v) if v.record.is_none() => {
            (false, "nothing is in its view now (every contribution it saw is hidden from it now)".into())
        }
        Some(v) => match (v.news, accepted) {
            (Some(news), Some(false)) => {
                (false, format!("news ({}), but its filter rejects the view now", news.describe()))
            }
            (Some(news), _) => (true, news.describe()),
            (None, _) => (
                false,
                "no news: the same sources, no higher confidence, the same revocation, and sent within the \
                 dedupe TTL"
                    .into(),
            ),
        },
    };
    // What was sent: the feeds' reports by name, the CERTs' sightings by country.
    let sent = || last.sources.places().filter_map(|i| entry.contributions.get(i));
    let mut sources: Vec<String> = sent().filter(|c| c.sighting.is_none()).map(|c| c.feed.to_string()).collect();
    sources.sort();
    let mut sighted_by: Vec<Country> = sent().filter_map(|c| c.sighting.map(|(_, by)| by)).collect();
    sighted_by.sort();
    ReceivedPart {
        last_sent: time::format(last.at),
        first_sent: time::format(last.first_at),
        sources,
        sighted_by,
        confidence: last.confidence,
        revoked: last.revoked,
        label,
        stix_id: (format == OutputFormat::Stix).then(|| stix_indicator::stix_id(&id.to_hex())),
        would_send_again,
        why,
        expired: last.expired,
        score: view.and_then(|v| v.record.as_ref()?.score),
        valid_until: view.and_then(|v| v.record.as_ref()?.valid_until).map(time::format),
    }
}

/// Every reason that applies to a CERT that was never sent the indicator.
fn not_received(
    entry: &Entry,
    view: &ViewExplained<'_>,
    accepted: Option<bool>,
    filter: Option<&crate::policy::cert_view::CertFilter>,
    subject: &Subject<'_>,
) -> Result<Vec<Reason>> {
    let mut reasons = Vec::new();
    if view.benign_dropped {
        let list = subject.enrichment.benign.unwrap_or_default();
        reasons.push(Reason::new(
            "benign",
            format!("the warninglist {list:?} calls it benign, and this deployment drops benign indicators"),
        ));
    }
    for (c, seen) in entry.contributions.iter().zip(&view.visibility) {
        let reason = match seen {
            Visibility::Seen { .. } => continue,
            Visibility::Label(withheld) => Reason::of(
                withheld.as_str(),
                c,
                format!("feed {}'s report is labelled {}: no CERT may see it", c.feed, c.tlp),
            ),
            Visibility::SharingGroup(group) => Reason::of(
                "sharing_group",
                c,
                format!(
                    "feed {}'s report is shared with MISP sharing group {group} only, of which this CERT's organisation is not a member",
                    c.feed
                ),
            ),
            Visibility::NotImplicated { places } => {
                let mut detail = format!("feed {}'s report ({}) implicates ", c.feed, c.tlp);
                if places.is_empty() {
                    detail += "no country";
                } else {
                    let named: Vec<String> =
                        places.iter().map(|p| format!("{p} ({})", why_implicated(*p, subject, c))).collect();
                    let _ = write!(detail, "{}", named.join(", "));
                }
                detail += match c.tlp {
                    Tlp::Amber => "; AMBER goes to the CERTs of implicated countries only",
                    _ => "; this CERT is not a regional subscriber",
                };
                Reason { implicated: Some(places.clone()), ..Reason::of("not_implicated", c, detail) }
            }
            Visibility::Sighting(why) => Reason::of("sighting", c, format!("{}: {why}", c.feed)),
        };
        reasons.push(reason);
    }
    if let Some(record) = &view.record {
        if accepted == Some(false) {
            let filter = filter.expect("a verdict comes from a filter");
            let values = filter.named_values(record)?;
            let shown: Vec<String> = values.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            reasons.push(Reason {
                values: Some(values.into_iter().collect()),
                ..Reason::new(
                    "filter",
                    format!("its filter `{}` is false for its view: {}", filter.sql(), shown.join(", ")),
                )
            });
        } else if view.revoked {
            reasons.push(Reason::new(
                "revoked",
                "every source in its view has revoked it: a revocation goes only to CERTs that received it".into(),
            ));
        } else if !view.benign_dropped {
            reasons.push(Reason::new(
                "not_sent_yet",
                "its view would be sent with the next report in it (the CERT, its filter or the enrichment \
                 tables changed since the last one)"
                    .into(),
            ));
        }
    }
    Ok(reasons)
}

/// Why contribution `c` of `subject` implicates `country`: the places the policy reads
/// ([`Subject::places`]) and the feed's targets.
fn why_implicated(country: Country, subject: &Subject<'_>, c: &Contribution) -> String {
    let e = &subject.enrichment;
    let mut why = Vec::new();
    if e.country == Some(country) {
        why.push("its infrastructure".to_string());
    }
    if e.org_country == Some(country) {
        why.push(format!("the constituent organisation {}", e.org.unwrap_or("?")));
    }
    if c.target_countries.contains(&country) {
        why.push("the feed's target".to_string());
    }
    why.join(", ")
}

/// The explanation as text, for a person.
pub fn to_text(e: &Explanation) -> String {
    let mut out = String::new();
    let or_dash = |s: Option<String>| s.unwrap_or_else(|| "-".into());
    let i = &e.indicator;
    let _ = writeln!(out, "indicator  {} {}", i.kind.unwrap_or("?"), or_dash(i.value.clone()));
    let _ = writeln!(out, "id         {}  (partition {})", i.id, i.partition);
    let s = &e.state;
    let _ = writeln!(
        out,
        "state      {}{}  ({} changelog records read; partition clock {})",
        s.status,
        s.last_seen.as_ref().map(|t| format!(", last seen {t}")).unwrap_or_default(),
        s.records_read,
        or_dash(s.clock.clone())
    );
    if let Some(en) = &e.enrichment {
        let _ = writeln!(out, "\nenrichment");
        let country = en.country.map(|c| format!("{c} ({})", en.country_source.unwrap_or("?")));
        let _ = writeln!(out, "  infra country  {}", or_dash(country));
        let asn = en.asn.map(|a| format!("AS{a} {}", en.as_org.clone().unwrap_or_default()));
        let _ = writeln!(out, "  AS             {}", or_dash(asn));
        let org =
            en.org.as_ref().map(|o| format!("{o} ({})", en.org_country.map(|c| c.to_string()).unwrap_or_default()));
        let _ = writeln!(out, "  organisation   {}", or_dash(org));
        let _ = writeln!(out, "  sectors        {}", or_dash((!en.sectors.is_empty()).then(|| en.sectors.join(", "))));
        let _ = writeln!(out, "  warninglist    {}", or_dash(en.warninglist.clone()));
    }
    if !e.contributions.is_empty() {
        let _ = writeln!(out, "\ncontributions");
    }
    for c in &e.contributions {
        let _ = writeln!(
            out,
            "  {} ({}): {}{}, confidence {}, threat {}, tags [{}]",
            c.feed,
            c.provider,
            c.tlp,
            c.sharing_group.as_ref().map(|g| format!(" in sharing group {g}")).unwrap_or_default(),
            c.confidence.map_or("-".into(), |c| c.to_string()),
            or_dash(c.threat.clone()),
            c.tags.join(", ")
        );
        let targets: Vec<&str> = c.target_countries.iter().map(|t| t.as_str()).collect();
        let _ = writeln!(
            out,
            "      targets [{}], first seen {}, last seen {}, {} sighting(s){}",
            targets.join(", "),
            c.first_seen,
            c.last_seen,
            c.sightings,
            if c.revoked { ", REVOKED" } else { "" }
        );
    }
    let _ = writeln!(out, "\nCERTs");
    for c in &e.certs {
        let verdict = if c.verdict == "received" { "RECEIVED" } else { "NOT RECEIVED" };
        let _ = writeln!(out, "  {} {} ({}, {}): {verdict}", c.country, c.name, c.topic, c.format);
        if let Some(r) = &c.received {
            let _ = writeln!(
                out,
                "      last sent {} (first {}): sources [{}]{}, confidence {}, label {}{}",
                r.last_sent,
                r.first_sent,
                r.sources.join(", "),
                if r.sighted_by.is_empty() {
                    String::new()
                } else {
                    format!(", sighted by {}", r.sighted_by.iter().map(Country::as_str).collect::<Vec<_>>().join(", "))
                },
                r.confidence.map_or("-".into(), |c| c.to_string()),
                r.label.unwrap_or("-"),
                if r.revoked { ", revoked" } else { "" }
            );
            if let Some(stix) = &r.stix_id {
                let _ = writeln!(out, "      STIX id {stix}");
            }
            let again = if r.would_send_again { "would be sent again" } else { "would not be sent again" };
            let _ = writeln!(out, "      now: {again}: {}", r.why);
        }
        for r in &c.reasons {
            let _ = writeln!(out, "      - {}: {}", r.code, r.detail);
        }
    }
    out
}
