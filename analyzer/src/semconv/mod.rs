//! SPEC §4b: messages traced by other instrumentations, without mqtrace's numbering. The
//! spans are few next to numbered traffic and their identity is a graph (message ids,
//! offsets, parent and link ids), so they are judged here with hash maps, not in the polars
//! plans; the findings come out as the same typed [`Finding`]s, with `basis` = `semconv`.
//!
//! - [`messages`] ties spans into messages and deliveries;
//! - [`verdicts`] judges each message per group.

mod messages;
mod verdicts;

#[cfg(test)]
mod tests;

pub(crate) use messages::Numbered;
pub use verdicts::SemEvidence;

use mqtrace_reader::semconv::SemSpan;
use std::collections::{BTreeMap, BTreeSet};

use crate::report::Finding;

/// What the semconv path found.
#[derive(Debug, Default)]
pub(crate) struct Judged {
    pub(crate) findings: Vec<Finding>,
    /// Messages judged here, per stream: (producer's service, destination). Numbered
    /// messages delivered to third-party consumers are the numbered path's to count.
    pub(crate) streams: BTreeMap<(String, String), u64>,
    /// Messaging spans that could not be analysed, by reason.
    pub(crate) unanalysed: BTreeMap<String, u64>,
}

impl Judged {
    /// Messages judged here, in all their streams.
    #[cfg(test)]
    pub(crate) fn messages(&self) -> u64 {
        self.streams.values().sum()
    }
}

/// Judges `spans` (none of them numbered); `numbered`: the numbered messages' sends and ids,
/// left to the numbered path.
pub(crate) fn judge(
    spans: &[SemSpan],
    numbered: &Numbered,
    window_end_ns: i64,
    grace_ns: i64,
) -> Judged {
    if spans.is_empty() {
        return Judged::default();
    }
    let built = messages::messages(spans, numbered);
    let age = verdicts::Age {
        window_end_ns,
        grace_ns,
    };
    // Each message's stream, named once for the findings and the counts.
    let named: Vec<(&str, &str)> = built
        .list
        .iter()
        .map(|m| verdicts::stream_of(m, spans))
        .collect();
    let findings = verdicts::findings(&built.list, &named, spans, age);
    let mut streams: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for (m, stream) in built.list.iter().zip(&named) {
        if !m.numbered {
            *streams.entry(*stream).or_default() += 1;
        }
    }
    Judged {
        findings,
        streams: streams
            .into_iter()
            .map(|((p, s), n)| ((p.to_owned(), s.to_owned()), n))
            .collect(),
        unanalysed: built
            .unanalysed
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    }
}

/// The numbered messages' ids among those `spans` name: their `messaging.message.id` where
/// the rows carry one, else the default `{producer id}:{stream}:{seq}`.
pub(crate) fn numbered(
    spans: &[SemSpan],
    sends: Vec<(u128, u64)>,
    frame: &polars::prelude::DataFrame,
    streams: &[(String, String)],
) -> polars::prelude::PolarsResult<Numbered> {
    let named: BTreeSet<&str> = spans
        .iter()
        .filter_map(|s| s.message_id.as_deref())
        .collect();
    let mut ids = rustc_hash::FxHashSet::default();
    if !named.is_empty() && frame.height() > 0 {
        for id in frame.column("message_id")?.str()?.iter().flatten() {
            if named.contains(id) {
                ids.insert(id.to_owned());
            }
        }
        // Default ids: `{producer}:{stream}:{seq}`, the split between producer and stream
        // tried at every `:` (either may hold one).
        let codes: std::collections::HashMap<(&str, &str), u32> = streams
            .iter()
            .enumerate()
            .map(|(i, (p, s))| ((p.as_str(), s.as_str()), i as u32))
            .collect();
        let mut wanted: std::collections::HashMap<(u32, i64), &str> =
            std::collections::HashMap::new();
        // Only ids a numbered stream could have written: a hostile id of a million `:` is
        // not split a million times.
        let longest = streams
            .iter()
            .map(|(p, s)| p.len() + s.len())
            .max()
            .unwrap_or(0)
            + 2
            + 20;
        for id in named.iter().filter(|id| id.len() <= longest) {
            let Some((rest, seq)) = id.rsplit_once(':') else {
                continue;
            };
            let Ok(seq) = seq.parse::<i64>() else {
                continue;
            };
            for (at, _) in rest.match_indices(':') {
                if let Some(code) = codes.get(&(&rest[..at], &rest[at + 1..])) {
                    wanted.insert((*code, seq), id);
                }
            }
        }
        if !wanted.is_empty() {
            let stream = frame.column("stream")?.u32()?;
            let seq = frame.column("seq")?.i64()?;
            for (s, q) in stream.iter().zip(seq.iter()) {
                if let (Some(s), Some(q)) = (s, q)
                    && let Some(id) = wanted.get(&(s, q))
                {
                    ids.insert((*id).to_owned());
                }
            }
        }
    }
    Ok(Numbered {
        sends: sends.into_iter().collect(),
        ids,
    })
}
