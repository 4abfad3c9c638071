//! Stage 2, columnar: `<app>.indicators` → per partition: merge into state → enrich → per-CERT
//! view → TLP policy → emit when the view changed → `cert.<cc>.indicators`, and the reports
//! nobody may see → `<app>.withheld`.
//!
//! [`ColumnarCore`] is the whole decision path over Arrow batches with no Kafka in it (tests,
//! benches and file backfills use it directly); [`stage`] binds it to the internal topic through
//! the micro-batch loop both stages share.

pub mod enrich;
pub(crate) mod stage;
pub(crate) mod table_reload;

use crate::columnar::enrich::{Enrichment, EnrichmentColumns};
use crate::config::Config;
use crate::config::{BenignAction, ChangelogFormat, OutputFormat};
use crate::error::{Corrupt, Error, Result};
use crate::indicator_batch::{IndicatorBatchBuilder, IndicatorColumns, opt};
use crate::policy::cert_view::CertFilter;
use crate::policy::decay::Decay;
use crate::policy::route::{Candidate, Emit, Outcome, Recipient, Router, Subject};
use crate::state::changelog;
use crate::state::{Bounds, Claim, Contribution, Named, PartitionState};
use datafusion::arrow::array::{Array, Int64Array, RecordBatch, StringArray, StructArray, UInt8Array, UInt32Array};
use iocflow_enrichers::tables::{SharedTables, TableLoad};
use iocflow_model::sighting;
use iocflow_model::time::Millis;
use iocflow_model::{Country, Indicator, IndicatorId, IndicatorType, Names, Report, Tlp};
use iocflow_sinks::stix_indicator;
use iocflow_sinks::withheld::{WithheldReason, WithheldRecord};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// What one or more batches decided: the records for the CERTs and the withheld audit records,
/// not yet encoded ([`ColumnarCore::encode`]), and the counts for the metrics.
#[derive(Debug, Default)]
pub struct ColumnarOutput {
    pub emits: Vec<Emit>,
    pub withheld: Vec<WithheldRecord>,
    pub emitted_per_cert: BTreeMap<usize, u64>,
    /// Of those, revocations because the CERTs reported a false positive.
    pub false_positive_revocations_per_cert: BTreeMap<usize, u64>,
    /// Of those, expiries (`[decay]`), and records that revive an expired view.
    pub expiries_per_cert: BTreeMap<usize, u64>,
    pub revivals_per_cert: BTreeMap<usize, u64>,
    pub suppressed: u64,
    pub withheld_per_reason: BTreeMap<WithheldReason, u64>,
    /// Each report's one outcome: `emitted`, `suppressed`, `withheld` or `unrouted` (visible in
    /// principle, but no CERT is a recipient).
    pub outcomes: BTreeMap<&'static str, u64>,
    pub earliest: Option<Millis>,
    /// Per enricher, the rows it resolved and those it could not.
    pub enrich_lookups: BTreeMap<&'static str, (u64, u64)>,
    /// Time the state's tables spent growing for new indicators.
    pub state_growth: Duration,
}

/// The records of a [`ColumnarOutput`], encoded and ready to send.
#[derive(Debug, Default)]
pub struct Encoded {
    /// (CERT index, key, record in the CERT's format).
    pub cert_records: Vec<(usize, String, Vec<u8>)>,
    /// (key, JSON record).
    pub withheld: Vec<(String, Vec<u8>)>,
}

/// What a micro-batch changed in the state, as changelog records, and how many indicators the
/// bounds forgot.
#[derive(Debug, Default)]
pub struct Changelog {
    pub entries: Vec<ChangelogEntry>,
    /// Indicators not seen for `dedupe.ttl`.
    pub expired: u64,
    /// Indicators forgotten, least recently seen first, to stay within `dedupe.max_entries` and
    /// `dedupe.max_bytes`.
    pub evicted: u64,
}

/// One record of the changelog `<app>.state`, in the partition of the indicator it holds.
#[derive(Debug)]
pub struct ChangelogEntry {
    pub partition: i32,
    /// The indicator id, 32 hex digits.
    pub key: Vec<u8>,
    /// The whole entry; `None` (a tombstone) when the indicator was forgotten.
    pub value: Option<Vec<u8>>,
    /// What the entry is about (not for a tombstone): written as the record's headers.
    pub named: Option<Named>,
}

