//! DataFusion scalar UDFs over the enrichment indexes.
//!
//! Each UDF reads whole columns and writes a whole column: one call per batch. `enrichment`
//! is the one the columnar stage evaluates: every lookup of a row at once, as a struct, so a
//! URL is parsed once and each table asked once per row. It also takes the address the decoder
//! parsed (the batch's `address` column), so an address is not parsed a second time; where that
//! is null it reads the value, as the others do. The one-column UDFs (`infra_country`,
//! `asn`, `as_org`, `constituency_org`, `constituency_country`, `sectors`, `benign`) give the
//! same answers one at a time, for SQL over indicator batches and for measuring each enricher.

use crate::address::Target;
use crate::tables::{Enrichment, SharedTables, Tables};
use datafusion::arrow::array::{
    Array, ArrayRef, FixedSizeBinaryArray, ListBuilder, StringArray, StringBuilder, StructArray, UInt32Builder,
};
use datafusion::arrow::datatypes::{DataType, Fields};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use iocflow_model::indicator::address_from_octets;
use iocflow_model::{Country, IndicatorType};
use std::sync::Arc;

/// What a table UDF writes per row.
#[derive(Clone, Copy)]
enum Column {
    Utf8(for<'a> fn(&'a Tables, &Target<'_>) -> Option<&'a str>),
    UInt32(fn(&Tables, &Target<'_>) -> Option<u32>),
    Utf8List(for<'a> fn(&'a Tables, &Target<'_>) -> Vec<&'a str>),
    /// Every lookup: the struct of [`enrichment_fields`].
    Struct,
}

crate::arrow_columns! {
    /// The `enrichment` UDF's struct, one row per indicator row (NULL or empty: unknown).
    pub struct EnrichmentColumns, EnrichmentBuilders {
        /// Infrastructure country (IP geolocation, ccTLD).
        country: "country", Utf8, nullable;
        asn: "asn", UInt32, nullable;
        as_org: "as_org", Utf8, nullable;
        /// The constituent organisation, and its country.
        org: "org", Utf8, nullable;
        org_country: "org_country", Utf8, nullable;
        sectors: "sectors", Utf8List, nullable;
        /// The warninglist that calls the indicator benign.
        benign: "benign", Utf8, nullable;
    }
}

impl<'a> EnrichmentColumns<'a> {
    /// Row `i`, as the tables answered it.
    pub fn row(&self, i: usize) -> Enrichment<'a> {
        let text = |a: &'a StringArray| a.is_valid(i).then(|| a.value(i));
        Enrichment {
            country: text(self.country).and_then(Country::parse),
            asn: self.asn.is_valid(i).then(|| self.asn.value(i)),
            as_org: text(self.as_org),
            org: text(self.org),
            org_country: text(self.org_country).and_then(Country::parse),
            sectors: self.sectors.row(i).collect(),
            benign: text(self.benign),
        }
    }
}

/// The fields of the `enrichment` UDF's struct, in order.
pub fn enrichment_fields() -> Fields {
    Fields::from(EnrichmentBuilders::fields())
}

impl EnrichmentBuilders {
    fn append(&mut self, row: &Enrichment<'_>) {
        self.country.append_option(row.country.map(|c| c.as_str()));
        self.asn.append_option(row.asn);
        self.as_org.append_option(row.as_org);
        self.org.append_option(row.org);
        self.org_country.append_option(row.org_country.map(|c| c.as_str()));
        self.sectors.append_value(row.sectors.iter().map(|s| Some(*s)));
        self.benign.append_option(row.benign);
    }

