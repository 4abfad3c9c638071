//! A CERT's view as an Arrow batch, and the CERT filters evaluated over it.
//!
//! A CERT's filter (`[[certs]] filter`, e.g. `confidence >= 60 AND array_has(sectors,
//! 'finance')`) must decide on what that CERT may see — its view — never on the raw report: a
//! hidden report can neither route nor filter. So the routing stage first builds, per CERT, the
//! records it would send (each built from the CERT's view only), lays them out as one Arrow batch
//! whose columns are the record's fields, and evaluates the CERT's filter over that batch in one
//! vectorised pass. The SQL is parsed and planned into a physical expression once, at start
//! (and by `iocflow check`), so a batch pays for evaluation only.
//!
//! Columns (named as in the canonical record): `type`, `value`, `country`, `countries`, `asn`,
//! `as_org`, `org`, `sectors`, `tlp`, `confidence`, `threat`, `tags`, `sources` (feed names),
//! `providers`, `sightings`, `first_seen`, `last_seen` (timestamps, UTC), `revoked`,
//! `sighted_by` (the countries whose sightings the view shows) and `score` (with `[decay]`; NULL
//! without). A NULL result rejects, as in SQL's WHERE.

use crate::error::{Error, Result};
use datafusion::arrow::array::{Array, BooleanArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::logical_expr::ExprSchemable;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;
use iocflow_sinks::cert_record::CertRecord;
use std::sync::Arc;

iocflow_enrichers::arrow_columns! {
    /// The columns of a view batch: what a CERT filter can name.
    pub(crate) struct ViewColumns, ViewBuilders {
        kind: "type", Utf8, required;
        value: "value", Utf8, required;
        country: "country", Utf8, nullable;
        countries: "countries", Utf8List, required;
        asn: "asn", UInt32, nullable;
        as_org: "as_org", Utf8, nullable;
        org: "org", Utf8, nullable;
        sectors: "sectors", Utf8List, required;
        tlp: "tlp", Utf8, required;
        confidence: "confidence", UInt8, nullable;
        threat: "threat", Utf8, nullable;
        tags: "tags", Utf8List, required;
        sources: "sources", Utf8List, required;
        providers: "providers", Utf8List, required;
        sightings: "sightings", UInt64, required;
        first_seen: "first_seen", UtcMillis, required;
        last_seen: "last_seen", UtcMillis, required;
        revoked: "revoked", Boolean, required;
        sighted_by: "sighted_by", Utf8List, required;
        score: "score", Float64, nullable;
    }
}

/// The schema of a view batch: what a CERT filter can name.
pub fn schema() -> SchemaRef {
    ViewBuilders::schema()
}

/// Lays out records (each one CERT's view of an indicator) as a view batch.
pub fn batch<'a>(records: impl IntoIterator<Item = &'a CertRecord>) -> Result<RecordBatch> {
    let records = records.into_iter();
    let mut b = ViewBuilders::with_capacity(records.size_hint().0);
    for r in records {
        b.kind.append_value(r.kind);
        b.value.append_value(&r.value);
        b.country.append_option(r.country.map(|c| c.as_str()));
        b.countries.append_value(r.countries.iter().map(|c| Some(c.as_str())));
        b.asn.append_option(r.asn);
        b.as_org.append_option(r.as_org.as_deref());
        b.org.append_option(r.org.as_deref());
        b.sectors.append_value(r.sectors.iter().map(Some));
        b.tlp.append_value(r.tlp);
        b.confidence.append_option(r.confidence);
        b.threat.append_option(r.threat.as_deref());
        b.tags.append_value(r.tags.iter().map(Some));
        b.sources.append_value(r.sources.iter().map(|s| Some(&s.feed)));
        b.providers.append_value(r.sources.iter().map(|s| Some(&s.provider)));
        b.sightings.append_value(r.sightings);
        b.first_seen.append_value(r.first_seen);
        b.last_seen.append_value(r.last_seen);
        b.revoked.append_value(r.revoked);
        b.sighted_by.append_value(r.sighted_by.iter().map(|c| Some(c.as_str())));
        b.score.append_option(r.score);
    }
    Ok(RecordBatch::try_new(schema(), b.finish())?)
}

/// A CERT filter, compiled.
#[derive(Debug, Clone)]
pub struct CertFilter {
    sql: String,
    expr: Arc<dyn PhysicalExpr>,
    /// The view's columns the filter names, sorted (what `iocflow explain` shows the values of).
    columns: Vec<String>,
}

impl CertFilter {
    /// Parses and plans `sql` against the view schema; it must be a boolean expression.
    pub fn compile(sql: &str) -> Result<CertFilter> {
        let ctx = SessionContext::new();
        let schema = DFSchema::try_from(schema().as_ref().clone())?;
        let expr = ctx.parse_sql_expr(sql, &schema)?;
        let kind = expr.get_type(&schema)?;
        if kind != DataType::Boolean {
            return Err(Error::Config(format!("the filter is of type {kind}, not a boolean condition")));
        }
        let mut columns: Vec<String> = expr.column_refs().into_iter().map(|c| c.name.clone()).collect();
        columns.sort();
        columns.dedup();
        Ok(CertFilter { sql: sql.to_string(), expr: ctx.create_physical_expr(expr, &schema)?, columns })
    }

