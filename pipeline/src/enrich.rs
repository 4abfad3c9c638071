//! The enrichment projection of the columnar stage: UDF expressions compiled once, evaluated
//! per Arrow batch.
//!
//! The expressions are written in SQL over the indicator batch schema and planned by DataFusion
//! into physical expressions at start, so the per-batch work is a vectorised evaluation with no
//! planning. CERT filters compile the same way, against the schema of a CERT's view
//! (`cert_view.rs`).

use crate::error::{Error, Result};
use crate::indicator_batch;
use datafusion::arrow::array::{Array, RecordBatch, StringArray};
use datafusion::common::DFSchema;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// The enrichment columns of one batch.
pub struct Enriched {
    /// Infrastructure country per row (NULL when unknown).
    pub country: StringArray,
}

/// Compiled enrichment expressions.
pub struct Enrichment {
    country: Arc<dyn PhysicalExpr>,
}

impl Enrichment {
    pub fn new() -> Result<Enrichment> {
        let ctx = SessionContext::new();
        for udf in iocflow_enrichers::udf::all() {
            ctx.register_udf(udf);
        }
        let schema = DFSchema::try_from(indicator_batch::schema().as_ref().clone())?;
        let compile = |sql: &str| -> Result<Arc<dyn PhysicalExpr>> {
            let expr = ctx.parse_sql_expr(sql, &schema)?;
            Ok(ctx.create_physical_expr(expr, &schema)?)
        };
        Ok(Enrichment { country: compile(r#"infra_country("type", "value")"#)? })
    }

    /// Evaluates the enrichment over one indicator batch.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<Enriched> {
        let country = self.country.evaluate(batch)?.into_array(batch.num_rows())?;
        let country = country
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| Error::Config("infra_country did not return Utf8".into()))?
            .clone();
        Ok(Enriched { country })
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
        let e = Enrichment::new().unwrap().evaluate(&batch).unwrap();
        let got: Vec<Option<&str>> = e.country.iter().collect();
        assert_eq!(got, [Some("US"), Some("PH"), None]);
        assert!(e.country.is_null(2));
    }
}
