//! `mqtrace`: the analyzer's command line.

mod cli;

use anyhow::{Context as _, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use cli::{AnalyzeArgs, Cli, ClickhouseCommand, Command, OutputFormat};
use mqtrace_analyzer::report::printable;
use mqtrace_analyzer::{Options, Report, analyze, clickhouse, input};
use polars::prelude::*;

/// Inputs smaller than this finish before a progress bar would help.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

/// polars allocates and frees large buffers all through a run; glibc's allocator hands them
/// back to the kernel and faults them in again (a third of a 10M-span run went to zeroing
/// pages), mimalloc keeps and reuses them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its place in v3's `mi_option_e`; the sys crate names
/// no constant for it, and its version is pinned in Cargo.toml).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps the pages of freed memory for reuse, as they are. By default mimalloc gives freed
/// memory back to the kernel a second after a free, and asks for transparent huge pages,
/// which the kernel zeroes 2 MiB at a time on first touch. A run allocates and frees
/// column-sized buffers all the time and touches them sparsely: at 1M spans the kernel zeroed
/// 3.4 GB of huge pages for 0.4 GB the run touched, a third of the CPU time. A run is short
/// and ends by exiting, so keeping its peak costs nothing.
fn keep_freed_memory() {
    // SAFETY: mi_option_set stores an integer in mimalloc's option table (atomically), valid
    // at any time from any thread; prctl(PR_SET_THP_DISABLE) takes plain integers and only
    // changes how the kernel backs this process's later page faults.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mqtrace: error: {}", printable(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Analyze(args) => run_analyze(args),
        Command::Clickhouse(ClickhouseCommand::Ddl {
            database,
            table,
            cluster,
        }) => {
            print!(
                "{}",
                clickhouse::ddl::script(&database, &table, cluster.as_deref())
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn progress_bar(files: &[input::InputFile], hidden: bool) -> ProgressBar {
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(&f.path).ok())
        .map(|m| m.len())
        .sum();
    let compressed = files
        .iter()
        .any(|f| f.compression != input::Compression::None);
    if hidden || total < PROGRESS_MIN_BYTES || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = if compressed {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::new(total)
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    let template = if compressed {
        "{spinner} reading traces: {bytes} ({bytes_per_sec})"
    } else {
        "reading traces [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn run_analyze(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    if args.format == OutputFormat::Parquet && args.output.is_none() {
        bail!("--format parquet writes binary data: give --output FILE");
    }
    let options = Options {
        grace: args.grace,
        streams: args.streams.clone(),
        groups: args.groups.clone(),
        until: args.until,
        since: args.since,
        timings: args.timings,
        histograms: args.format == OutputFormat::Html,
    };
    if args.trace_url.is_some() && args.format != OutputFormat::Html {
        bail!("--trace-url links trace ids in the HTML report: add --format html");
    }
    let source = match args.paths.as_slice() {
        [one] => one.to_str().and_then(clickhouse::Source::parse),
        _ => None,
    };
    let report = match source {
        Some(source) => {
            let source = source?;
            clickhouse::analyze(&source, &options)?
        }
        None => {
            let files = input::discover(&args.paths)?;
            if let Some(output) = &args.output {
                refuse_to_overwrite_input(output, &files)?;
            }
            let bar = progress_bar(&files, args.no_progress);
            let report = analyze(&files, &options, &|n| bar.inc(n))?;
            bar.finish_and_clear();
            report
        }
    };

    write_report(&report, &args)?;
    let first = report
        .input
        .malformed
        .first()
        .map(|m| printable(&m.to_string()).into_owned())
        .unwrap_or_default();
    if args.strict && report.input.malformed_total > 0 {
        eprintln!(
            "mqtrace: {} malformed record(s), first: {first} (--strict)",
            report.input.malformed_total
        );
        return Ok(ExitCode::from(2));
    }
    if report.input.malformed_total > 0 && args.format != OutputFormat::Table {
        eprintln!(
            "mqtrace: skipped {} malformed record(s), first: {first}",
            report.input.malformed_total
        );
    }
    Ok(if report.has_problems() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--output` naming one of the inputs would overwrite the traces with the report.
fn refuse_to_overwrite_input(
    output: &std::path::Path,
    files: &[input::InputFile],
) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(output) else {
        return Ok(()); // a new file
    };
    if files.iter().any(|f| f.id == (meta.dev(), meta.ino())) {
        bail!(
            "--output {} is one of the input files: the report would overwrite the traces; \
             write it elsewhere",
            output.display()
        );
    }
    Ok(())
}

fn write_report(report: &Report, args: &AnalyzeArgs) -> anyhow::Result<()> {
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    match args.format {
        OutputFormat::Table => {
            out.write_all(mqtrace_analyzer::report::render_table(report, args.max_rows).as_bytes())?
        }
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, report)?;
            out.write_all(b"\n")?;
        }
        OutputFormat::Csv => {
            let mut df = report.findings_frame(false, true)?;
            CsvWriter::new(&mut out).finish(&mut df)?;
        }
        OutputFormat::Parquet => {
            let mut df = report.findings_frame(true, false)?;
            ParquetWriter::new(&mut out).finish(&mut df)?;
        }
        OutputFormat::Html => {
            let options = mqtrace_analyzer::report::html::HtmlOptions {
                trace_url: args.trace_url.clone(),
            };
            let page = mqtrace_analyzer::report::html::render_html(report, &options)?;
            out.write_all(page.as_bytes())?;
        }
    }
    out.flush().context("writing the report")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The option number written down above is mimalloc's purge delay: the only option of
    /// mimalloc v3 whose default is 1000 (ms).
    #[test]
    fn the_option_set_at_start_is_mimallocs_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // a user's setting replaces the default
        }
        // SAFETY: reads an integer from mimalloc's option table.
        #[allow(unsafe_code)]
        let value = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(value, 1000);
    }
}
