//! The enrichment projection of the columnar stage: one UDF expression compiled once, evaluated
//! per Arrow batch.
//!
//! The expression, `enrichment("type", "value", "address")`, is written in SQL over the indicator batch
//! schema and planned by DataFusion into a physical expression at start, so the per-batch work
//! is one vectorised evaluation with no planning; it returns every enrichment column as one
//! struct, so each row's lookups share one parse of the indicator. CERT filters compile the same way, against the schema of a CERT's view
//! (`policy/cert_view.rs`).

use crate::config::Config;
use crate::error::{Error, Result};
use crate::indicator_batch;
use datafusion::arrow::array::{RecordBatch, StructArray};
use datafusion::common::DFSchema;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;
use iocflow_enrichers::tables::{SharedTables, TableLoad, Tables};
pub use iocflow_enrichers::udf::EnrichmentColumns;
use std::sync::Arc;

/// The compiled enrichment expression, over the tables in use.
pub struct Enrichment {
    tables: SharedTables,
    expr: Arc<dyn PhysicalExpr>,
}

impl Enrichment {
    /// Loads the configured tables (an error names the file and line) and compiles the
    /// expression.
    pub fn new(config: &Config) -> Result<(Enrichment, Vec<TableLoad>)> {
        let files = config.table_files()?;
        let (tables, loads) = Tables::load(&files)?;
        Ok((Enrichment::over(SharedTables::new(tables))?, loads))
    }

    /// Enrichment over tables that may be replaced between batches.
    pub fn over(tables: SharedTables) -> Result<Enrichment> {
        let ctx = SessionContext::new();
        for udf in iocflow_enrichers::udf::all(&tables) {
            ctx.register_udf(udf);
        }
        let schema = DFSchema::try_from(indicator_batch::schema().as_ref().clone())?;
        let expr = ctx.parse_sql_expr(r#"enrichment("type", "value", "address")"#, &schema)?;
        let expr = ctx.create_physical_expr(expr, &schema)?;
        Ok(Enrichment { tables, expr })
    }

    /// The tables, for reloads.
    pub fn tables(&self) -> &SharedTables {
        &self.tables
    }

    /// Evaluates the enrichment over one indicator batch: one struct row per indicator row, read
    /// with [`EnrichmentColumns::of_struct`].
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<StructArray> {
        let array = self.expr.evaluate(batch)?.into_array(batch.num_rows())?;
        array
            .as_any()
            .downcast_ref::<StructArray>()
            .cloned()
            .ok_or_else(|| Error::Unexpected("the enrichment UDF returned another type than its struct".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator_batch::IndicatorBatchBuilder;
    use datafusion::arrow::array::{Array, ArrayData, StringArray};
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
        let array = Enrichment::over(SharedTables::default()).unwrap().evaluate(&batch).unwrap();
        let e = EnrichmentColumns::of_struct(&array).unwrap();
        let got: Vec<Option<&str>> = e.country.iter().collect();
        assert_eq!(got, [Some("US"), Some("PH"), None]);
        assert!(e.country.is_null(2));
    }

    /// The one-column UDFs, called by name in SQL, agree row by row with the struct the stage
    /// uses, on fixture tables and every kind of target.
    #[test]
    fn one_column_udfs_agree_with_the_enrichment_struct() {
        use iocflow_enrichers::asn::AsnTable;
        use iocflow_enrichers::constituency::Registry;
        use iocflow_enrichers::warninglist::Warninglists;
        let tables = Tables {
            asn: Some(AsnTable::from_csv("asn", "192.0.2.0,192.0.2.255,64500,Example Net\n").unwrap()),
            constituency: Some(
                Registry::from_toml(
                    "reg",
                    "[[organisation]]\nname = \"Bank\"\ncountry = \"MY\"\nsectors = [\"finance\", \"other\"]\n\
                     asns = [64500]\ndomains = [\"bank.example\"]\n",
                )
                .unwrap(),
            ),
            warninglists: Some(
                Warninglists::from_sources([("l", r#"{"name":"Docs","type":"cidr","list":["2001:db8::/32"]}"#)])
                    .unwrap(),
            ),
            ..Tables::default()
        };
        let shared = SharedTables::new(tables);
        let mut b = IndicatorBatchBuilder::new();
        for (k, v) in [
            (IndicatorType::Ipv4, "192.0.2.9"),
            (IndicatorType::Url, "http://192.0.2.10/x"),
            (IndicatorType::Url, "https://login.bank.example/a"),
            (IndicatorType::Email, "ceo@agency.gov.sg"),
            (IndicatorType::Asn, "AS64500"),
            (IndicatorType::Ipv6, "2001:db8::1"),
            (IndicatorType::Md5, &"0".repeat(32)),
        ] {
            b.push(&Report::new(Indicator::new(k, v).unwrap(), Tlp::Green), "f", "p", 0);
        }
        let batch = b.finish().unwrap();
        let array = Enrichment::over(shared.clone()).unwrap().evaluate(&batch).unwrap();
        let e = EnrichmentColumns::of_struct(&array).unwrap();
        let ctx = SessionContext::new();
        for udf in iocflow_enrichers::udf::all(&shared) {
            ctx.register_udf(udf);
        }
        let schema = DFSchema::try_from(indicator_batch::schema().as_ref().clone()).unwrap();
        let column = |f: &str| {
            let expr = ctx.parse_sql_expr(&format!(r#"{f}("type", "value")"#), &schema).unwrap();
            ctx.create_physical_expr(expr, &schema).unwrap().evaluate(&batch).unwrap().into_array(7).unwrap()
        };
        // Each column of the struct, by the one-column UDF that gives it alone.
        let by_udf = |e: &EnrichmentColumns| -> [(&str, ArrayData); 7] {
            [
                ("infra_country", e.country.to_data()),
                ("asn", e.asn.to_data()),
                ("as_org", e.as_org.to_data()),
                ("constituency_org", e.org.to_data()),
                ("constituency_country", e.org_country.to_data()),
                ("sectors", e.sectors.array().to_data()),
                ("benign", e.benign.to_data()),
            ]
        };
        for (f, expected) in by_udf(&e) {
            assert_eq!(column(f).to_data(), expected, "{f}");
        }
        let orgs: Vec<Option<&str>> = e.org.iter().collect();
        assert_eq!(orgs, [Some("Bank"), Some("Bank"), Some("Bank"), None, Some("Bank"), None, None]);
        assert_eq!(e.country.value(3), "SG");
        assert_eq!(e.benign.iter().filter(Option::is_some).count(), 1);
        let sectors = e.sectors.array().value(3);
        assert_eq!(sectors.as_any().downcast_ref::<StringArray>().unwrap().value(0), "government");

        // A batch written before the address column is read with it empty, and the values are
        // read instead: the same enrichment.
        let before_address = batch.schema().index_of("address").unwrap();
        let older = batch.project(&(0..before_address).collect::<Vec<_>>()).unwrap();
        let read = indicator_batch::decode_ipc(&indicator_batch::encode_ipc(&older).unwrap()).unwrap();
        assert_eq!(read[0].column_by_name("address").unwrap().null_count(), 7);
        assert_eq!(
            batch.column_by_name("address").unwrap().null_count(),
            4,
            "addresses of the IPv4, IPv6, IP URL rows"
        );
        let again = Enrichment::over(shared.clone()).unwrap().evaluate(&read[0]).unwrap();
        assert_eq!(by_udf(&EnrichmentColumns::of_struct(&again).unwrap()), by_udf(&e));
    }
}
