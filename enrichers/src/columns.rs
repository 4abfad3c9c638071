//! Arrow row shapes declared once: [`arrow_columns!`](crate::arrow_columns) turns one list of
//! columns (name, kind, nullability) into the schema's fields, a struct of builders that lays rows
//! out as those columns, and a struct of typed column references read back from a batch or a
//! struct array (checked once per batch, then read by row index).
//!
//! Before it, a row shape was written out as parallel lists that had to agree: field names and
//! types, builder fields, their constructors, the `finish` list, the typed-access struct and its
//! lookups. The enrichment row, the internal indicator batch and the CERT view each use it.

use datafusion::arrow::array::{
    Array, BooleanArray, BooleanBuilder, FixedSizeBinaryArray, FixedSizeBinaryBuilder, Float64Array, Float64Builder,
    Int64Array, Int64Builder, ListArray, ListBuilder, StringArray, StringBuilder, TimestampMillisecondArray,
    TimestampMillisecondBuilder, UInt8Array, UInt8Builder, UInt32Array, UInt32Builder, UInt64Array, UInt64Builder,
};
pub use datafusion::arrow::array::{ArrayBuilder, ArrayRef, RecordBatch, StructArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
pub use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use std::sync::Arc;

/// A kind of column: its Arrow type, its builder, and how a batch's column is read back.
pub trait ColumnKind {
    type Builder: ArrayBuilder;
    /// A typed reference to a column of this kind.
    type Column<'a>;
    fn data_type() -> DataType;
    fn builder(rows: usize) -> Self::Builder;
    fn read(array: &dyn Array) -> Option<Self::Column<'_>>;
}

/// Declares a kind whose column is a plain Arrow array.
macro_rules! kind {
    ($(#[$doc:meta])* $Kind:ident, $data_type:expr, $Builder:ty, $Array:ty, $builder:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $Kind;
        impl ColumnKind for $Kind {
            type Builder = $Builder;
            type Column<'a> = &'a $Array;
            fn data_type() -> DataType {
                $data_type
            }
            fn builder(rows: usize) -> $Builder {
                $builder(rows)
            }
            fn read(array: &dyn Array) -> Option<&$Array> {
                array.as_any().downcast_ref()
            }
        }
    };
}

kind!(Utf8, DataType::Utf8, StringBuilder, StringArray, |n| StringBuilder::with_capacity(n, n * 8));
kind!(UInt8, DataType::UInt8, UInt8Builder, UInt8Array, UInt8Builder::with_capacity);
kind!(UInt32, DataType::UInt32, UInt32Builder, UInt32Array, UInt32Builder::with_capacity);
kind!(UInt64, DataType::UInt64, UInt64Builder, UInt64Array, UInt64Builder::with_capacity);
kind!(Int64, DataType::Int64, Int64Builder, Int64Array, Int64Builder::with_capacity);
kind!(Float64, DataType::Float64, Float64Builder, Float64Array, Float64Builder::with_capacity);
kind!(Boolean, DataType::Boolean, BooleanBuilder, BooleanArray, BooleanBuilder::with_capacity);
kind!(
    /// An IP address in 16 bytes (an IPv4 address IPv4-mapped).
    Address,
    DataType::FixedSizeBinary(16),
    FixedSizeBinaryBuilder,
    FixedSizeBinaryArray,
    |n| FixedSizeBinaryBuilder::with_capacity(n, 16)
);
kind!(
    /// A time in milliseconds since the epoch, UTC (as SQL compares timestamps).
    UtcMillis,
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
    TimestampMillisecondBuilder,
    TimestampMillisecondArray,
    |n| TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC")
);

/// A list of strings per row (tags, countries, sectors), read as [`StrLists`].
#[derive(Debug)]
pub struct Utf8List;

impl ColumnKind for Utf8List {
    type Builder = ListBuilder<StringBuilder>;
    type Column<'a> = StrLists<'a>;
    fn data_type() -> DataType {
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
    }
    fn builder(rows: usize) -> ListBuilder<StringBuilder> {
        ListBuilder::with_capacity(StringBuilder::new(), rows)
    }
    fn read(array: &dyn Array) -> Option<StrLists<'_>> {
        array.as_any().downcast_ref().map(StrLists::of)
    }
}

/// A list-of-strings column, its values found once per batch rather than once per row.
#[derive(Debug, Clone, Copy)]
pub struct StrLists<'a> {
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

    /// The list array itself.
    pub fn array(self) -> &'a ListArray {
        self.list
    }
}

