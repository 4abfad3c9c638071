//! The changelog `<app>.state`: every change of the dedupe state, so a partition's state can be
//! rebuilt wherever the partition goes.
//!
//! One record per changed indicator per micro-batch: key = the indicator id (32 hex digits),
//! value = the whole entry, or a tombstone when the entry is forgotten. The topic is
//! compacted, so it holds one record per live indicator, and it has exactly the partitions of
//! `<app>.indicators`: changelog partition p holds the state of indicator partition p. In
//! exactly-once mode the records commit in the same transaction as the outputs and the input
//! offsets, so the state read back always matches what the CERTs were sent.

use crate::config::{ChangelogFormat, Config};
use crate::error::{Corrupt, Error, Result};
use crate::kafka::{client_config, connection};
use crate::state::{Entry, Named, PartitionState};
use iocflow_model::time::Millis;
use iocflow_model::{IndicatorId, IndicatorType};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::{Duration, Instant};

/// A client context for which the end of a partition is news, not an error to log.
struct QuietEof;

impl ClientContext for QuietEof {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)) {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for QuietEof {}

/// The first byte of a binary entry: its layout's version. The rest is the entry in postcard
/// (serde's field order, integers as varints, strings with their length), so the layout is the
/// `Entry` struct's: a field added at the end, or an enum variant added last, needs a new version
/// (and a reader for this one); JSON entries begin with `{`, which no version will take.
const BINARY_V1: u8 = 1;

/// The value of a changelog record, in `format`.
pub fn encode(entry: &Entry, format: ChangelogFormat) -> Vec<u8> {
    match format {
        ChangelogFormat::Binary => {
            let mut out = Vec::with_capacity(32 + 64 * entry.contributions.len() + 32 * entry.emitted.len());
            out.push(BINARY_V1);
            postcard::to_extend(entry, out).expect("an entry always serialises")
        }
        ChangelogFormat::Json => {
            // Room for its contributions (about 250 bytes each) and emissions (about 100 each), so
            // the writer does not grow the buffer on the way.
            let typical = 64 + 256 * entry.contributions.len() + 128 * entry.emitted.len();
            iocflow_sinks::json(entry, typical).expect("an entry always serialises")
        }
    }
}

/// Reads a changelog value back, binary or JSON (as versions before the binary entries wrote).
pub fn decode(bytes: &[u8]) -> std::result::Result<Entry, String> {
    match bytes.first() {
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| format!("a JSON entry: {e}")),
        Some(&BINARY_V1) => postcard::from_bytes(&bytes[1..]).map_err(|e| format!("a binary entry (v1): {e}")),
        Some(v) => Err(format!("an entry of unknown version {v} (written by a newer iocflow?)")),
        None => Err("an empty entry".into()),
    }
}

/// The headers of a changelog record: what the entry is about (`type`, `value`), which the state
/// itself does not hold.
pub fn headers(named: &Named) -> OwnedHeaders {
    OwnedHeaders::new_with_capacity(2)
        .insert(Header { key: "type", value: Some(named.kind.as_str()) })
        .insert(Header { key: "value", value: Some(named.value.as_ref()) })
}

/// What a changelog record's headers say the entry is about (records written before the
/// headers, and tombstones, say nothing).
fn named_of<M: Message>(m: &M) -> Option<Named> {
    let headers = m.headers()?;
    let text = |key: &str| {
        headers.iter().find(|h| h.key == key).and_then(|h| h.value).and_then(|v| std::str::from_utf8(v).ok())
    };
    Some(Named { kind: IndicatorType::parse(text("type")?).ok()?, value: text("value")?.into() })
}