    /// The filter as configured.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The values of the columns the filter names, in `record`'s view, as SQL would print them
    /// (for `iocflow explain`).
    pub fn named_values(&self, record: &CertRecord) -> Result<Vec<(String, String)>> {
        let batch = batch([record])?;
        let options = datafusion::arrow::util::display::FormatOptions::default().with_null("NULL");
        self.columns
            .iter()
            .map(|name| {
                let column = batch.column_by_name(name).ok_or_else(|| {
                    Error::Unexpected(format!("filter {:?} names {name}, not a view column", self.sql))
                })?;
                let formatter = datafusion::arrow::util::display::ArrayFormatter::try_new(column, &options)?;
                Ok((name.clone(), formatter.value(0).to_string()))
            })
            .collect()
    }

    /// Which of the records the filter accepts (NULL rejects).
    pub fn accepts<'a>(&self, records: impl IntoIterator<Item = &'a CertRecord>) -> Result<Vec<bool>> {
        let batch = batch(records)?;
        let result = self.expr.evaluate(&batch)?.into_array(batch.num_rows())?;
        let result = result
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| Error::Unexpected(format!("filter {:?} did not evaluate to booleans", self.sql)))?;
        Ok((0..result.len()).map(|i| result.is_valid(i) && result.value(i)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iocflow_sinks::cert_record::{SCHEMA_VERSION, Source};

    fn record(confidence: Option<u8>, sectors: &[&str], feeds: &[&str]) -> CertRecord {
        CertRecord {
            schema_version: SCHEMA_VERSION,
            id: iocflow_model::IndicatorId(0),
            kind: "domain",
            value: "x.example.sg".into(),
            country: iocflow_model::Country::parse("SG"),
            countries: vec![iocflow_model::Country::parse("SG").unwrap()],
            asn: None,
            as_org: None,
            org: None,
            sectors: sectors.iter().map(|s| s.to_string()).collect(),
            tlp: "GREEN",
            confidence,
            threat: None,
            tags: iocflow_model::NameSet::default(),
            sources: feeds.iter().map(|f| Source { feed: (*f).into(), provider: "P".into() }).collect(),
            sightings: 1,
            first_seen: 0,
            last_seen: 86_400_000,
            revoked: false,
            sighted_by: Vec::new(),
            revocation_reason: None,
            score: None,
            valid_until: None,
            expired: false,
        }
    }

    #[test]
    fn filters_evaluate_per_batch_with_sql_null_semantics() {
        let f = CertFilter::compile("confidence >= 60 AND array_has(sectors, 'finance')").unwrap();
        let rows = [
            record(Some(60), &["finance"], &["a"]),
            record(Some(59), &["finance"], &["a"]),
            record(Some(90), &["aviation"], &["a"]),
            record(None, &["finance"], &["a"]),
        ];
        assert_eq!(f.accepts(&rows).unwrap(), [true, false, false, false]);
        let f =
            CertFilter::compile("array_has(sources, 'b') OR last_seen >= TIMESTAMP '1970-01-02T00:00:00Z'").unwrap();
        assert_eq!(f.accepts(&[record(None, &[], &["a"]), record(None, &[], &["b"])]).unwrap(), [true, true]);
        let f = CertFilter::compile("tlp = 'AMBER' OR type <> 'domain'").unwrap();
        assert_eq!(f.accepts(&[record(None, &[], &["a"])]).unwrap(), [false]);
        // What the CERTs sighted: an empty list has no element, a CERT's sighting is named.
        let sighted =
            CertRecord { sighted_by: vec![iocflow_model::Country::parse("TH").unwrap()], ..record(None, &[], &["a"]) };
        let f = CertFilter::compile("cardinality(sighted_by) >= 1").unwrap();
        assert_eq!(f.accepts(&[record(None, &[], &["a"]), sighted.clone()]).unwrap(), [false, true]);
        let f = CertFilter::compile("array_has(sighted_by, 'TH')").unwrap();
        assert_eq!(f.accepts(&[record(None, &[], &["a"]), sighted]).unwrap(), [false, true]);
    }

    #[test]
    fn a_filter_shows_the_values_of_the_columns_it_names() {
        let f = CertFilter::compile("confidence >= 60 AND array_has(sectors, 'finance') OR threat IS NULL").unwrap();
        let values = f.named_values(&record(Some(59), &["finance", "aviation"], &["a"])).unwrap();
        assert_eq!(
            values,
            [
                ("confidence".to_string(), "59".to_string()),
                ("sectors".into(), "[finance, aviation]".into()),
                ("threat".into(), "NULL".into())
            ]
        );
    }

    #[test]
    fn bad_filters_fail_to_compile_with_the_reason() {
        let e = CertFilter::compile("confidnce > 5").unwrap_err().to_string();
        assert!(e.contains("confidnce"), "{e}");
        let e = CertFilter::compile("confidence + 1").unwrap_err().to_string();
        assert!(e.contains("not a boolean"), "{e}");
        assert!(CertFilter::compile("confidence >").is_err());
    }
}