/// The field of a column of kind `K`.
pub fn field<K: ColumnKind>(name: &str, nullable: bool) -> Field {
    Field::new(name, K::data_type(), nullable)
}

/// Declares a row shape once. For
///
/// ```ignore
/// arrow_columns! {
///     /// Typed access to an enrichment struct.
///     pub struct EnrichmentColumns, EnrichmentBuilders {
///         country: "country", Utf8, nullable;
///         asn: "asn", UInt32, nullable;
///     }
/// }
/// ```
///
/// it defines `EnrichmentBuilders` (a builder per column, public fields named as the columns;
/// `fields()`, `schema()`, `with_capacity(rows)`, `finish()` → the columns in order) and
/// `EnrichmentColumns<'a>` (a typed reference per column; `of(&RecordBatch)` and
/// `of_struct(&StructArray)` find them by name, `None` if one is missing or of another type).
/// Kinds are the types of [`columns`](crate::columns); nullability is `nullable` or `required`.
#[macro_export]
macro_rules! arrow_columns {
    (@nullable nullable) => { true };
    (@nullable required) => { false };
    (
        $(#[$attr:meta])*
        $vis:vis struct $Columns:ident, $Builders:ident {
            $( $(#[$fattr:meta])* $field:ident : $name:literal, $Kind:ident, $null:ident; )*
        }
    ) => {
        /// A builder per column of the row shape, in schema order.
        #[allow(missing_debug_implementations)]
        $vis struct $Builders {
            $( pub $field: <$crate::columns::$Kind as $crate::columns::ColumnKind>::Builder, )*
        }

        impl $Builders {
            /// The fields of the columns, in order.
            pub fn fields() -> ::std::vec::Vec<$crate::columns::Field> {
                vec![$( $crate::columns::field::<$crate::columns::$Kind>($name, $crate::arrow_columns!(@nullable $null)) ),*]
            }

            /// The schema of a batch of this shape (built once).
            pub fn schema() -> $crate::columns::SchemaRef {
                static SCHEMA: ::std::sync::LazyLock<$crate::columns::SchemaRef> = ::std::sync::LazyLock::new(|| {
                    ::std::sync::Arc::new($crate::columns::Schema::new($Builders::fields()))
                });
                SCHEMA.clone()
            }

            /// Builders with room for `rows` rows.
            pub fn with_capacity(rows: usize) -> Self {
                Self { $( $field: <$crate::columns::$Kind as $crate::columns::ColumnKind>::builder(rows), )* }
            }

            /// The columns built so far, in order; the builders start over.
            pub fn finish(&mut self) -> ::std::vec::Vec<$crate::columns::ArrayRef> {
                vec![$( $crate::columns::ArrayBuilder::finish(&mut self.$field) ),*]
            }
        }

        $(#[$attr])*
        // Every column can be read; each reader uses those it needs.
        #[allow(dead_code, missing_debug_implementations)]
        $vis struct $Columns<'a> {
            $( $(#[$fattr])* pub $field: <$crate::columns::$Kind as $crate::columns::ColumnKind>::Column<'a>, )*
        }

        impl<'a> $Columns<'a> {
            /// The columns of a batch of this shape, by name.
            pub fn of(batch: &'a $crate::columns::RecordBatch) -> Option<Self> {
                Some(Self {
                    $( $field: <$crate::columns::$Kind as $crate::columns::ColumnKind>::read(batch.column_by_name($name)?.as_ref())?, )*
                })
            }

            /// The fields of a struct array of this shape, by name.
            pub fn of_struct(array: &'a $crate::columns::StructArray) -> Option<Self> {
                Some(Self {
                    $( $field: <$crate::columns::$Kind as $crate::columns::ColumnKind>::read(array.column_by_name($name)?.as_ref())?, )*
                })
            }
        }
    };
}
