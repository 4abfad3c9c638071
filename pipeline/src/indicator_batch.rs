//! The Arrow micro-batches that travel on `<app>.indicators` between the two stages.
//!
//! The ingest stage appends reports to one [`IndicatorBatchBuilder`] per internal partition and
//! ships each finished batch as one Kafka message in the Arrow IPC stream format. The columnar
//! stage reads them back with [`decode_ipc`]. Every report keeps its own row (no merging here):
//! what each CERT may see is decided later, per report.
//!
//! Times are Int64 milliseconds since the epoch; `reported_at` is the Kafka timestamp of the feed
//! record, the clock that every dedupe and TTL decision uses. `address` is the address an
//! indicator names (16 bytes, an IPv4 address IPv4-mapped), as the decoder parsed it, so the
//! enrichment does not parse the value again.
//!
//! Versions of iocflow meet on this topic during a rolling upgrade or a rollback, so the schema
//! only grows, by nullable columns at its end: [`decode_ipc`] reads a batch of an older version
//! with the columns it lacks empty, and one of a newer version without the columns it added.

use crate::error::Result;
use datafusion::arrow::array::{Array, ListBuilder, RecordBatch, StringBuilder, new_null_array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use iocflow_model::indicator::address_octets;
use iocflow_model::time::Millis;
use iocflow_model::{Country, Report};

iocflow_enrichers::arrow_columns! {
    /// Typed access to the columns of an indicator batch (checked once per batch).
    pub(crate) struct IndicatorColumns, IndicatorColumnBuilders {
        id: "id", Utf8, required;
        kind: "type", Utf8, required;
        value: "value", Utf8, required;
        feed: "feed", Utf8, required;
        provider: "provider", Utf8, required;
        tlp: "tlp", Utf8, required;
        confidence: "confidence", UInt8, nullable;
        threat: "threat", Utf8, nullable;
        tags: "tags", Utf8List, required;
        first_seen: "first_seen", Int64, nullable;
        last_seen: "last_seen", Int64, nullable;
        valid_until: "valid_until", Int64, nullable;
        target_countries: "target_countries", Utf8List, required;
        target_sectors: "target_sectors", Utf8List, required;
        revoked: "revoked", Boolean, required;
        distribution: "distribution", UInt8, nullable;
        sharing_group: "sharing_group", Utf8, nullable;
        reported_at: "reported_at", Int64, required;
        // New columns go last and nullable (see the module doc).
        address: "address", Address, nullable;
        /// How many times a CERT's sighting says it saw the indicator (sightings only).
        sightings: "sightings", UInt32, nullable;
    }
}

/// The schema of an indicator batch.
pub fn schema() -> SchemaRef {
    IndicatorColumnBuilders::schema()
}

/// Appends reports, row by row, into the columns of one batch.
pub struct IndicatorBatchBuilder {
    columns: IndicatorColumnBuilders,
    rows: usize,
    bytes: usize,
}

impl Default for IndicatorBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl IndicatorBatchBuilder {
    pub fn new() -> Self {
        IndicatorBatchBuilder { columns: IndicatorColumnBuilders::with_capacity(1024), rows: 0, bytes: 0 }
    }

    /// Appends one report of `feed` (by `provider`), received at `reported_at`.
    pub fn push(&mut self, r: &Report, feed: &str, provider: &str, reported_at: Millis) {
        let id = r.indicator.id.to_hex();
        let c = &mut self.columns;
        c.id.append_value(&id);
        c.kind.append_value(r.indicator.kind.as_str());
        c.value.append_value(&r.indicator.value);
        c.feed.append_value(feed);
        c.provider.append_value(provider);
        c.tlp.append_value(r.tlp.as_str());
        c.confidence.append_option(r.confidence);
        c.threat.append_option(r.threat.as_deref());
        append_list(&mut c.tags, r.tags.iter().map(String::as_str));
        c.first_seen.append_option(r.first_seen);
        c.last_seen.append_option(r.last_seen);
        c.valid_until.append_option(r.valid_until);
        append_list(&mut c.target_countries, r.target_countries.iter().map(Country::as_str));
        append_list(&mut c.target_sectors, r.target_sectors.iter().map(String::as_str));
        c.revoked.append_value(r.revoked);
        c.distribution.append_option(r.distribution);
        c.sharing_group.append_option(r.sharing_group.as_deref());
        c.reported_at.append_value(reported_at);
        match r.indicator.address {
            Some(ip) => c.address.append_value(address_octets(ip)).expect("16 bytes"),
            None => c.address.append_null(),
        }
        c.sightings.append_option(r.sighting.map(|s| s.count));
        self.rows += 1;
        self.bytes += 96
            + id.len()
            + r.indicator.value.len()
            + feed.len()
            + provider.len()
            + r.threat.as_ref().map_or(0, String::len)
            + r.tags.iter().map(|t| t.len() + 4).sum::<usize>()
            + r.target_countries.len() * 6
            + r.target_sectors.iter().map(|t| t.len() + 4).sum::<usize>()
            + r.indicator.address.map_or(0, |_| 16);
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// An estimate of the encoded size, for closing batches on bytes.
    pub(crate) fn approx_bytes(&self) -> usize {
        self.bytes
    }

    /// Finishes the batch and resets the builder for the next one.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        self.rows = 0;
        self.bytes = 0;
        Ok(RecordBatch::try_new(schema(), self.columns.finish())?)
    }
}

fn append_list<'a>(b: &mut ListBuilder<StringBuilder>, items: impl IntoIterator<Item = &'a str>) {
    for item in items {
        b.values().append_value(item);
    }
    b.append(true);
}