/// An indicator batch whose every row can be processed: its typed columns, and each row's id
/// and type.
pub struct CheckedBatch<'a> {
    batch: &'a RecordBatch,
    cols: IndicatorColumns<'a>,
    rows: Vec<(IndicatorId, IndicatorType)>,
}

/// The columnar decision path, per internal partition, without Kafka.
pub struct ColumnarCore {
    router: Router,
    /// How the enrichment tables loaded at start.
    pub table_loads: Vec<TableLoad>,
    /// Per CERT, its compiled filter, if it has one.
    filters: Vec<Option<CertFilter>>,
    /// Per CERT, its output format.
    formats: Vec<OutputFormat>,
    enrichment: Enrichment,
    states: HashMap<i32, PartitionState>,
    bounds: Bounds,
    changelog_format: ChangelogFormat,
}

impl ColumnarCore {
    pub fn new(config: &Config) -> Result<ColumnarCore> {
        let filters = config
            .certs
            .iter()
            .map(|c| c.filter.as_deref().map(CertFilter::compile).transpose())
            .collect::<Result<Vec<_>>>()?;
        let recipients = config
            .certs
            .iter()
            .zip(&filters)
            .map(|(c, f)| Recipient {
                country: c.country,
                regional: c.regional,
                sharing_groups: config.sharing_groups_of(c.misp_org_uuid),
                filtered: f.is_some(),
            })
            .collect();
        let bounds = Bounds::of(config);
        let (enrichment, table_loads) = Enrichment::new(config)?;
        Ok(ColumnarCore {
            router: Router::new(recipients, bounds.ttl_ms, config.enrich.benign == BenignAction::Drop)
                .revoking_false_positives(config.feedback.false_positive_revoke_after)
                .decaying(config.decay.as_ref().map(Decay::of)),
            filters,
            formats: config.certs.iter().map(|c| c.format).collect(),
            enrichment,
            table_loads,
            states: HashMap::new(),
            bounds,
            changelog_format: config.dedupe.changelog_format,
        })
    }

    /// The routing policy (`iocflow explain` re-evaluates its decisions).
    pub(crate) fn router(&self) -> &Router {
        &self.router
    }

    /// CERT `k`'s filter, if it has one.
    pub(crate) fn filter(&self, k: usize) -> Option<&CertFilter> {
        self.filters[k].as_ref()
    }

    /// The enrichment of one indicator, as a batch of it is enriched: a struct array of one row,
    /// read with [`EnrichmentColumns::of_struct`].
    pub(crate) fn enrich_one(&self, indicator: &Indicator) -> Result<StructArray> {
        let mut b = IndicatorBatchBuilder::new();
        b.push(&Report::new(indicator.clone(), Tlp::Clear), "", "", 0);
        self.enrichment.evaluate(&b.finish()?)
    }

    /// The enrichment tables, for reloads.
    pub fn tables(&self) -> SharedTables {
        self.enrichment.tables().clone()
    }

    /// Puts reloaded enrichment tables in use (between batches); true if there were any.
    pub(crate) fn promote_tables(&self) -> bool {
        self.enrichment.tables().promote()
    }

    /// Whether a partition's state is loaded.
    pub(crate) fn has_partition(&self, partition: i32) -> bool {
        self.states.contains_key(&partition)
    }

    /// Installs a partition's state (restored from the changelog). With `[decay]`, each
    /// indicator some CERT holds live is scheduled at the earliest any of its views could expire;
    /// the batches' sweeps work out the rest.
    pub(crate) fn install_partition(&mut self, partition: i32, mut state: PartitionState) {
        for (id, kind) in state.due().unscheduled() {
            let at = state.get(&id).and_then(|entry| self.router.earliest_expiry(kind, entry));
            state.due().schedule(id, || unreachable!("a restored indicator is held"), at);
        }
        self.states.insert(partition, state);
    }

    /// Estimated bytes of state, over all partitions.
    pub fn state_bytes(&self) -> usize {
        self.states.values().map(PartitionState::bytes).sum()
    }

