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
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, FixedSizeBinaryBuilder, Int64Array, Int64Builder, ListArray,
    ListBuilder, RecordBatch, StringArray, StringBuilder, UInt8Array, UInt8Builder, new_null_array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use iocflow_model::indicator::address_octets;
use iocflow_model::time::Millis;
use iocflow_model::{Country, Report};
use std::sync::{Arc, LazyLock};

/// Column names, in schema order.
pub mod col {
    pub const ID: &str = "id";
    pub const TYPE: &str = "type";
    pub const VALUE: &str = "value";
    pub const FEED: &str = "feed";
    pub const PROVIDER: &str = "provider";
    pub const TLP: &str = "tlp";
    pub const CONFIDENCE: &str = "confidence";
    pub const THREAT: &str = "threat";
    pub const TAGS: &str = "tags";
    pub const FIRST_SEEN: &str = "first_seen";
    pub const LAST_SEEN: &str = "last_seen";
    pub const VALID_UNTIL: &str = "valid_until";
    pub const TARGET_COUNTRIES: &str = "target_countries";
    pub const TARGET_SECTORS: &str = "target_sectors";
    pub const REVOKED: &str = "revoked";
    pub const DISTRIBUTION: &str = "distribution";
    pub const SHARING_GROUP: &str = "sharing_group";
    pub const REPORTED_AT: &str = "reported_at";
    pub const ADDRESS: &str = "address";
}

/// The type of the `address` column: an IPv6 address, or an IPv4 address IPv4-mapped.
pub(crate) fn address_type() -> DataType {
    DataType::FixedSizeBinary(16)
}

fn utf8_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(col::ID, DataType::Utf8, false),
        Field::new(col::TYPE, DataType::Utf8, false),
        Field::new(col::VALUE, DataType::Utf8, false),
        Field::new(col::FEED, DataType::Utf8, false),
        Field::new(col::PROVIDER, DataType::Utf8, false),
        Field::new(col::TLP, DataType::Utf8, false),
        Field::new(col::CONFIDENCE, DataType::UInt8, true),
        Field::new(col::THREAT, DataType::Utf8, true),
        Field::new(col::TAGS, utf8_list(), false),
        Field::new(col::FIRST_SEEN, DataType::Int64, true),
        Field::new(col::LAST_SEEN, DataType::Int64, true),
        Field::new(col::VALID_UNTIL, DataType::Int64, true),
        Field::new(col::TARGET_COUNTRIES, utf8_list(), false),
        Field::new(col::TARGET_SECTORS, utf8_list(), false),
        Field::new(col::REVOKED, DataType::Boolean, false),
        Field::new(col::DISTRIBUTION, DataType::UInt8, true),
        Field::new(col::SHARING_GROUP, DataType::Utf8, true),
        Field::new(col::REPORTED_AT, DataType::Int64, false),
        // New columns go last and nullable (see the module doc).
        Field::new(col::ADDRESS, address_type(), true),
    ]))
});

/// The schema of an indicator batch.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Appends reports, row by row, into the columns of one batch.
pub struct IndicatorBatchBuilder {
    id: StringBuilder,
    kind: StringBuilder,
    value: StringBuilder,
    feed: StringBuilder,
    provider: StringBuilder,
    tlp: StringBuilder,
    confidence: UInt8Builder,
    threat: StringBuilder,
    tags: ListBuilder<StringBuilder>,
    first_seen: Int64Builder,
    last_seen: Int64Builder,
    valid_until: Int64Builder,
    target_countries: ListBuilder<StringBuilder>,
    target_sectors: ListBuilder<StringBuilder>,
    revoked: BooleanBuilder,
    distribution: UInt8Builder,
    sharing_group: StringBuilder,
    reported_at: Int64Builder,
    address: FixedSizeBinaryBuilder,
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
        IndicatorBatchBuilder {
            id: StringBuilder::new(),
            kind: StringBuilder::new(),
            value: StringBuilder::new(),
            feed: StringBuilder::new(),
            provider: StringBuilder::new(),
            tlp: StringBuilder::new(),
            confidence: UInt8Builder::new(),
            threat: StringBuilder::new(),
            tags: ListBuilder::new(StringBuilder::new()),
            first_seen: Int64Builder::new(),
            last_seen: Int64Builder::new(),
            valid_until: Int64Builder::new(),
            target_countries: ListBuilder::new(StringBuilder::new()),
            target_sectors: ListBuilder::new(StringBuilder::new()),
            revoked: BooleanBuilder::new(),
            distribution: UInt8Builder::new(),
            sharing_group: StringBuilder::new(),
            reported_at: Int64Builder::new(),
            address: FixedSizeBinaryBuilder::new(16),
            rows: 0,
            bytes: 0,
        }
    }

    /// Appends one report of `feed` (by `provider`), received at `reported_at`.
    pub fn push(&mut self, r: &Report, feed: &str, provider: &str, reported_at: Millis) {
        let id = r.indicator.id.to_hex();
        self.id.append_value(&id);
        self.kind.append_value(r.indicator.kind.as_str());
        self.value.append_value(&r.indicator.value);
        self.feed.append_value(feed);
        self.provider.append_value(provider);
        self.tlp.append_value(r.tlp.as_str());
        self.confidence.append_option(r.confidence);
        self.threat.append_option(r.threat.as_deref());
        append_list(&mut self.tags, r.tags.iter().map(String::as_str));
        self.first_seen.append_option(r.first_seen);
        self.last_seen.append_option(r.last_seen);
        self.valid_until.append_option(r.valid_until);
        append_list(&mut self.target_countries, r.target_countries.iter().map(Country::as_str));
        append_list(&mut self.target_sectors, r.target_sectors.iter().map(String::as_str));
        self.revoked.append_value(r.revoked);
        self.distribution.append_option(r.distribution);
        self.sharing_group.append_option(r.sharing_group.as_deref());
        self.reported_at.append_value(reported_at);
        match r.indicator.address {
            Some(ip) => self.address.append_value(address_octets(ip)).expect("16 bytes"),
            None => self.address.append_null(),
        }
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
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.feed.finish()),
            Arc::new(self.provider.finish()),
            Arc::new(self.tlp.finish()),
            Arc::new(self.confidence.finish()),
            Arc::new(self.threat.finish()),
            Arc::new(self.tags.finish()),
            Arc::new(self.first_seen.finish()),
            Arc::new(self.last_seen.finish()),
            Arc::new(self.valid_until.finish()),
            Arc::new(self.target_countries.finish()),
            Arc::new(self.target_sectors.finish()),
            Arc::new(self.revoked.finish()),
            Arc::new(self.distribution.finish()),
            Arc::new(self.sharing_group.finish()),
            Arc::new(self.reported_at.finish()),
            Arc::new(self.address.finish()),
        ];
        self.rows = 0;
        self.bytes = 0;
        Ok(RecordBatch::try_new(schema(), columns)?)
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

