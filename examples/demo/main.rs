//! The mqtrace demo: five real faults on librdkafka's in-process mock cluster, traced to
//! files, then analyzed — and the analyzer's verdicts checked against what was injected.
//!
//! Run: `scripts/demo [OUT_DIR]` (default `target/mqtrace-demo`), which builds the workspace once
//! and runs `target/release/examples/demo`.

use anyhow::bail;
use mqtrace_analyzer::{Options, analyze, input, report::render_table};
use mqtrace_examples::demo;
use std::collections::BTreeSet;
use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/mqtrace-demo"));
    let injected = demo::run(&out).await?;

    let traces = out.join("traces");
    println!("\n$ mqtrace analyze {}\n", traces.display());
    let report = analyze(&input::discover(&[traces])?, &Options::default(), &|_| {})?;
    print!("{}", render_table(&report, 0));
    println!(
        "\none finding of each kind (--format json lists all {}):",
        report.findings.len()
    );
    let mut shown = BTreeSet::new();
    for f in &report.findings {
        if shown.insert(f.key()) {
            let group = f.consumer_group.as_deref().unwrap_or("-");
            println!(
                "  {:<18} seq {:<5} group {group:<9} {}",
                f.key(),
                f.seq.unwrap_or(0),
                f.evidence_text()
            );
        }
    }

    println!("\nanalyzer vs. what the demo injected:");
    let mut all_match = true;
    for (key, expected) in injected.by_key() {
        let found: BTreeSet<u64> = report
            .findings
            .iter()
            .filter(|f| f.key() == key && f.producer_id == demo::PRODUCER_ID)
            .filter_map(|f| f.seq.and_then(|s| u64::try_from(s).ok()))
            .collect();
        let verdict = if &found == expected { "ok" } else { "MISMATCH" };
        all_match &= &found == expected;
        println!(
            "  {key:<18} injected {:>4}, found {:>4}  {verdict}",
            expected.len(),
            found.len()
        );
    }
    if !all_match {
        bail!("the analyzer's findings differ from what the demo injected");
    }
    Ok(())
}
