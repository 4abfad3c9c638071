//! The enrichment projection of the columnar stage: UDF expressions compiled once, evaluated
//! per Arrow batch.
//!
//! The expressions are written in SQL over the indicator batch schema and planned by DataFusion
//! into physical expressions at start, so the per-batch work is a vectorised evaluation with no
//! planning. CERT filters compile the same way, against the schema of a CERT's view
//! (`cert_view.rs`).

use crate::config::Config;
use crate::error::{Error, Result};
use crate::indicator_batch;
use datafusion::arrow::array::{Array, ListArray, RecordBatch, StringArray, UInt32Array};
use datafusion::common::DFSchema;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;
use iocflow_enrichers::tables::{SharedTables, TableLoad, Tables};
use std::sync::Arc;

/// The enrichment columns of one batch, one row per indicator row (NULL or empty: unknown).
pub struct Enriched {
    /// Infrastructure country (IP geolocation, ccTLD).
    pub country: StringArray,
    pub asn: UInt32Array,
    pub as_org: StringArray,
    /// The constituent organisation, and its country.
    pub org: StringArray,
    pub org_country: StringArray,
    pub sectors: ListArray,
    /// The warninglist that calls the indicator benign.
    pub benign: StringArray,
}

/// Compiled enrichment expressions, over the tables in use.
pub struct Enrichment {
    tables: SharedTables,
    exprs: [Arc<dyn PhysicalExpr>; 7],
}

impl Enrichment {
    /// Loads the configured tables (an error names the file and line) and compiles the
    /// expressions.
    pub fn new(config: &Config) -> Result<(Enrichment, Vec<TableLoad>)> {
        let files = config.table_files()?;
        let (tables, loads) = Tables::load(&files).map_err(|e| Error::Config(format!("enrich: {e}")))?;
        Ok((Enrichment::over(SharedTables::new(tables))?, loads))
    }

    /// Enrichment over tables that may be replaced between batches.
    pub fn over(tables: SharedTables) -> Result<Enrichment> {
        let ctx = SessionContext::new();
        for udf in iocflow_enrichers::udf::all(&tables) {
            ctx.register_udf(udf);
        }
        let schema = DFSchema::try_from(indicator_batch::schema().as_ref().clone())?;
        let compile = |f: &str| -> Result<Arc<dyn PhysicalExpr>> {
            let expr = ctx.parse_sql_expr(&format!(r#"{f}("type", "value")"#), &schema)?;
            Ok(ctx.create_physical_expr(expr, &schema)?)
        };
        let exprs = [
            compile("infra_country")?,
            compile("asn")?,
            compile("as_org")?,
            compile("constituency_org")?,
            compile("constituency_country")?,
            compile("sectors")?,
            compile("benign")?,
        ];
        Ok(Enrichment { tables, exprs })
    }

    /// The tables, for reloads.
    pub fn tables(&self) -> &SharedTables {
        &self.tables
    }

    /// Evaluates the enrichment over one indicator batch.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<Enriched> {
        let n = batch.num_rows();
        let mut columns = Vec::with_capacity(self.exprs.len());
        for e in &self.exprs {
            columns.push(e.evaluate(batch)?.into_array(n)?);
        }
        let wrong = || Error::Config("an enrichment UDF returned an unexpected type".into());
        let utf8 = |i: usize| columns[i].as_any().downcast_ref::<StringArray>().cloned().ok_or_else(wrong);
        Ok(Enriched {
            country: utf8(0)?,
            asn: columns[1].as_any().downcast_ref::<UInt32Array>().cloned().ok_or_else(wrong)?,
            as_org: utf8(2)?,
            org: utf8(3)?,
            org_country: utf8(4)?,
            sectors: columns[5].as_any().downcast_ref::<ListArray>().cloned().ok_or_else(wrong)?,
            benign: utf8(6)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator_batch::IndicatorBatchBuilder;
    use iocflow_model::{Indicator, IndicatorType, Report, Tlp};

    #[test]
    fn country_column_per_batch() {
        let mut b = IndicatorBatchBuilder::new();
        for (k, v) in [
            (IndicatorType::Ipv4, "8.8.8.8"),
            (IndicatorType::Domain, "a.example.ph"),
            (IndicatorType::Md5, &"0".repeat(32)),
        ] {
            b.push(&Report::new(Indicator::new(k, v).unwrap(), Tlp::Green), "f", "p", 0);
        }
        let batch = b.finish().unwrap();
        let e = Enrichment::over(SharedTables::default()).unwrap().evaluate(&batch).unwrap();
        let got: Vec<Option<&str>> = e.country.iter().collect();
        assert_eq!(got, [Some("US"), Some("PH"), None]);
        assert!(e.country.is_null(2));
    }
}
