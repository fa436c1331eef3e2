//! The loss timeline: per stream, its findings along the seq axis, one lane per partition and
//! one row per kind within a lane. Up to [`MARKS_MAX`] findings a stream get a mark each;
//! beyond, cells of [`BINS`] seq ranges shaded by how many findings they hold.

use std::collections::{BTreeMap, BTreeSet};

use super::svg::{Anchor, Node, Svg};
use super::{Plot, kind_class, kind_index};
use crate::report::Finding;

/// Findings a stream may have and still get one mark each.
pub const MARKS_MAX: usize = 2_000;
/// Seq ranges per lane when aggregating.
pub const BINS: u64 = 240;
/// Lanes drawn per stream; further partitions share an "other" lane.
pub const LANES_MAX: usize = 16;
/// Streams plotted; the rest are counted in the note under the plots.
pub const PLOTS_MAX: usize = 50;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 118.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 6.0;
const AXIS: f64 = 28.0;
const ROW: f64 = 8.0;
const LANE_PAD: f64 = 8.0;

/// A lane label: the partition, or a dash for findings without one.
fn lane_name(f: &Finding) -> &str {
    f.partition.as_deref().unwrap_or("–")
}

/// Partitions in natural order: numbers by value, then names.
fn lane_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// One plot per stream with findings (at most [`PLOTS_MAX`], the streams with the most
/// findings first), and a note when streams were left out.
pub fn timelines(findings: &[Finding]) -> (Vec<Plot>, Option<String>) {
    let mut by_stream: BTreeMap<(&str, &str), Vec<&Finding>> = BTreeMap::new();
    // Findings without a seq (SPEC §4b) have no place on a seq axis: the tables list them.
    for f in findings.iter().filter(|f| f.seq.is_some()) {
        by_stream
            .entry((f.producer_id.as_str(), f.stream.as_str()))
            .or_default()
            .push(f);
    }
    let mut streams: Vec<_> = by_stream.into_iter().collect();
    // Most findings first; ties by name, so the page is the same every run.
    streams.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let left_out = streams.len().saturating_sub(PLOTS_MAX);
    let plots = streams
        .into_iter()
        .take(PLOTS_MAX)
        .map(|((producer, stream), list)| stream_plot(producer, stream, &list))
        .collect();
    let note = (left_out > 0).then(|| {
        format!(
            "{left_out} more stream(s) with fewer findings are not plotted; \
             the tables count them all"
        )
    });
    (plots, note)
}