    /// Enforces the state bounds and hands out the changelog entries of everything that changed:
    /// the whole entry per changed indicator, a tombstone per forgotten one.
    pub fn take_changelog(&mut self) -> Changelog {
        let mut out = Changelog::default();
        for (p, state) in &mut self.states {
            let changes = state.take_changes(self.bounds);
            out.expired += changes.expired;
            out.evicted += changes.evicted;
            let entry = |id: IndicatorId, value: Option<Vec<u8>>, named: Option<Named>| ChangelogEntry {
                partition: *p,
                key: id.to_hex().into_bytes(),
                value,
                named,
            };
            let format = self.changelog_format;
            out.entries.extend(
                changes
                    .updated
                    .into_iter()
                    .map(|(id, named, e)| entry(id, Some(changelog::encode(e, format)), Some(named))),
            );
            out.entries.extend(changes.removed.into_iter().map(|id| entry(id, None, None)));
        }
        out
    }

    /// Enforces the state bounds without writing the changes anywhere (`iocflow process`).
    pub fn enforce_bounds(&mut self) {
        for state in self.states.values_mut() {
            state.take_changes(self.bounds);
        }
    }

    /// Indicators held in state, over all partitions.
    pub fn state_entries(&self) -> usize {
        self.states.values().map(PartitionState::len).sum()
    }

    /// Forgets every partition's state.
    pub(crate) fn drop_all_partitions(&mut self) {
        self.states.clear();
    }

    /// Forgets a partition's state (it moved to another replica).
    pub fn drop_partition(&mut self, partition: i32) {
        self.states.remove(&partition);
    }

    /// Encodes the records `out` holds (taking them): each CERT's in its format, the withheld
    /// ones in JSON.
    pub fn encode(&self, out: &mut ColumnarOutput) -> Result<Encoded> {
        let mut encoded = Encoded::default();
        for e in std::mem::take(&mut out.emits) {
            let payload = match self.formats[e.cert] {
                OutputFormat::Json => e.record.to_json()?,
                OutputFormat::Stix => stix_indicator::encode(&e.record, e.created, e.modified)?,
            };
            encoded.cert_records.push((e.cert, e.record.id.to_hex(), payload));
        }
        for record in std::mem::take(&mut out.withheld) {
            encoded.withheld.push((record.id.to_hex(), record.to_json()?));
        }
        Ok(encoded)
    }

