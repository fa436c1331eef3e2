//! Per-hop latency as histograms on a log axis (the buckets of
//! [`LATENCY_EDGES_MS`](crate::LATENCY_EDGES_MS)), with p50, p90 and p99 marked.

use super::svg::{Anchor, Svg};
use super::{Plot, ms_text};
use crate::LATENCY_EDGES_MS;
use crate::report::Latency;

/// Histograms drawn; further (hop, stream, group) rows are in the table only.
pub const PLOTS_MAX: usize = 60;

const WIDTH: f64 = 460.0;
const HEIGHT: f64 = 170.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 18.0;
const BOTTOM: f64 = 34.0;

/// Where `value_ms` falls on the histogram's x axis, in buckets (fractional, on a log scale
/// within a bucket).
fn bucket_position(value_ms: f64) -> f64 {
    let edges = &LATENCY_EDGES_MS;
    if value_ms.is_nan() || value_ms < edges[0] {
        return 0.5;
    }
    for (i, pair) in edges.windows(2).enumerate() {
        let (lo, hi) = (pair[0], pair[1]);
        if value_ms < hi {
            return 1.0 + i as f64 + (value_ms / lo).ln() / (hi / lo).ln();
        }
    }
    edges.len() as f64 + 0.5
}

/// A bucket's lower edge as a label.
fn edge_label(bucket: usize) -> String {
    match bucket.checked_sub(1).and_then(|i| LATENCY_EDGES_MS.get(i)) {
        Some(ms) => ms_text(*ms),
        None => "0".to_owned(),
    }
}

/// One histogram per latency row that has one, at most [`PLOTS_MAX`]; and a note when some
/// were left out.
pub fn histograms(rows: &[Latency]) -> (Vec<Plot>, Option<String>) {
    let drawable: Vec<&Latency> = rows
        .iter()
        .filter(|l| l.count > 0 && l.histogram.iter().any(|n| *n > 0))
        .collect();
    // (Every gap negative: nothing to draw; the table shows the percentiles.)
    let left_out = drawable.len().saturating_sub(PLOTS_MAX);
    let plots = drawable.into_iter().take(PLOTS_MAX).map(plot).collect();
    let note = (left_out > 0)
        .then(|| format!("{left_out} more hop(s) are not plotted; the table above lists them all"));
    (plots, note)
}

fn plot(l: &Latency) -> Plot {
    let h = &l.histogram;
    let first = h.iter().position(|n| *n > 0).unwrap_or(0);
    let last = h.iter().rposition(|n| *n > 0).unwrap_or(0);
    // At least six buckets wide, so that one busy bucket is not a wall.
    let (from, to) = (
        first.saturating_sub(1),
        (last + 1).max(first + 6).min(h.len()),
    );
    let buckets = (to - from).max(1) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let bar_w = plot_w / buckets;
    let most = h.iter().copied().max().unwrap_or(1).max(1) as f64;
    let group = l.consumer_group.as_deref().unwrap_or("–");
    let mut svg = Svg::new(
        WIDTH,
        HEIGHT,
        format!(
            "latency histogram of {} for stream {} group {group}: p50 {}, p90 {}, p99 {}",
            l.hop,
            l.stream,
            ms_text(l.p50_ms),
            ms_text(l.p90_ms),
            ms_text(l.p99_ms)
        ),
    );
    let base = TOP + plot_h;
    for (i, n) in h.iter().enumerate().take(to).skip(from) {
        let x = LEFT + (i - from) as f64 * bar_w;
        if *n > 0 {
            let bar_h = (*n as f64 / most * plot_h).max(1.0);
            svg.nodes.push(super::svg::Node::Rect {
                x: x + 1.0,
                y: base - bar_h,
                w: bar_w - 2.0,
                h: bar_h,
                class: "bar",
                opacity: 1.0,
                title: Some(format!(
                    "{n} message(s) from {} to {}",
                    edge_label(i),
                    LATENCY_EDGES_MS
                        .get(i)
                        .map(|ms| ms_text(*ms))
                        .unwrap_or_else(|| "beyond".to_owned())
                )),
            });
        }
        svg.line((x, base), (x, base + 4.0), "axis-line");
        svg.text(x, base + 15.0, Anchor::Middle, "axis small", &edge_label(i));
    }
    svg.line((LEFT, base), (LEFT + plot_w, base), "axis-line");
    svg.text(
        LEFT - 4.0,
        TOP + 8.0,
        Anchor::End,
        "axis small",
        &most.to_string(),
    );
    svg.text(LEFT - 4.0, base, Anchor::End, "axis small", "0");
    // The percentiles as lines across the bars, labelled at the top.
    // Labels a line apart, so that percentiles in one bucket stay readable.
    for (row, (name, value, class)) in [
        ("p50", l.p50_ms, "p50"),
        ("p90", l.p90_ms, "p90"),
        ("p99", l.p99_ms, "p99"),
    ]
    .into_iter()
    .enumerate()
    {
        let x = LEFT + (bucket_position(value) - from as f64) * bar_w;
        if (LEFT..=LEFT + plot_w).contains(&x) {
            svg.line((x, TOP - 4.0), (x, base), class);
            svg.text(
                x + 2.0,
                TOP + 4.0 + 11.0 * row as f64,
                Anchor::Start,
                class,
                name,
            );
        }
    }
    svg.text(
        LEFT + plot_w / 2.0,
        HEIGHT - 4.0,
        Anchor::Middle,
        "axis",
        "latency (log scale)",
    );
    let note = (l.negative > 0).then(|| {
        format!(
            "{} message(s) with a negative gap are not drawn: the two hosts' clocks disagree",
            l.negative
        )
    });
    Plot {
        title: format!("{} · {} · {group}", l.hop, l.stream),
        caption: format!(
            "{} message(s): p50 {}, p90 {}, p99 {}, max {}",
            l.count,
            ms_text(l.p50_ms),
            ms_text(l.p90_ms),
            ms_text(l.p99_ms),
            ms_text(l.max_ms)
        ),
        svg: svg.to_string(),
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_land_in_their_buckets() {
        assert_eq!(bucket_position(0.001), 0.5);
        // 1 ms is the lower edge of bucket 7 ([1, 2) ms).
        assert!((bucket_position(1.0) - 7.0).abs() < 1e-9);
        let p = bucket_position(1.5);
        assert!(p > 7.0 && p < 8.0);
        assert_eq!(bucket_position(1e9), LATENCY_EDGES_MS.len() as f64 + 0.5);
        assert_eq!(bucket_position(f64::NAN), 0.5);
    }
}