/// Typed access to the columns of an indicator batch (checked once per batch).
pub(crate) struct IndicatorColumns<'a> {
    pub id: &'a StringArray,
    pub kind: &'a StringArray,
    pub value: &'a StringArray,
    pub feed: &'a StringArray,
    pub provider: &'a StringArray,
    pub tlp: &'a StringArray,
    pub confidence: &'a UInt8Array,
    pub threat: &'a StringArray,
    pub tags: StrLists<'a>,
    pub first_seen: &'a Int64Array,
    pub last_seen: &'a Int64Array,
    pub target_countries: StrLists<'a>,
    pub revoked: &'a BooleanArray,
    pub sharing_group: &'a StringArray,
    pub reported_at: &'a Int64Array,
}

impl<'a> IndicatorColumns<'a> {
    pub fn of(batch: &'a RecordBatch) -> Option<Self> {
        fn get<'b, T: 'static>(batch: &'b RecordBatch, name: &str) -> Option<&'b T> {
            batch.column_by_name(name)?.as_any().downcast_ref::<T>()
        }
        Some(IndicatorColumns {
            id: get(batch, col::ID)?,
            kind: get(batch, col::TYPE)?,
            value: get(batch, col::VALUE)?,
            feed: get(batch, col::FEED)?,
            provider: get(batch, col::PROVIDER)?,
            tlp: get(batch, col::TLP)?,
            confidence: get(batch, col::CONFIDENCE)?,
            threat: get(batch, col::THREAT)?,
            tags: StrLists::of(get(batch, col::TAGS)?),
            first_seen: get(batch, col::FIRST_SEEN)?,
            last_seen: get(batch, col::LAST_SEEN)?,
            target_countries: StrLists::of(get(batch, col::TARGET_COUNTRIES)?),
            revoked: get(batch, col::REVOKED)?,
            sharing_group: get(batch, col::SHARING_GROUP)?,
            reported_at: get(batch, col::REPORTED_AT)?,
        })
    }
}

/// A list-of-strings column, its values found once per batch rather than once per row.
#[derive(Clone, Copy)]
pub(crate) struct StrLists<'a> {
    list: &'a ListArray,
    /// `None` if the values are not strings: every row then reads as empty.
    values: Option<&'a StringArray>,
}

impl<'a> StrLists<'a> {
    pub fn of(list: &'a ListArray) -> StrLists<'a> {
        StrLists { list, values: list.values().as_any().downcast_ref() }
    }

    /// The strings of row `i`, read in place (no slice of the column).
    pub fn row(self, i: usize) -> impl Iterator<Item = &'a str> + Clone {
        let offsets = self.list.value_offsets();
        let rows = match self.values {
            Some(_) if self.list.is_valid(i) => offsets[i] as usize..offsets[i + 1] as usize,
            _ => 0..0,
        };
        let values = self.values;
        rows.filter_map(move |j| values.filter(|v| v.is_valid(j)).map(|v| v.value(j)))
    }
}

/// An optional value of a primitive column.
pub(crate) fn opt<'a, T: Array, V>(a: &'a T, i: usize, get: impl Fn(&'a T, usize) -> V) -> Option<V> {
    (!a.is_null(i)).then(|| get(a, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use iocflow_model::{Indicator, IndicatorType, Tlp};

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
        assert_eq!(read[0].column(n - 1).as_ref(), new_null_array(&address_type(), 1).as_ref());
        assert_eq!(read[0].project(&(0..n - 1).collect::<Vec<_>>()).unwrap(), older);

        let mut fields = batch.schema().fields().to_vec();
        fields.push(Arc::new(Field::new("from_the_future", DataType::Int32, true)));
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(Int32Array::from(vec![7])));
        let newer = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        assert_eq!(decode_ipc(&ipc(&newer)).unwrap(), vec![batch.clone()]);

        // Missing a column that is not nullable, or a column changed: not a batch of any version.
        let lacking = batch.project(&(0..n - 2).collect::<Vec<_>>()).unwrap();
        assert!(decode_ipc(&ipc(&lacking)).is_err(), "reported_at is required");
        let reordered = batch.project(&[1, 0]).unwrap();
        assert!(decode_ipc(&ipc(&reordered)).is_err());
    }
}
