//! DataFusion scalar UDFs over the enrichment indexes.
//!
//! Each UDF reads whole columns and writes a whole column: one call per batch. They are
//! registered in the columnar stage's session so that both the enrichment projection and the
//! CERTs' SQL filters can call them by name.

use crate::tables::{SharedTables, Tables};
use datafusion::arrow::array::{Array, ArrayRef, ListBuilder, StringArray, StringBuilder, UInt32Builder};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::Field;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use iocflow_model::IndicatorType;
use std::sync::Arc;

/// What a table UDF writes per row.
#[derive(Clone, Copy)]
enum Column {
    Utf8(for<'a> fn(&'a Tables, IndicatorType, &'a str) -> Option<&'a str>),
    UInt32(fn(&Tables, IndicatorType, &str) -> Option<u32>),
    Utf8List(for<'a> fn(&'a Tables, IndicatorType, &'a str) -> Vec<&'a str>),
}

/// A `(type, value)` UDF over the enrichment tables in use ([`SharedTables`]): each call reads
/// one snapshot, so a whole batch sees one version of the tables.
pub struct TableUdf {
    name: &'static str,
    column: Column,
    tables: SharedTables,
    signature: Signature,
}

impl std::fmt::Debug for TableUdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for TableUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for TableUdf {}

impl std::hash::Hash for TableUdf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl TableUdf {
    fn udf(name: &'static str, column: Column, tables: &SharedTables) -> ScalarUDF {
        let signature = Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Stable);
        ScalarUDF::new_from_impl(TableUdf { name, column, tables: tables.clone(), signature })
    }
}

impl ScalarUDFImpl for TableUdf {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(match self.column {
            Column::Utf8(_) => DataType::Utf8,
            Column::UInt32(_) => DataType::UInt32,
            Column::Utf8List(_) => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [kinds, values] = arrays.as_slice() else {
            return exec_err!("{} takes (type, value)", self.name);
        };
        let (Some(kinds), Some(values)) =
            (kinds.as_any().downcast_ref::<StringArray>(), values.as_any().downcast_ref::<StringArray>())
        else {
            return exec_err!("{} takes two Utf8 columns", self.name);
        };
        let tables = self.tables.snapshot();
        let rows = kinds.iter().zip(values.iter()).map(|(k, v)| match (k, v) {
            (Some(k), Some(v)) => IndicatorType::parse(k).ok().map(|k| (k, v)),
            _ => None,
        });
        let out: ArrayRef = match self.column {
            Column::Utf8(f) => {
                let mut b = StringBuilder::with_capacity(values.len(), values.len() * 8);
                for row in rows {
                    b.append_option(row.and_then(|(k, v)| f(&tables, k, v)));
                }
                Arc::new(b.finish())
            }
            Column::UInt32(f) => {
                let mut b = UInt32Builder::with_capacity(values.len());
                for row in rows {
                    b.append_option(row.and_then(|(k, v)| f(&tables, k, v)));
                }
                Arc::new(b.finish())
            }
            Column::Utf8List(f) => {
                let mut b = ListBuilder::new(StringBuilder::new());
                for row in rows {
                    b.append_value(row.map(|(k, v)| f(&tables, k, v)).unwrap_or_default().into_iter().map(Some));
                }
                Arc::new(b.finish())
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// Every UDF of this crate, over `tables`, for registration in a session (their results are
/// checked through DataFusion by the pipeline's enrichment tests): `infra_country`,
/// `asn`, `as_org`, `constituency_org`, `constituency_country`, `sectors`, `benign`.
pub fn all(tables: &SharedTables) -> Vec<ScalarUDF> {
    vec![
        TableUdf::udf("infra_country", Column::Utf8(Tables::country), tables),
        TableUdf::udf("asn", Column::UInt32(Tables::asn), tables),
        TableUdf::udf("as_org", Column::Utf8(Tables::as_org), tables),
        TableUdf::udf(
            "constituency_org",
            Column::Utf8(|t, k, v| t.organisation(k, v).map(|o| o.name.as_str())),
            tables,
        ),
        TableUdf::udf(
            "constituency_country",
            Column::Utf8(|t, k, v| t.organisation(k, v).map(|o| o.country.as_str())),
            tables,
        ),
        TableUdf::udf("sectors", Column::Utf8List(Tables::sectors), tables),
        TableUdf::udf("benign", Column::Utf8(Tables::benign), tables),
    ]
}
