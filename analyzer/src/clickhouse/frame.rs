//! What comes back, read once: Arrow columns (whatever integer or string type the server
//! chose) into typed vectors, and the findings into the very frame the polars plans make,
//! with dictionary codes for names, so that one decoder ([`crate::findings::decode`]) turns
//! both into findings.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch, StringArray,
};
use arrow_schema::DataType as ArrowType;
use mqtrace_vocab::finding::{Kind, Where};
use polars::prelude::*;

use super::ClickHouseError;

/// One column of every batch, as `T`s.
pub(crate) struct Values<T>(pub(crate) Vec<Option<T>>);

fn column(
    batches: &[RecordBatch],
    name: &str,
    to: &ArrowType,
) -> Result<Vec<ArrayRef>, ClickHouseError> {
    batches
        .iter()
        .map(|b| {
            let c = b.column_by_name(name).ok_or_else(|| {
                ClickHouseError::Schema(format!("the result has no column {name}"))
            })?;
            arrow_cast::cast(c, to).map_err(|e| {
                ClickHouseError::Schema(format!("column {name} ({}): {e}", c.data_type()))
            })
        })
        .collect()
}

/// Column `name` of every batch, cast to `to` and read as `A` by `read`.
fn read_as<A: 'static, T>(
    batches: &[RecordBatch],
    name: &str,
    to: &ArrowType,
    read: impl Fn(&A, &mut Vec<Option<T>>),
) -> Result<Values<T>, ClickHouseError> {
    let mut out = Vec::new();
    for a in column(batches, name, to)? {
        if let Some(a) = a.as_any().downcast_ref::<A>() {
            read(a, &mut out);
        }
    }
    Ok(Values(out))
}

/// Integers (any width, signed or not, nullable) as i64.
pub(crate) fn ints(batches: &[RecordBatch], name: &str) -> Result<Values<i64>, ClickHouseError> {
    read_as(batches, name, &ArrowType::Int64, |a: &Int64Array, out| {
        out.extend(a.iter())
    })
}

/// Floats as f64.
pub(crate) fn floats(batches: &[RecordBatch], name: &str) -> Result<Values<f64>, ClickHouseError> {
    read_as(
        batches,
        name,
        &ArrowType::Float64,
        |a: &Float64Array, out| out.extend(a.iter()),
    )
}

/// Booleans (or 0/1 integers).
pub(crate) fn bools(batches: &[RecordBatch], name: &str) -> Result<Values<bool>, ClickHouseError> {
    read_as(
        batches,
        name,
        &ArrowType::Boolean,
        |a: &BooleanArray, out| out.extend(a.iter()),
    )
}

/// Strings (text or binary columns: ClickHouse's `String` is bytes).
pub(crate) fn strings(
    batches: &[RecordBatch],
    name: &str,
) -> Result<Values<String>, ClickHouseError> {
    read_as(batches, name, &ArrowType::Utf8, |a: &StringArray, out| {
        out.extend(a.iter().map(|s| s.map(str::to_owned)))
    })
}

/// Arrays of strings.
pub(crate) fn string_lists(
    batches: &[RecordBatch],
    name: &str,
) -> Result<Values<Vec<String>>, ClickHouseError> {
    let to = ArrowType::List(Arc::new(arrow_schema::Field::new(
        "item",
        ArrowType::Utf8,
        true,
    )));
    let mut out = Vec::new();
    for a in column(batches, name, &to)? {
        let Some(list) = a.as_any().downcast_ref::<ListArray>() else {
            continue;
        };
        for i in 0..list.len() {
            if list.is_null(i) {
                out.push(None);
                continue;
            }
            let items = list.value(i);
            let items = items.as_any().downcast_ref::<StringArray>();
            out.push(Some(
                items
                    .map(|s| s.iter().flatten().map(str::to_owned).collect())
                    .unwrap_or_default(),
            ));
        }
    }
    Ok(Values(out))
}

/// Interns names to the dense codes the findings frame carries.
#[derive(Default)]
pub(crate) struct Names<K> {
    codes: HashMap<K, u32>,
    /// By code.
    pub(crate) values: Vec<K>,
}

impl<K: Clone + Eq + std::hash::Hash> Names<K> {
    pub(crate) fn code(&mut self, k: &K) -> u32 {
        if let Some(c) = self.codes.get(k) {
            return *c;
        }
        let c = self.values.len() as u32;
        self.codes.insert(k.clone(), c);
        self.values.push(k.clone());
        c
    }
}

