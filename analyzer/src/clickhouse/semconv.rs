//! SPEC §4b on a ClickHouse source: the messaging spans without numbering come back whole and
//! are judged by the analyzer's own judge ([`crate::semconv`]), as from files. Their identity
//! is a graph (message ids, Kafka offsets, parents, links) that one pass over the spans walks;
//! third-party traffic is a small part of a table, and the numbered messages it points at are
//! found on the server (`IN`, `GLOBAL IN` across shards), so that none of the numbered spans
//! travel.

use arrow_array::RecordBatch;
use mqtrace_reader::semconv::{SemSpan, TextSpan, TextSpans, ids_from_hex};

use super::frame;
use super::sql::{self, Layout, Params};
use super::{ClickHouseError, Engine};
use crate::semconv::Numbered;

/// The spans without numbering, read as the file readers read them.
pub(super) fn spans(
    engine: &mut dyn Engine,
    params: &Params,
    layout: &Layout,
) -> Result<Vec<SemSpan>, ClickHouseError> {
    let mut out = TextSpans::default();
    for batch in engine.query(&sql::semconv(layout), params)? {
        read_batch(std::slice::from_ref(&batch), &mut out)?;
    }
    Ok(out.finish())
}

/// One batch's rows into `out` (a batch at a time: the columns of one batch as owned text
/// at most).
fn read_batch(batch: &[RecordBatch], out: &mut TextSpans) -> Result<(), ClickHouseError> {
    let text = |name| frame::strings(batch, name).map(|v| v.0);
    let lists = |name| frame::string_lists(batch, name).map(|v| v.0);
    let (trace, span, parent) = (text("trace_id")?, text("span_id")?, text("parent_id")?);
    let (kind, status, service) = (text("span_kind")?, text("status_code")?, text("service")?);
    let (link_traces, link_spans) = (lists("link_trace_ids")?, lists("link_span_ids")?);
    let (keys, values) = (lists("attribute_keys")?, lists("attribute_values")?);
    let end = frame::ints(batch, "end_ns")?.0;
    fn s(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or_default()
    }
    fn list(v: &Option<Vec<String>>) -> &[String] {
        v.as_deref().unwrap_or_default()
    }
    let mut links = Vec::new();
    let mut attributes = Vec::new();
    for (i, trace_id) in trace.iter().enumerate() {
        let (Some(lt), Some(ls)) = (link_traces.get(i), link_spans.get(i)) else {
            break;
        };
        let (Some(k), Some(v)) = (keys.get(i), values.get(i)) else {
            break;
        };
        zip_into(list(lt), list(ls), &mut links);
        zip_into(list(k), list(v), &mut attributes);
        out.push(&TextSpan {
            trace_id: s(trace_id),
            span_id: span.get(i).map_or("", s),
            parent: parent.get(i).map_or("", s),
            kind: kind.get(i).map_or("", s),
            status: status.get(i).map_or("", s),
            service: service.get(i).map_or("", s),
            links: &links,
            attributes: &attributes,
            end_ns: end.get(i).copied().flatten().unwrap_or(0),
        });
    }
    Ok(())
}

/// Two parallel arrays of one row (link trace and span ids, attribute keys and values) as
/// pairs, into `out`.
fn zip_into<'a>(a: &'a [String], b: &'a [String], out: &mut Vec<(&'a str, &'a str)>) {
    out.clear();
    out.extend(a.iter().zip(b).map(|(a, b)| (a.as_str(), b.as_str())));
}

/// The numbered sends and message ids that `spans` point at, as the files' path knows them
/// from its frame ([`crate::semconv::numbered`]): a message id matches exactly, or as a
/// default id `{producer}:{stream}:{seq}` with its seq read as a number.
pub(super) fn numbered(
    engine: &mut dyn Engine,
    params: &Params,
    layout: &Layout,
    spans: &[SemSpan],
) -> Result<Numbered, ClickHouseError> {
    let batches = engine.query(&sql::numbered_refs(layout), params)?;
    let kinds = frame::strings(&batches, "kind")?.0;
    let traces = frame::strings(&batches, "t")?.0;
    let refs = frame::strings(&batches, "r")?.0;
    let mut numbered = Numbered::default();
    let mut exact = std::collections::HashSet::new();
    let mut defaults = std::collections::HashSet::new();
    for ((kind, t), r) in kinds.iter().zip(&traces).zip(&refs) {
        let (Some(kind), Some(r)) = (kind.as_deref(), r.as_deref()) else {
            continue;
        };
        match kind {
            "span" => {
                if let Some(ids) = t.as_deref().and_then(|t| ids_from_hex(t, r)) {
                    numbered.sends.insert(ids);
                }
            }
            "id" => {
                exact.insert(r.to_owned());
            }
            _ => {
                defaults.insert(r.to_owned());
            }
        }
    }
    for id in spans.iter().filter_map(|s| s.message_id.as_deref()) {
        if exact.contains(id) || default_form(id).is_some_and(|d| defaults.contains(&d)) {
            numbered.ids.insert(id.to_owned());
        }
    }
    Ok(numbered)
}

/// `id` as a default id would be written if it is one: `{rest}:{seq}` with the seq as the
/// number it reads as (`p:s:007` → `p:s:7`).
fn default_form(id: &str) -> Option<String> {
    let (rest, seq) = id.rsplit_once(':')?;
    let seq: i64 = seq.parse().ok()?;
    Some(format!("{rest}:{seq}"))
}

#[cfg(test)]
mod tests {
    use super::default_form;

    #[test]
    fn a_default_id_reads_its_seq_as_a_number() {
        assert_eq!(default_form("p:orders:007").as_deref(), Some("p:orders:7"));
        assert_eq!(default_form("a:b:c:12").as_deref(), Some("a:b:c:12"));
        assert_eq!(default_form("order-13"), None);
        assert_eq!(default_form("p:s:x"), None);
    }
}