    /// Checks that `batch` is an indicator batch as the ingest stage writes it (its columns, and
    /// an id and a type iocflow knows on every row) before anything of it touches the state: a
    /// batch that is not is refused whole, with the reason.
    pub fn check<'a>(&self, batch: &'a RecordBatch) -> Result<CheckedBatch<'a>, String> {
        let cols = IndicatorColumns::of(batch).ok_or("unexpected columns")?;
        let rows = (0..batch.num_rows())
            .map(|i| {
                let id = IndicatorId::from_hex(cols.id.value(i)).ok_or_else(|| format!("row {i}: bad id"))?;
                let kind = IndicatorType::parse(cols.kind.value(i)).map_err(|_| format!("row {i}: bad type"))?;
                Ok((id, kind))
            })
            .collect::<Result<_, String>>()?;
        Ok(CheckedBatch { batch, cols, rows })
    }

    /// [`check`](ColumnarCore::check)s one indicator batch of `partition` and runs it through
    /// [`process_checked`](ColumnarCore::process_checked).
    pub fn process(&mut self, partition: i32, batch: &RecordBatch, out: &mut ColumnarOutput) -> Result<()> {
        let checked = self.check(batch).map_err(|why| {
            // The batch's message is the caller's to name (its topic and offset: `stage.rs`).
            Error::Corrupt(Corrupt { topic: "indicators".into(), partition, offset: -1, why })
        })?;
        self.process_checked(partition, checked, out)
    }

    /// Runs one checked indicator batch of `partition` through state, enrichment and routing;
    /// the decided records are added to `out` (see [`encode`](ColumnarCore::encode)).
    ///
    /// Three passes: every row is merged into the state and routed to the CERTs without a filter
    /// (in arrival order); each filtered CERT's candidate records are then judged by its filter
    /// in one vectorised evaluation and settled in arrival order; last, each row's outcome is
    /// counted and the withheld ones are written.
    pub fn process_checked(
        &mut self,
        partition: i32,
        checked: CheckedBatch<'_>,
        out: &mut ColumnarOutput,
    ) -> Result<()> {
        let CheckedBatch { batch, cols, rows: ids } = checked;
        let enrichment = self.enrichment.evaluate(batch)?;
        let enriched = EnrichmentColumns::of_struct(&enrichment)
            .ok_or_else(|| Error::Unexpected("the enrichment struct lacks a column".into()))?;
        let rows = batch.num_rows() as u64;
        for (enricher, misses) in [
            ("infra_country", enriched.country.null_count()),
            ("asn", enriched.asn.null_count()),
            ("constituency", enriched.org.null_count()),
            ("warninglist", enriched.benign.null_count()),
        ] {
            let counts = out.enrich_lookups.entry(enricher).or_default();
            counts.0 += rows - misses as u64;
            counts.1 += misses as u64;
        }
        let state = self.states.entry(partition).or_default();
        let infra = |i: usize| opt(enriched.country, i, StringArray::value);
        let first_emit = out.emits.len();
        // Room for a record per row up front: a record is a few hundred bytes, and growing the
        // list one doubling at a time copies them again.
        out.emits.reserve(batch.num_rows());
        let emits = &mut out.emits;
        let mut candidates: Vec<Vec<Candidate>> = vec![Vec::new(); self.router.certs()];
        // A batch's feed, provider, threat, tag and sharing-group columns hold a few distinct values: one
        // shared string each, not one per row (a `Names` per column, as it remembers the last).
        let (mut feeds, mut providers, mut threats, mut tags, mut groups) =
            (Names::default(), Names::default(), Names::default(), Names::default(), Names::default());
        let mut fates = Vec::with_capacity(batch.num_rows());
        let subject = |i: usize, (id, kind): (IndicatorId, IndicatorType)| Subject {
            enrichment: enriched.row(i),
            ..Subject::bare(id, kind, cols.value.value(i))
        };
        for (i, &(id, kind)) in ids.iter().enumerate() {
            let reported_at = cols.reported_at.value(i);
            let clock = state.clock(reported_at);
            out.earliest = Some(out.earliest.map_or(reported_at, |e| e.min(reported_at)));
            let feed = cols.feed.value(i);
            // Only a CERT's sighting has a count: a feed's report is not read for a CERT's name.
            let count = opt(cols.sightings, i, UInt32Array::value);
            let claim = state.claim(Claim {
                feed: feeds.get(feed),
                sighting: count.and_then(|_| sighting::of_contribution(feed)),
                provider: providers.get(cols.provider.value(i)),
                tlp: Tlp::parse(cols.tlp.value(i)),
                confidence: opt(cols.confidence, i, UInt8Array::value),
                threat: opt(cols.threat, i, StringArray::value).map(|t| threats.get(t)),
                tags: tags.set(cols.tags.row(i)),
                // Written by the decoders as codes; anything else could implicate no CERT.
                target_countries: cols.target_countries.row(i).filter_map(Country::parse).collect(),
                revoked: cols.revoked.value(i),
                sharing_group: opt(cols.sharing_group, i, StringArray::value).map(|g| groups.get(g)),
            });
            let mut contribution = Contribution::new(
                claim,
                opt(cols.first_seen, i, Int64Array::value).unwrap_or(reported_at),
                opt(cols.last_seen, i, Int64Array::value).unwrap_or(reported_at),
            );
            if let Some(count) = count {
                contribution.sightings = count.into();
            }
            let subject = subject(i, (id, kind));
            let decays = self.router.decays(kind);
            let due = decays && state.due().due(&id).is_some_and(|at| at <= clock);
            let (entry, changed) = state.entry(id, kind, subject.value);
            // A view that expired before this row (by the clock) gets its expiry first, as it
            // would have in a batch of its own: decisions do not depend on where batches end.
            if due || decays && changed {
                self.router.expire(entry, &subject, clock, Some(i), emits, &mut candidates);
            }
            let fate = self.router.apply(entry, subject, contribution, (i, reported_at, clock), emits, &mut candidates);
            fates.push(fate);
        }
        for (k, pending) in candidates.into_iter().enumerate() {
            if pending.is_empty() {
                continue;
            }
            let filter = self.filters[k].as_ref().expect("only filtered CERTs have candidates");
            let verdicts = filter.accepts(pending.iter().map(|c| &c.record))?;
            for (candidate, accepted) in pending.into_iter().zip(verdicts) {
                let entry = state.get_mut(&candidate.id).expect("the row merged it into the state");
                let fate = &mut fates[candidate.row];
                self.router.settle(entry, k, candidate, accepted, fate, emits);
            }
        }
        if self.router.decays_any() {
            let touched = ids.iter().enumerate().map(|(i, &row)| subject(i, row));
            expire_due(&self.router, &self.enrichment, state, touched, emits)?;
        }
        // Room for the batch's withheld records at once (a quarter of the rows, typically).
        out.withheld.reserve(fates.iter().filter(|f| matches!(f.outcome(), Outcome::Withheld(_))).count());
        // Counted here, added to the output's map once per batch.
        let mut outcomes = [("emitted", 0), ("suppressed", 0), ("unrouted", 0), ("withheld", 0)];
        for (i, (fate, (id, kind))) in fates.iter().zip(ids).enumerate() {
            let outcome = fate.outcome();
            outcomes[match outcome {
                Outcome::Emitted => 0,
                Outcome::Suppressed => 1,
                Outcome::Withheld(WithheldReason::NoRecipient) => 2,
                Outcome::Withheld(_) => 3,
            }]
            .1 += 1;
            match outcome {
                Outcome::Emitted => {}
                Outcome::Suppressed => out.suppressed += 1,
                Outcome::Withheld(reason) => {
                    // Read back from the columns: only withheld rows pay for these copies.
                    let mut countries: Vec<Country> = infra(i).and_then(Country::parse).into_iter().collect();
                    countries.extend(cols.target_countries.row(i).filter_map(Country::parse));
                    countries.sort();
                    countries.dedup();
                    let record = WithheldRecord {
                        id,
                        kind: kind.as_str(),
                        value: cols.value.value(i).to_string(),
                        feed: feeds.get(cols.feed.value(i)),
                        provider: providers.get(cols.provider.value(i)),
                        tlp: Tlp::parse(cols.tlp.value(i)).as_str(),
                        reason,
                        countries,
                        reported_at: cols.reported_at.value(i),
                    };
                    out.withheld.push(record);
                    *out.withheld_per_reason.entry(reason).or_default() += 1;
                }
            }
        }
        for (name, n) in outcomes.into_iter().filter(|(_, n)| *n > 0) {
            *out.outcomes.entry(name).or_default() += n;
        }
        for e in &out.emits[first_emit..] {
            *out.emitted_per_cert.entry(e.cert).or_default() += 1;
            for (happened, count) in [
                (e.record.revocation_reason.is_some(), &mut out.false_positive_revocations_per_cert),
                (e.record.expired, &mut out.expiries_per_cert),
                (e.revived, &mut out.revivals_per_cert),
            ] {
                if happened {
                    *count.entry(e.cert).or_default() += 1;
                }
            }
        }
        out.state_growth += state.take_growth();
        Ok(())
    }
}