/// The names behind the codes of the frames built here.
#[derive(Default)]
pub(crate) struct Dictionaries {
    pub(crate) streams: Names<(String, String)>,
    pub(crate) groups: Names<String>,
    pub(crate) partitions: Names<String>,
}

/// The findings frame ([`crate::findings::Collected::findings`]'s columns) from the rows of
/// [`super::sql::findings`].
pub(crate) fn findings(
    batches: &[RecordBatch],
    names: &mut Dictionaries,
) -> Result<DataFrame, ClickHouseError> {
    let kind = strings(batches, "kind")?.0;
    let stage = strings(batches, "stage_name")?.0;
    let producer = strings(batches, "producer")?.0;
    let stream = strings(batches, "stream")?.0;
    let group = strings(batches, "grp")?.0;
    let partition = strings(batches, "partition")?.0;
    let trace_ids = string_lists(batches, "trace_ids")?.0;
    let n = kind.len();
    let mut kinds = Vec::with_capacity(n);
    let mut stages = Vec::with_capacity(n);
    for (k, s) in kind.iter().zip(&stage) {
        let k = k
            .as_deref()
            .and_then(|k| Kind::ALL.iter().find(|x| x.as_str() == k));
        let Some(k) = k else {
            return Err(ClickHouseError::Schema(format!(
                "a finding of an unknown kind: {kind:?}"
            )));
        };
        kinds.push(*k as u8);
        stages.push(
            s.as_deref()
                .and_then(|s| Where::ALL.iter().find(|x| x.as_str() == s))
                .map(|w| *w as u8),
        );
    }
    let streams: Vec<u32> = producer
        .into_iter()
        .zip(stream)
        .map(|(p, s)| {
            names
                .streams
                .code(&(p.unwrap_or_default(), s.unwrap_or_default()))
        })
        .collect();
    let groups: Vec<Option<u32>> = group
        .into_iter()
        .map(|g| g.map(|g| names.groups.code(&g)))
        .collect();
    let partitions: Vec<Option<u32>> = partition
        .into_iter()
        .map(|p| p.map(|p| names.partitions.code(&p)))
        .collect();
    // Trace ids as the readers keep them: 128-bit integers, sorted as polars sorts them.
    let trace_ids: ListChunked = trace_ids
        .into_iter()
        .map(|ids| {
            let mut ids: Vec<i128> = ids
                .unwrap_or_default()
                .iter()
                .filter_map(|h| u128::from_str_radix(h, 16).ok().map(|v| v as i128))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            Some(Series::new(PlSmallStr::EMPTY, ids))
        })
        .collect();
    let positions: ListChunked = string_lists(batches, "positions")?
        .0
        .into_iter()
        .map(|p| Some(Series::new(PlSmallStr::EMPTY, p.unwrap_or_default())))
        .collect();
    let i = |name: &str| -> Result<Column, ClickHouseError> {
        Ok(Column::new(name.into(), ints(batches, name)?.0))
    };
    let s = |name: &str| -> Result<Column, ClickHouseError> {
        Ok(Column::new(name.into(), strings(batches, name)?.0))
    };
    let b = |name: &str| -> Result<Column, ClickHouseError> {
        Ok(Column::new(name.into(), bools(batches, name)?.0))
    };
    let columns = vec![
        Column::new("kind".into(), kinds),
        Column::new("stage".into(), stages),
        Column::new("stream".into(), streams),
        i("seq")?,
        Column::new("group".into(), groups),
        i("attempts")?,
        i("answers")?,
        i("ok_acks")?,
        b("two_positions")?,
        i("deliveries")?,
        i("prev_seq")?,
        i("next_seq")?,
        i("stands_for")?,
        i("delivered")?,
        i("settles")?,
        i("acks")?,
        i("passed_seq")?,
        i("last_end")?,
        s("delivered_at")?,
        Column::new("partition".into(), partitions),
        s("message_id")?,
        b("ledger")?,
        trace_ids
            .into_series()
            .with_name("trace_ids".into())
            .into_column(),
        positions
            .into_series()
            .with_name("positions".into())
            .into_column(),
    ];
    DataFrame::new(n, columns).map_err(|e| ClickHouseError::Schema(e.to_string()))
}