/// Encodes a batch as one Arrow IPC stream (schema + batch), the payload of one Kafka message.
pub(crate) fn encode_ipc(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(batch.get_array_memory_size() / 2 + 1024);
    {
        let mut w = StreamWriter::try_new(&mut out, batch.schema_ref())?;
        w.write(batch)?;
        w.finish()?;
    }
    Ok(out)
}

/// Encodes a batch as Kafka messages of at most `max_bytes` each: one message when it fits, else
/// the batch split in halves (in order), again until each half fits. A topic refuses a message
/// above its `max.message.bytes`, and a refused batch would stop the stage; a split one only
/// costs a second message. A single row is never split (a row is far below any limit: a report
/// comes from a record of at most `max_record_bytes`).
pub(crate) fn encode_ipc_within(batch: &RecordBatch, max_bytes: usize) -> Result<Vec<Vec<u8>>> {
    let encoded = encode_ipc(batch)?;
    if encoded.len() <= max_bytes || batch.num_rows() <= 1 {
        return Ok(vec![encoded]);
    }
    let half = batch.num_rows() / 2;
    let mut messages = encode_ipc_within(&batch.slice(0, half), max_bytes)?;
    messages.extend(encode_ipc_within(&batch.slice(half, batch.num_rows() - half), max_bytes)?);
    Ok(messages)
}