/// After a batch, with `[decay]`: each indicator the batch touched is checked for expiries by the
/// partition's clock and scheduled again; then every other indicator due by the clock is
/// enriched (one batch for all) and checked the same way. An entry an expiry changed is written
/// to the changelog with the batch.
fn expire_due<'s>(
    router: &Router,
    enrichment: &Enrichment,
    state: &mut PartitionState,
    touched: impl Iterator<Item = Subject<'s>>,
    emits: &mut Vec<Emit>,
) -> Result<()> {
    let clock = state.clock(Millis::MIN);
    let mut seen = std::collections::HashSet::new();
    for subject in touched.filter(|s| router.decays(s.kind)) {
        if !seen.insert(subject.id) {
            continue;
        }
        let entry = state.get_mut(&subject.id).expect("the row merged it into the state");
        let next = router.expire(entry, &subject, clock, None, emits, &mut []);
        state.due().schedule(subject.id, || Named { kind: subject.kind, value: subject.value.into() }, next);
    }
    let due = state.due().take_due(clock);
    if due.is_empty() {
        return Ok(());
    }
    let mut b = IndicatorBatchBuilder::new();
    let mut held = Vec::with_capacity(due.len());
    for (id, named) in due {
        // (forgetting an entry takes it out of the queue: every indicator due is held)
        if let Ok(indicator) = Indicator::new(named.kind, &named.value) {
            b.push(&Report::new(indicator, Tlp::Clear), "", "", clock);
            held.push((id, named));
        }
    }
    let enriched = enrichment.evaluate(&b.finish()?)?;
    let enriched = EnrichmentColumns::of_struct(&enriched)
        .ok_or_else(|| Error::Unexpected("the enrichment struct lacks a column".into()))?;
    for (i, (id, named)) in held.iter().enumerate() {
        let subject = Subject { enrichment: enriched.row(i), ..Subject::bare(*id, named.kind, &named.value) };
        let sent = emits.len();
        let entry = state.get_mut(id).expect("a due indicator is held");
        let next = router.expire(entry, &subject, clock, None, emits, &mut []);
        if emits.len() > sent {
            state.entry(*id, named.kind, &named.value);
        }
        state.due().schedule(*id, || named.clone(), next);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deployment with fixture tables: ASN ranges, a constituency registry, warninglists.
    fn core(dir: &std::path::Path, benign: &str) -> ColumnarCore {
        std::fs::write(
            dir.join("asn.csv"),
            "192.0.2.0,192.0.2.255,64500,Example Transit\n2001:db8::,2001:db8::ffff,64501,V6 Net\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("constituency.toml"),
            "[[organisation]]\nname = \"Example Bank Berhad\"\ncountry = \"MY\"\nsectors = [\"finance\"]\n\
             cidrs = [\"192.0.2.128/25\"]\ndomains = [\"examplebank.com\"]\n",
        )
        .unwrap();
        std::fs::create_dir(dir.join("lists")).unwrap();
        std::fs::write(
            dir.join("lists/docs.json"),
            r#"{"name":"Documentation","type":"cidr","list":["2001:db8::/32"]}"#,
        )
        .unwrap();
        let text = format!(
            "[kafka]\nbootstrap_servers = \"x:1\"\n[enrich]\nasn_csv = [\"asn.csv\"]\nconstituency = \"constituency.toml\"\n\
             warninglists = [\"lists\"]\nbenign = \"{benign}\"\n\
             [[feeds]]\nname = \"f\"\ntopic = \"feeds.f\"\nformat = \"json\"\nprovider = \"P\"\ntlp = \"AMBER\"\n\
             [[certs]]\ncountry = \"MY\"\nname = \"MyCERT\"\n[[certs]]\ncountry = \"SG\"\nname = \"SingCERT\"\n"
        );
        std::fs::write(dir.join("iocflow.toml"), text).unwrap();
        ColumnarCore::new(&Config::load(&dir.join("iocflow.toml")).unwrap()).unwrap()
    }

    fn run(core: &mut ColumnarCore, indicators: &[(IndicatorType, &str)]) -> (ColumnarOutput, Encoded) {
        let mut b = IndicatorBatchBuilder::new();
        for (k, v) in indicators {
            b.push(&Report::new(Indicator::new(*k, v).unwrap(), Tlp::Amber), "f", "P", 1_000);
        }
        let mut out = ColumnarOutput::default();
        core.process(0, &b.finish().unwrap(), &mut out).unwrap();
        let encoded = core.encode(&mut out).unwrap();
        (out, encoded)
    }

    fn records(encoded: &Encoded) -> Vec<(usize, serde_json::Value)> {
        encoded.cert_records.iter().map(|(k, _, json)| (*k, serde_json::from_slice(json).unwrap())).collect()
    }

    #[test]
    fn the_constituency_implicates_its_cert_and_fills_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut core = core(dir.path(), "tag");
        let (out, encoded) = run(
            &mut core,
            &[
                (IndicatorType::Domain, "login.examplebank.com"),
                (IndicatorType::Ipv4, "192.0.2.200"),
                (IndicatorType::Ipv4, "192.0.2.9"),
                (IndicatorType::Ipv6, "2001:db8::1"),
            ],
        );
        let got = records(&encoded);
        // AMBER reaches implicated CERTs only: the bank's domain on a .com and its address block
        // implicate MY through the registry; 192.0.2.9 and the IPv6 address implicate nobody.
        assert_eq!(got.len(), 2, "{got:?}");
        let (k, domain) = &got[0];
        assert_eq!(*k, 0);
        assert_eq!(domain["org"], "Example Bank Berhad");
        assert_eq!(domain["sectors"], serde_json::json!(["finance"]));
        assert_eq!(domain["countries"], serde_json::json!(["MY"]));
        assert_eq!(domain["country"], serde_json::Value::Null);
        let (_, ip) = &got[1];
        assert_eq!((ip["asn"].as_u64(), ip["as_org"].as_str()), (Some(64500), Some("Example Transit")));
        assert_eq!(ip["org"], "Example Bank Berhad");
        assert_eq!(out.outcomes["unrouted"], 2);
        assert_eq!(out.enrich_lookups["constituency"], (2, 2));
        assert_eq!(out.enrich_lookups["asn"], (3, 1));
    }

    /// A batch with one row iocflow cannot read is refused whole: the rows before it do not
    /// touch the state, and the error says which row and why.
    #[test]
    fn a_batch_with_an_unreadable_row_is_refused_before_it_touches_the_state() {
        use datafusion::arrow::array::ArrayRef;
        let dir = tempfile::tempdir().unwrap();
        let mut core = core(dir.path(), "tag");
        let mut b = IndicatorBatchBuilder::new();
        for v in ["a.example.sg", "b.example.sg"] {
            b.push(&Report::new(Indicator::new(IndicatorType::Domain, v).unwrap(), Tlp::Clear), "f", "P", 1_000);
        }
        let good = b.finish().unwrap();
        let kind = good.schema().index_of("type").unwrap();
        let mut columns = good.columns().to_vec();
        columns[kind] = std::sync::Arc::new(StringArray::from(vec!["domain", "gopher-url"])) as ArrayRef;
        let bad = RecordBatch::try_new(good.schema(), columns).unwrap();
        let mut out = ColumnarOutput::default();
        match core.process(3, &bad, &mut out) {
            Err(Error::Corrupt(c)) => assert_eq!((c.partition, c.why.as_str()), (3, "row 1: bad type")),
            other => panic!("{other:?}"),
        }
        assert_eq!(core.state_entries(), 0);
        assert!(out.emits.is_empty());
        core.process(3, &good, &mut out).unwrap();
        assert_eq!((core.state_entries(), out.emits.len()), (2, 2));
    }

    #[test]
    fn benign_indicators_are_tagged_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut core = core(dir.path(), "tag");
        // A documentation address that the registry would route: tagged, still sent.
        let mut b = IndicatorBatchBuilder::new();
        let mut report = Report::new(Indicator::new(IndicatorType::Ipv6, "2001:db8::1").unwrap(), Tlp::Amber);
        report.target_countries = vec![Country::parse("SG").unwrap()];
        b.push(&report, "f", "P", 1_000);
        let batch = b.finish().unwrap();
        let mut out = ColumnarOutput::default();
        core.process(0, &batch, &mut out).unwrap();
        let got = records(&core.encode(&mut out).unwrap());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1["tags"], serde_json::json!(["warninglist:Documentation"]));
        assert_eq!(got[0].1["asn"], 64501);

        let dir = tempfile::tempdir().unwrap();
        let mut core = super::tests::core(dir.path(), "drop");
        let mut out = ColumnarOutput::default();
        core.process(0, &batch, &mut out).unwrap();
        assert!(out.emits.is_empty());
        assert_eq!(core.encode(&mut out).unwrap().withheld.len(), 1);
        assert_eq!(out.withheld_per_reason[&WithheldReason::Benign], 1);
    }

    #[test]
    fn a_broken_table_fails_at_start_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        core(dir.path(), "tag");
        std::fs::write(dir.path().join("constituency.toml"), "[[organisation]]\nname = \"X\"\ncountry = \"XX1\"\n")
            .unwrap();
        let config = Config::load(&dir.path().join("iocflow.toml")).unwrap();
        let e = ColumnarCore::new(&config).err().unwrap().to_string();
        assert!(e.contains("enrich") && e.contains("constituency.toml"), "{e}");
    }
}