    fn finish_struct(mut self) -> Result<StructArray> {
        Ok(StructArray::try_new(enrichment_fields(), self.finish(), None)?)
    }
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
        let mut args = vec![DataType::Utf8, DataType::Utf8];
        if let Column::Struct = column {
            args.push(DataType::FixedSizeBinary(16));
        }
        let signature = Signature::exact(args, Volatility::Stable);
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
            Column::Utf8List(_) => <crate::columns::Utf8List as crate::columns::ColumnKind>::data_type(),
            Column::Struct => DataType::Struct(enrichment_fields()),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (kinds, values, addresses) = match arrays.as_slice() {
            [kinds, values] => (kinds, values, None),
            [kinds, values, addresses] => (kinds, values, Some(addresses)),
            _ => return exec_err!("{} takes (type, value), and `enrichment` also the address", self.name),
        };
        let (Some(kinds), Some(values)) =
            (kinds.as_any().downcast_ref::<StringArray>(), values.as_any().downcast_ref::<StringArray>())
        else {
            return exec_err!("{} takes two Utf8 columns", self.name);
        };
        let addresses = match addresses.map(|a| a.as_any().downcast_ref::<FixedSizeBinaryArray>()) {
            Some(None) => return exec_err!("{}'s third argument is the 16-byte address column", self.name),
            Some(Some(a)) => Some(a),
            None => None,
        };
        let tables = self.tables.snapshot();
        let rows = (0..values.len()).map(|i| {
            if kinds.is_null(i) || values.is_null(i) {
                return None;
            }
            let kind = IndicatorType::parse(kinds.value(i)).ok()?;
            let address = addresses.filter(|a| a.is_valid(i)).map(|a| a.value(i));
            Some(match address.and_then(|octets| octets.try_into().ok()) {
                Some(octets) => Target::at(kind, values.value(i), address_from_octets(octets)),
                None => Target::of(kind, values.value(i)),
            })
        });
        let out: ArrayRef = match self.column {
            Column::Utf8(f) => {
                let mut b = StringBuilder::with_capacity(values.len(), values.len() * 8);
                for row in rows {
                    b.append_option(row.and_then(|t| f(&tables, &t)));
                }
                Arc::new(b.finish())
            }
            Column::UInt32(f) => {
                let mut b = UInt32Builder::with_capacity(values.len());
                for row in rows {
                    b.append_option(row.and_then(|t| f(&tables, &t)));
                }
                Arc::new(b.finish())
            }
            Column::Utf8List(f) => {
                let mut b = ListBuilder::new(StringBuilder::new());
                for row in rows {
                    b.append_value(row.map(|t| f(&tables, &t)).unwrap_or_default().into_iter().map(Some));
                }
                Arc::new(b.finish())
            }
            Column::Struct => {
                let mut b = EnrichmentBuilders::with_capacity(values.len());
                for row in rows {
                    b.append(&row.map(|t| tables.lookup(&t)).unwrap_or_default());
                }
                Arc::new(b.finish_struct()?)
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// The organisation of an indicator, asking the AS tables only when needed.
fn organisation<'t>(t: &'t Tables, target: &Target<'_>) -> Option<&'t crate::constituency::Organisation> {
    t.organisation(target, t.announced(target).0)
}

/// Every UDF of this crate, over `tables`, for registration in a session (their results are
/// checked through DataFusion by the pipeline's enrichment tests): `enrichment`,
/// `infra_country`, `asn`, `as_org`, `constituency_org`, `constituency_country`, `sectors`,
/// `benign`.
pub fn all(tables: &SharedTables) -> Vec<ScalarUDF> {
    vec![
        TableUdf::udf("enrichment", Column::Struct, tables),
        TableUdf::udf("infra_country", Column::Utf8(|t, g| t.country(g).map(|c| c.as_str())), tables),
        TableUdf::udf("asn", Column::UInt32(|t, target| t.announced(target).0), tables),
        TableUdf::udf("as_org", Column::Utf8(|t, target| t.announced(target).1), tables),
        TableUdf::udf("constituency_org", Column::Utf8(|t, g| organisation(t, g).map(|o| o.name.as_str())), tables),
        TableUdf::udf(
            "constituency_country",
            Column::Utf8(|t, g| organisation(t, g).map(|o| o.country.as_str())),
            tables,
        ),
        TableUdf::udf("sectors", Column::Utf8List(|t, g| t.sectors(g, organisation(t, g))), tables),
        TableUdf::udf("benign", Column::Utf8(Tables::benign), tables),
    ]
}