/// Reads the committed records of `partitions` of the changelog to the end (the last stable
/// offset: a transaction still open there belongs to a dead or fenced instance and can only
/// abort), handing each to `record` with its id. One reader serves all the partitions.
/// Blocking: run it off the async executor.
fn read_to_end(
    config: &Config,
    reader: ClientConfig,
    partitions: &[i32],
    mut record: impl FnMut(IndicatorId, &BorrowedMessage<'_>) -> Result<()>,
) -> Result<()> {
    let topic = config.state_topic();
    if partitions.is_empty() {
        return Ok(());
    }
    let consumer: BaseConsumer<QuietEof> = reader.create_with_context(QuietEof)?;
    // Leaders known before the assignment: otherwise librdkafka finds none yet and retries the
    // first offset query on a 500 ms timer, every restore. A broker away now is waited for below.
    let _ = consumer.fetch_metadata(Some(&topic), Duration::from_secs(5));
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(&topic, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut open: BTreeSet<i32> = partitions.iter().copied().collect();
    // The end is reached within a transaction timeout of its last writer's death (its open
    // transaction aborts); while the broker is away, the wait is extended: that is no stuck end.
    let patience = config.kafka.transaction_timeout + Duration::from_secs(30);
    let mut deadline = Instant::now() + patience;
    while !open.is_empty() {
        if Instant::now() > deadline {
            return Err(Error::Topics(format!("reading {topic} partitions {open:?} did not reach the end")));
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) if connection::is_transient(&e) => {
                tracing::warn!("reading {topic}: {e}; waiting for the broker");
                deadline = deadline.max(Instant::now() + patience);
                std::thread::sleep(Duration::from_millis(200));
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => {
                let id = m
                    .key()
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .and_then(IndicatorId::from_hex)
                    .ok_or_else(|| corrupt(&m, "bad key".into()))?;
                record(id, &m)?;
            }
        }
    }
    Ok(())
}

/// The error for a changelog record iocflow cannot read.
fn corrupt(m: &BorrowedMessage<'_>, why: String) -> Error {
    Error::Corrupt(Corrupt { topic: m.topic().into(), partition: m.partition(), offset: m.offset(), why })
}

/// Rebuilds the state of `partitions` from the changelog (committed records, to the end).
/// Blocking: run it off the async executor.
pub fn restore(config: &Config, partitions: &[i32]) -> Result<BTreeMap<i32, PartitionState>> {
    let mut states: BTreeMap<i32, PartitionState> =
        partitions.iter().map(|p| (*p, PartitionState::default())).collect();
    read_to_end(config, client_config::reader(config), partitions, |id, m| {
        let state = states.get_mut(&m.partition()).ok_or_else(|| corrupt(m, "unexpected partition".into()))?;
        match m.payload() {
            None => state.restore_removal(&id),
            // With `[decay]` what the entry is about is kept, for its expiries.
            Some(v) => {
                let named = config.decay.as_ref().and_then(|_| named_of(m));
                state.restore(id, decode(v).map_err(|why| corrupt(m, why))?, named)
            }
        }
        Ok(())
    })?;
    Ok(states)
}

/// What the changelog holds about one indicator (`iocflow explain`).
#[derive(Debug, Default)]
pub struct Lookup {
    /// The changelog partition that holds it.
    pub partition: i32,
    /// Its entry, unless it was never seen or has been forgotten.
    pub entry: Option<Entry>,
    /// What the entry is about, from the latest record's headers.
    pub named: Option<Named>,
    /// It was forgotten (a tombstone is its latest record).
    pub forgotten: Option<Forgotten>,
    /// The partition's record time: the latest `last_seen` of the entries read.
    pub clock: Millis,
    /// Records read.
    pub records: usize,
}

/// Why an indicator was forgotten, as far as the changelog still tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgotten {
    /// Not seen for the TTL (record time), when the partition's clock passed `last_seen + ttl`.
    Expired { last_seen: Millis },
    /// Dropped, least recently seen first, to keep the state within its bounds.
    Evicted { last_seen: Millis },
    /// Compaction has removed the entry before the tombstone: expired or evicted.
    Unknown,
}

/// Reads `id`'s partition of the changelog to the end as an auditor may (the auditors' group
/// prefix, committed records only) and returns what it holds about `id`. Every entry of the
/// partition is decoded, for the partition's clock.
pub fn lookup(config: &Config, id: IndicatorId) -> Result<Lookup> {
    let partition = id.partition(config.kafka.partitions) as i32;
    let ttl = config.dedupe.ttl.as_millis() as Millis;
    let mut found = Lookup { partition, ..Lookup::default() };
    read_to_end(config, client_config::audit_reader(config, "explain"), &[partition], |key, m| {
        found.records += 1;
        let entry = m.payload().map(decode).transpose().map_err(|why| corrupt(m, why))?;
        if let Some(e) = &entry {
            found.clock = found.clock.max(e.last_seen);
        }
        if key != id {
            return Ok(());
        }
        match entry {
            Some(e) => {
                found.named = named_of(m).or(found.named.take());
                found.entry = Some(e);
                found.forgotten = None;
            }
            None => {
                found.forgotten = Some(match found.entry.take() {
                    Some(e) if crate::state::expired(e.last_seen, found.clock, ttl) => {
                        Forgotten::Expired { last_seen: e.last_seen }
                    }
                    Some(e) => Forgotten::Evicted { last_seen: e.last_seen },
                    None => Forgotten::Unknown,
                });
            }
        }
        Ok(())
    })?;
    Ok(found)
}

/// Rebuilds the state of every partition (`iocflow state`: the whole topic, by an operator).
fn restore_all(config: &Config) -> Result<BTreeMap<i32, PartitionState>> {
    restore(config, &(0..config.kafka.partitions as i32).collect::<Vec<_>>())
}

/// Writes the committed state of `partitions` (all when empty) as JSON lines to `out`, one per
/// indicator (`{"partition", "id", "entry"}`), or only `only`'s; returns how many it wrote.
/// What `iocflow state dump` prints: the entries as iocflow restores them, whatever their format.
pub fn dump(config: &Config, partitions: &[i32], only: Option<IndicatorId>, out: &mut impl Write) -> Result<usize> {
    let states = if partitions.is_empty() { restore_all(config)? } else { restore(config, partitions)? };
    let mut written = 0;
    for (p, state) in &states {
        for (id, entry) in state.iter().filter(|(id, _)| only.is_none_or(|o| o == **id)) {
            let line = serde_json::json!({"partition": p, "id": id.to_hex(), "entry": entry});
            writeln!(out, "{line}").map_err(Error::io("standard output"))?;
            written += 1;
        }
    }
    Ok(written)
}

/// Writes every live entry of the changelog again, in the config's `dedupe.changelog_format`
/// (`iocflow state rewrite`): after it, compaction leaves only entries of that format. Run it with
/// no replica running (a replica's writes could interleave); it returns how many it wrote.
pub fn rewrite(config: &Config) -> Result<usize> {
    use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
    /// The first delivery that failed, if any.
    #[derive(Default)]
    struct Deliveries(std::sync::Mutex<Option<String>>);
    impl ClientContext for Deliveries {}
    impl ProducerContext for Deliveries {
        type DeliveryOpaque = ();
        fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
            if let Err((e, _)) = result {
                self.0.lock().expect("not poisoned").get_or_insert_with(|| e.to_string());
            }
        }
    }
    let states = restore_all(config)?;
    let producer: BaseProducer<Deliveries> =
        client_config::producer(config).create_with_context(Deliveries::default())?;
    let topic = config.state_topic();
    let mut written = 0;
    for (p, state) in &states {
        for (id, entry) in state.iter() {
            let (key, value) = (id.to_hex(), encode(entry, config.dedupe.changelog_format));
            loop {
                let record = BaseRecord::<str, [u8]>::to(&topic).partition(*p).key(&key).payload(&value);
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        producer.poll(Duration::from_millis(100));
                    }
                    Err((e, _)) => return Err(e.into()),
                }
            }
            written += 1;
        }
    }
    producer.flush(Duration::from_secs(120))?;
    if let Some(failed) = producer.context().0.lock().expect("not poisoned").take() {
        return Err(Error::Unexpected(format!("rewriting {topic}: a record was not delivered: {failed}")));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Claim, Contribution, Emission, Sources};
    use iocflow_model::{Country, Tlp};
    use std::sync::Arc;

    #[test]
    fn entries_round_trip() {
        let mut e = Entry::default();
        let claim = Claim {
            confidence: Some(70),
            threat: Some("phishing".into()),
            tags: ["t"].into_iter().map(iocflow_model::Name::from).collect(),
            target_countries: vec![Country::parse("SG").unwrap()],
            ..Claim::plain("f", "P", Tlp::AmberStrict)
        };
        e.merge(Contribution { sightings: 3, ..Contribution::new(Arc::new(claim), 1, 2) }, 2);
        for cc in ["TH", "SG"] {
            let sent = Emission {
                country: Country::parse(cc).unwrap(),
                sources: Sources::default().with(0),
                confidence: Some(70),
                revoked: false,
                at: 2,
                first_at: 1,
                expired: false,
            };
            e.emitted.set(sent);
        }
        let bytes = encode(&e, ChangelogFormat::Json);
        assert_eq!(decode(&bytes).unwrap(), e);
        // What CERTs were sent is a JSON object by country, as it always was in the changelog.
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["emitted"]["SG"]["at"], 2, "{json}");
        assert_eq!(e.emitted.iter().map(|(cc, _)| cc.as_str()).collect::<Vec<_>>(), ["SG", "TH"]);
        assert!(bytes.len() < 500, "{} bytes", bytes.len());

        let binary = encode(&e, ChangelogFormat::Binary);
        assert_eq!(binary[0], BINARY_V1);
        assert_eq!(decode(&binary).unwrap(), e);
        assert_eq!(serde_json::to_value(decode(&binary).unwrap()).unwrap(), json, "printed as the JSON entry would be");
        assert!(binary.len() * 3 < bytes.len(), "{} binary bytes, {} JSON", binary.len(), bytes.len());
    }

    #[test]
    fn unknown_versions_and_truncated_entries_are_refused_with_the_reason() {
        let binary = encode(&Entry::default(), ChangelogFormat::Binary);
        assert!(decode(&[7, 0, 0]).unwrap_err().contains("unknown version 7"));
        assert!(decode(&[]).unwrap_err().contains("empty"));
        let e = Entry { last_seen: 1 << 40, ..Entry::default() };
        let long = encode(&e, ChangelogFormat::Binary);
        assert!(decode(&long[..long.len() - 1]).unwrap_err().contains("binary entry (v1)"));
        assert_eq!(decode(&binary).unwrap(), Entry::default());
        assert!(decode(b"{\"contributions\":").unwrap_err().contains("JSON entry"));
    }

    #[test]
    fn entries_written_before_the_emissions_were_a_list_still_read() {
        // As a B-tree map wrote it (keys sorted); and with the keys in another order.
        let emission = r#"{"sources":["f"],"confidence":70,"revoked":false,"at":2,"first_at":1}"#;
        for (first, second) in [("SG", "TH"), ("TH", "SG")] {
            let json = format!(
                r#"{{"contributions":[],"emitted":{{"{first}":{emission},"{second}":{emission}}},"last_seen":2}}"#
            );
            let e = decode(json.as_bytes()).unwrap();
            assert_eq!(e.emitted.iter().map(|(cc, _)| cc.as_str()).collect::<Vec<_>>(), ["SG", "TH"]);
            assert_eq!(e.emitted.get(Country::parse("TH").unwrap()).map(|s| s.at), Some(2));
            assert!(e.emitted.get(Country::parse("MY").unwrap()).is_none());
        }
        let bad = format!(r#"{{"contributions":[],"emitted":{{"SGP":{emission}}},"last_seen":2}}"#);
        let e = decode(bad.as_bytes()).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("\"SGP\" is not a two-letter country code"), "{e}");
    }

    /// Bytes and text written by iocflow before contributions shared their claims and before an
    /// emission's sources were places among the contributions: the layout did not change, so they
    /// read back as the same entry and it writes the same bytes again.
    #[test]
    fn entries_written_before_claims_were_shared_read_and_write_the_same() {
        let binary: Vec<u8> = {
            let hex = concat!(
                "01021061627573652e63682d75726c686175730861627573652e636802014601076d616c77617265020762616e6b696e",
                "6706656d6f7465748084c6b9e663c0adcdb9e66302025347024d5900010d617365616e2d66696e616e636503096d656d",
                "6265722d7468085468616943455254000000008284c6b9e6638284c6b9e6630001000102025347021061627573652e63",
                "682d75726c68617573096d656d6265722d7468014600c0adcdb9e6638084c6b9e663025448011061627573652e63682d",
                "75726c68617573014600c0adcdb9e6638084c6b9e663c0adcdb9e663",
            );
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
        };
        let json = r#"{"contributions":[{"feed":"abuse.ch-urlhaus","provider":"abuse.ch","tlp":"AMBER","confidence":70,"threat":"malware","tags":["banking","emotet"],"first_seen":1714557600000,"last_seen":1714557660000,"target_countries":["SG","MY"],"revoked":false,"sharing_group":"asean-finance","sightings":3},{"feed":"member-th","provider":"ThaiCERT","tlp":"CLEAR","confidence":null,"threat":null,"tags":[],"first_seen":1714557600001,"last_seen":1714557600001,"target_countries":[],"revoked":true,"sharing_group":null,"sightings":1}],"emitted":{"SG":{"sources":["abuse.ch-urlhaus","member-th"],"confidence":70,"revoked":false,"at":1714557660000,"first_at":1714557600000},"TH":{"sources":["abuse.ch-urlhaus"],"confidence":70,"revoked":false,"at":1714557660000,"first_at":1714557600000}},"last_seen":1714557660000}"#;
        let cc = |c| Country::parse(c).unwrap();
        let urlhaus = Claim {
            confidence: Some(70),
            threat: Some("malware".into()),
            tags: ["emotet", "banking"].into_iter().map(iocflow_model::Name::from).collect(),
            target_countries: vec![cc("SG"), cc("MY")],
            sharing_group: Some("asean-finance".into()),
            ..Claim::plain("abuse.ch-urlhaus", "abuse.ch", Tlp::Amber)
        };
        let thaicert = Claim { revoked: true, ..Claim::plain("member-th", "ThaiCERT", Tlp::Clear) };
        let mut e = Entry::default();
        let (t0, t1) = (1_714_557_600_000, 1_714_557_660_000);
        e.merge(Contribution { sightings: 3, ..Contribution::new(Arc::new(urlhaus), t0, t1) }, t1);
        e.merge(Contribution::new(Arc::new(thaicert), t0 + 1, t0 + 1), t0 + 1);
        // Places: 0 is abuse.ch-urlhaus, 1 member-th.
        let first = Sources::default().with(0);
        for (c, sources) in [("TH", first), ("SG", first.with(1))] {
            e.emitted.set(Emission {
                country: cc(c),
                sources,
                confidence: Some(70),
                revoked: false,
                at: t1,
                first_at: t0,
                expired: false,
            });
        }
        assert_eq!(decode(&binary).unwrap(), e);
        assert_eq!(decode(json.as_bytes()).unwrap(), e);
        assert_eq!(encode(&e, ChangelogFormat::Binary), binary);
        assert_eq!(String::from_utf8(encode(&e, ChangelogFormat::Json)).unwrap(), json);
    }
}
