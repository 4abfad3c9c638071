//! DataFusion scalar UDFs over the enrichment indexes.
//!
//! Each UDF reads whole columns and writes a whole column: one call per batch. They are
//! registered in the columnar stage's session so that both the enrichment projection and the
//! CERTs' SQL filters can call them by name.

use crate::country::infra_country;
use datafusion::arrow::array::{Array, ArrayRef, StringArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use iocflow_model::IndicatorType;
use std::sync::Arc;

/// `infra_country(type, value) -> Utf8`: the infrastructure country of an indicator, or NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct InfraCountry {
    signature: Signature,
}

impl InfraCountry {
    pub const NAME: &'static str = "infra_country";

    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(InfraCountry {
            signature: Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for InfraCountry {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [kinds, values] = arrays.as_slice() else {
            return exec_err!("infra_country takes (type, value)");
        };
        Ok(ColumnarValue::Array(infra_country_column(kinds, values)?))
    }
}

/// Evaluates `infra_country` over two Utf8 columns.
pub fn infra_country_column(kinds: &ArrayRef, values: &ArrayRef) -> Result<ArrayRef> {
    let (Some(kinds), Some(values)) =
        (kinds.as_any().downcast_ref::<StringArray>(), values.as_any().downcast_ref::<StringArray>())
    else {
        return exec_err!("infra_country takes two Utf8 columns");
    };
    let mut out = StringBuilder::with_capacity(values.len(), values.len() * 2);
    for (kind, value) in kinds.iter().zip(values.iter()) {
        let cc = match (kind, value) {
            (Some(k), Some(v)) => IndicatorType::parse(k).ok().and_then(|k| infra_country(k, v)),
            _ => None,
        };
        out.append_option(cc);
    }
    Ok(Arc::new(out.finish()))
}

/// Every UDF of this crate, for registration in a session.
pub fn all() -> Vec<ScalarUDF> {
    vec![InfraCountry::udf()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_a_column() {
        let kinds: ArrayRef = Arc::new(StringArray::from(vec![Some("ipv4"), Some("domain"), Some("md5"), None]));
        let values: ArrayRef = Arc::new(StringArray::from(vec![
            Some("8.8.8.8"),
            Some("x.example.th"),
            Some("d41d8cd98f00b204e9800998ecf8427e"),
            Some("x"),
        ]));
        let out = infra_country_column(&kinds, &values).unwrap();
        let out = out.as_any().downcast_ref::<StringArray>().unwrap();
        let got: Vec<Option<&str>> = out.iter().collect();
        assert_eq!(got, vec![Some("US"), Some("TH"), None, None]);
    }
}