fn stream_plot(producer: &str, stream: &str, list: &[&Finding]) -> Plot {
    // Lanes: every partition, in natural order, the last sharing "other" beyond LANES_MAX.
    let mut names: Vec<&str> = list
        .iter()
        .map(|f| lane_name(f))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    names.sort_by(|a, b| lane_order(a, b));
    let merged = names.len() > LANES_MAX;
    let lane_of: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, i.min(LANES_MAX - 1)))
        .collect();
    let mut lane_labels: Vec<String> = names
        .iter()
        .take(LANES_MAX)
        .map(|n| format!("partition {}", short(n, 12)))
        .collect();
    if merged && let Some(last) = lane_labels.last_mut() {
        *last = format!("{} other partitions", names.len() - (LANES_MAX - 1));
    }
    // Rows within a lane: the kinds this stream has, in the report's order.
    let kinds: Vec<usize> = list
        .iter()
        .map(|f| kind_index(f))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let row_of = |k: usize| kinds.iter().position(|x| *x == k).unwrap_or(0) as f64;
    let lane_h = kinds.len() as f64 * ROW + LANE_PAD;
    let height = TOP + lane_labels.len() as f64 * lane_h + AXIS;
    let plot_w = WIDTH - LEFT - RIGHT;

    let (lo, hi) = list.iter().fold((i64::MAX, i64::MIN), |(lo, hi), f| {
        let seq = f.seq.unwrap_or(0);
        (lo.min(seq), hi.max(seq))
    });
    let span = u64::try_from(hi.saturating_sub(lo)).unwrap_or(0);
    let x_of = |seq: i64| {
        let off = u64::try_from(seq.saturating_sub(lo)).unwrap_or(0) as f64;
        if span == 0 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + off / span as f64 * plot_w
        }
    };

    let label = format!(
        "loss timeline of stream {stream} (producer {producer}): {} findings along seqs {lo} to {hi}",
        list.len()
    );
    let mut svg = Svg::new(WIDTH, height, label);
    for (i, name) in lane_labels.iter().enumerate() {
        let top = TOP + i as f64 * lane_h;
        svg.rect(
            LEFT,
            top,
            plot_w,
            lane_h - 2.0,
            if i % 2 == 0 { "lane" } else { "lane alt" },
        );
        svg.text(
            LEFT - 6.0,
            top + lane_h / 2.0 + 3.0,
            Anchor::End,
            "axis",
            name,
        );
    }

    let aggregated = list.len() > MARKS_MAX;
    if aggregated {
        // (lane, kind, bin) → count, first and last seq.
        let mut cells: BTreeMap<(usize, usize, u64), (u64, i64, i64)> = BTreeMap::new();
        for f in list {
            let off = u64::try_from(f.seq.unwrap_or(0).saturating_sub(lo)).unwrap_or(0);
            let bin = (u128::from(off) * u128::from(BINS) / (u128::from(span) + 1)) as u64;
            let lane = lane_of.get(lane_name(f)).copied().unwrap_or(0);
            let cell = cells.entry((lane, kind_index(f), bin)).or_insert((
                0,
                f.seq.unwrap_or(0),
                f.seq.unwrap_or(0),
            ));
            cell.0 += 1;
            cell.1 = cell.1.min(f.seq.unwrap_or(0));
            cell.2 = cell.2.max(f.seq.unwrap_or(0));
        }
        let most = cells.values().map(|c| c.0).max().unwrap_or(1) as f64;
        let bin_w = plot_w / BINS as f64;
        for ((lane, kind, bin), (count, first, last)) in cells {
            let top = TOP + lane as f64 * lane_h + LANE_PAD / 2.0 + row_of(kind) * ROW;
            let key = crate::report::FINDING_KEYS
                .get(kind)
                .map_or("", String::as_str);
            svg.nodes.push(Node::Rect {
                x: LEFT + bin as f64 * bin_w,
                y: top,
                w: bin_w.max(1.0),
                h: ROW - 1.5,
                class: kind_class(kind),
                opacity: 0.3 + 0.7 * (1.0 + count as f64).ln() / (1.0 + most).ln(),
                title: Some(format!(
                    "{count} × {key}, seqs {first}–{last}, {}",
                    lane_labels.get(lane).map(String::as_str).unwrap_or("")
                )),
            });
        }
    } else {
        let mark_w = if span == 0 {
            6.0
        } else {
            (plot_w / (span as f64 + 1.0)).clamp(2.0, 6.0)
        };
        for f in list {
            let lane = lane_of.get(lane_name(f)).copied().unwrap_or(0);
            let kind = kind_index(f);
            let top = TOP + lane as f64 * lane_h + LANE_PAD / 2.0 + row_of(kind) * ROW;
            let group = f
                .consumer_group
                .as_deref()
                .map(|g| format!(", group {g}"))
                .unwrap_or_default();
            svg.nodes.push(Node::Rect {
                x: x_of(f.seq.unwrap_or(0)) - mark_w / 2.0,
                y: top,
                w: mark_w,
                h: ROW - 1.5,
                class: kind_class(kind),
                opacity: 1.0,
                title: Some(format!(
                    "{} seq {}{group}, partition {}",
                    f.key(),
                    f.seq.unwrap_or(0),
                    lane_name(f)
                )),
            });
        }
    }

    // The seq axis: five ticks at even steps.
    let axis_y = TOP + lane_labels.len() as f64 * lane_h + 2.0;
    svg.line((LEFT, axis_y), (LEFT + plot_w, axis_y), "axis-line");
    // lo + span·i/4 for i in 0..=4: the last tick is hi itself.
    let ticks: BTreeSet<i64> = (0..=4u128)
        .map(|i| {
            let step = u128::from(span) * i / 4;
            lo.saturating_add(i64::try_from(step).unwrap_or(i64::MAX))
        })
        .collect();
    for t in ticks {
        let x = x_of(t);
        svg.line((x, axis_y), (x, axis_y + 4.0), "axis-line");
        svg.text(x, axis_y + 15.0, Anchor::Middle, "axis", &t.to_string());
    }
    svg.text(LEFT - 30.0, axis_y + 15.0, Anchor::End, "axis", "seq");

    let note = aggregated.then(|| {
        format!(
            "{} findings: drawn as {BINS} seq ranges per lane, shaded by count (hover for counts)",
            list.len()
        )
    });
    Plot {
        title: format!("{stream} (producer {producer})"),
        caption: format!(
            "{} finding(s) on seqs {lo}–{hi}, {} partition lane(s)",
            list.len(),
            names.len()
        ),
        svg: svg.to_string(),
        note,
    }
}