/// Decodes the batches of one Kafka message, each in this version's schema: a batch of an older
/// version (a prefix of the schema, lacking nullable columns only) gets those columns empty; one
/// of a newer version (the schema and more columns after it) loses the columns it added.
pub(crate) fn decode_ipc(bytes: &[u8]) -> Result<Vec<RecordBatch>> {
    let reader = StreamReader::try_new(bytes, None)?;
    let mut batches = Vec::new();
    let schema = schema();
    let current = schema.fields();
    for b in reader {
        let b = b?;
        let fields = b.schema_ref().fields();
        if fields == current {
            batches.push(b);
            continue;
        }
        let shared = fields.len().min(current.len());
        let missing = &current[shared..];
        if fields[..shared] != current[..shared] || missing.iter().any(|f| !f.is_nullable()) {
            return Err(
                datafusion::arrow::error::ArrowError::SchemaError("not an iocflow indicator batch".into()).into()
            );
        }
        let mut columns = b.columns()[..shared].to_vec();
        columns.extend(missing.iter().map(|f| new_null_array(f.data_type(), b.num_rows())));
        batches.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    Ok(batches)
}

/// An optional value of a primitive column.
pub(crate) fn opt<'a, T: Array, V>(a: &'a T, i: usize, get: impl Fn(&'a T, usize) -> V) -> Option<V> {
    (!a.is_null(i)).then(|| get(a, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::UInt8Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use iocflow_model::{Indicator, IndicatorType, Tlp};
    use std::sync::Arc;

    /// A batch above the message limit goes out as several messages, each within it, holding
    /// every row once and in order.
    #[test]
    fn a_batch_is_split_to_fit_the_message_limit() {
        let mut b = IndicatorBatchBuilder::new();
        for i in 0..1000 {
            let r = Report::new(
                Indicator::new(IndicatorType::Url, &format!("http://x{i}.example/{}", "p".repeat(500))).unwrap(),
                Tlp::Green,
            );
            b.push(&r, "f", "P", i);
        }
        let batch = b.finish().unwrap();
        let whole = encode_ipc(&batch).unwrap().len();
        let limit = whole / 5;
        let messages = encode_ipc_within(&batch, limit).unwrap();
        assert!(messages.len() >= 5, "{} messages", messages.len());
        assert!(messages.iter().all(|m| m.len() <= limit));
        let rows: Vec<i64> = messages
            .iter()
            .flat_map(|m| decode_ipc(m).unwrap())
            .flat_map(|b| IndicatorColumns::of(&b).unwrap().reported_at.values().to_vec())
            .collect();
        assert_eq!(rows, (0..1000).collect::<Vec<i64>>());
        assert_eq!(encode_ipc_within(&batch, whole).unwrap().len(), 1);
    }

    #[test]
    fn round_trips_through_ipc() {
        let mut b = IndicatorBatchBuilder::new();
        let mut r = Report::new(Indicator::new(IndicatorType::Domain, "x.example.sg").unwrap(), Tlp::Green);
        r.tags = vec!["bank".into(), "phish".into()];
        r.target_countries = vec![Country::parse("MY").unwrap()];
        r.confidence = Some(70);
        b.push(&r, "feed-a", "Vendor A", 1_000);
        r.confidence = None;
        b.push(&r, "feed-b", "Vendor B", 2_000);
        assert_eq!(b.rows(), 2);
        let batch = b.finish().unwrap();
        assert_eq!(b.rows(), 0);
        let back = decode_ipc(&encode_ipc(&batch).unwrap()).unwrap();
        assert_eq!(back, vec![batch]);
        let c = IndicatorColumns::of(&back[0]).unwrap();
        assert_eq!(c.value.value(1), "x.example.sg");
        assert_eq!(opt(c.confidence, 0, UInt8Array::value), Some(70));
        assert_eq!(opt(c.confidence, 1, UInt8Array::value), None);
        assert_eq!(c.tags.row(0).collect::<Vec<_>>(), ["bank", "phish"]);
        assert_eq!(c.reported_at.value(1), 2_000);
    }

    /// The schema is a contract between versions that meet on the internal topic: written out
    /// here field by field, as earlier versions wrote it.
    #[test]
    fn the_schema_is_the_one_earlier_versions_wrote() {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        let expected = Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("type", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, false),
            Field::new("feed", DataType::Utf8, false),
            Field::new("provider", DataType::Utf8, false),
            Field::new("tlp", DataType::Utf8, false),
            Field::new("confidence", DataType::UInt8, true),
            Field::new("threat", DataType::Utf8, true),
            Field::new("tags", list.clone(), false),
            Field::new("first_seen", DataType::Int64, true),
            Field::new("last_seen", DataType::Int64, true),
            Field::new("valid_until", DataType::Int64, true),
            Field::new("target_countries", list.clone(), false),
            Field::new("target_sectors", list, false),
            Field::new("revoked", DataType::Boolean, false),
            Field::new("distribution", DataType::UInt8, true),
            Field::new("sharing_group", DataType::Utf8, true),
            Field::new("reported_at", DataType::Int64, false),
            Field::new("address", DataType::FixedSizeBinary(16), true),
            Field::new("sightings", DataType::UInt32, true),
        ]);
        assert_eq!(schema().as_ref(), &expected);
        // And what the builders lay out is of that schema (RecordBatch::try_new checks it).
        let mut b = IndicatorBatchBuilder::new();
        b.push(&Report::new(Indicator::new(IndicatorType::Ipv4, "192.0.2.1").unwrap(), Tlp::Green), "f", "p", 0);
        assert_eq!(b.finish().unwrap().schema().as_ref(), &expected);
    }

    #[test]
    fn refuses_foreign_bytes() {
        assert!(decode_ipc(b"not arrow").is_err());
    }

    /// Versions meet on the internal topic: older batches read with the columns they lack empty,
    /// newer ones without the columns they added; anything else is refused.
    #[test]
    fn reads_the_batches_of_older_and_newer_versions() {
        use datafusion::arrow::array::Int32Array;
        let mut b = IndicatorBatchBuilder::new();
        b.push(&Report::new(Indicator::new(IndicatorType::Ipv4, "192.0.2.1").unwrap(), Tlp::Green), "f", "p", 0);
        let batch = b.finish().unwrap();
        let n = batch.num_columns();
        let ipc = |batch: &RecordBatch| encode_ipc(batch).unwrap();

        let older = batch.project(&(0..n - 1).collect::<Vec<_>>()).unwrap();
        let read = decode_ipc(&ipc(&older)).unwrap();
        assert_eq!(read[0].schema(), schema());
        assert_eq!(read[0].column(n - 1).as_ref(), new_null_array(schema().field(n - 1).data_type(), 1).as_ref());
        assert_eq!(read[0].project(&(0..n - 1).collect::<Vec<_>>()).unwrap(), older);

        let mut fields = batch.schema().fields().to_vec();
        fields.push(Arc::new(Field::new("from_the_future", DataType::Int32, true)));
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(Int32Array::from(vec![7])));
        let newer = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        assert_eq!(decode_ipc(&ipc(&newer)).unwrap(), vec![batch.clone()]);

        // Missing a column that is not nullable, or a column changed: not a batch of any version.
        let reported_at = batch.schema().index_of("reported_at").unwrap();
        let lacking = batch.project(&(0..reported_at).collect::<Vec<_>>()).unwrap();
        assert!(decode_ipc(&ipc(&lacking)).is_err(), "reported_at is required");
        let reordered = batch.project(&[1, 0]).unwrap();
        assert!(decode_ipc(&ipc(&reordered)).is_err());
    }
}
