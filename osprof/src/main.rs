//! `osprof`: reports on osprofiler / Mistral profiler logs.
//!
//! Argument parsing only: every report is a library function in
//! the `osprof` library. Exit status 0 on success, 1 on a usage or
//! I/O error (with an `osprof: ...` message), 2 when clap rejects the
//! arguments.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use osprof::headers::{curl_args, sign};
use osprof::list::{list, ListOptions, ListSort};
use osprof::model::Tree;
use osprof::rank::{rank, Column, RankOptions};
#[cfg(feature = "redis")]
use osprof::source::RedisSource;
use osprof::source::{Inputs, Source};
use osprof::{load_request, parse_time, show, Filter, Format, Pattern};
use tracing_osprofiler::{HmacAlgorithm, Id};

#[derive(Parser)]
#[command(
    name = "osprof",
    version,
    about = "Reports on osprofiler / Mistral profiler logs",
    long_about = "Reports on osprofiler / Mistral profiler logs.\n\n\
        LOG arguments: files (plain or gzip), `-` for stdin. A rotated set may be given \
        in any order: files are read in the order of their first timestamp. Logs of \
        several services are joined by base_id. With --connection-string redis://…, \
        osprofiler's Redis store is read too, instead of or beside the logs."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Time per trace name (Mistral's rank_profiled_methods.py report by default).
    Rank(RankArgs),
    /// One row per request (base_id), slowest first.
    List(ListArgs),
    /// One request as a tree, osprofiler JSON, Chrome trace, SVG or HTML.
    Show(ShowArgs),
    /// Prints the two headers that ask a service to profile one request, for curl.
    Headers(HeadersArgs),
}

#[derive(Args)]
struct Common {
    /// Log files; `-` is stdin; gzip is recognized by content.
    #[cfg_attr(feature = "redis", arg(required_unless_present = "connection_string"))]
    #[cfg_attr(not(feature = "redis"), arg(required = true))]
    #[arg(value_name = "LOG")]
    logs: Vec<OsString>,
    /// Also read osprofiler's Redis store, `redis://[:password@]host[:port][/db]`.
    #[cfg(feature = "redis")]
    #[arg(long, value_name = "URL")]
    connection_string: Option<String>,
    /// Write the report to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    format: OutFormat,
    /// Only these requests (repeatable).
    #[arg(long = "base-id", value_name = "ID", value_parser = parse_id)]
    base_ids: Vec<Id>,
    /// Only trace names matching this `*`/`?` pattern (list: the root name).
    #[arg(long, value_name = "PATTERN")]
    name: Option<String>,
    /// Only lines at or after this UTC time (`2020-02-27T08:04:25`, or a date).
    #[arg(long, value_name = "TIME", value_parser = parse_when)]
    since: Option<tracing_osprofiler::format::Timestamp>,
    /// Only lines before this UTC time.
    #[arg(long, value_name = "TIME", value_parser = parse_when)]
    until: Option<tracing_osprofiler::format::Timestamp>,
    /// Only the first N rows.
    #[arg(long, value_name = "N")]
    top: Option<usize>,
    /// Reverse the sort order.
    #[arg(long)]
    reverse: bool,
}

/// The logs named, and the Redis store (all of it, or one request's key).
fn inputs(logs: &[OsString], store: Option<&str>, request: Option<Id>) -> Result<Inputs, String> {
    let mut sources: Vec<Source> = logs
        .iter()
        .map(|log| {
            if log == "-" {
                Source::Stdin
            } else {
                Source::Path(PathBuf::from(log))
            }
        })
        .collect();
    #[cfg(feature = "redis")]
    if let Some(connection_string) = store {
        let mut redis = RedisSource::new(connection_string).map_err(|e| e.to_string())?;
        if let Some(base_id) = request {
            redis = redis.with_request(base_id);
        }
        sources.push(Source::Redis(redis));
    }
    #[cfg(not(feature = "redis"))]
    let _ = (store, request, &mut sources);
    Inputs::new(sources).map_err(|e| e.to_string())
}

impl Common {
    fn inputs(&self, request: Option<Id>) -> Result<Inputs, String> {
        #[cfg(feature = "redis")]
        let store = self.connection_string.as_deref();
        #[cfg(not(feature = "redis"))]
        let store = None;
        inputs(&self.logs, store, request)
    }

    fn filter(&self) -> Filter {
        Filter::new()
            .with_base_ids(self.base_ids.clone())
            .with_name(self.name.as_deref().map(Pattern::new))
            .with_since(self.since)
            .with_until(self.until)
    }
}

#[derive(Args)]
struct RankArgs {
    #[command(flatten)]
    common: Common,
    /// Add the self-time column (wall time minus the union of the children's).
    #[arg(long = "self")]
    self_time: bool,
    /// Add the p50, p95 and p99 columns.
    #[arg(long)]
    percentiles: bool,
    /// Sort by this column.
    #[arg(long, value_enum, default_value_t = SortColumn::Total)]
    sort: SortColumn,
    /// Read plain log files instead of mapping them into memory (slower;
    /// for files that may be cut shorter while being read).
    #[arg(long)]
    no_mmap: bool,
}

#[derive(Args)]
struct ListArgs {
    #[command(flatten)]
    common: Common,
    /// Sort by this.
    #[arg(long, value_enum, default_value_t = ListSortArg::Wall)]
    sort: ListSortArg,
}

#[derive(Args)]
struct ShowArgs {
    /// The request's base_id.
    #[arg(value_parser = parse_id)]
    base_id: Id,
    /// Log files; `-` is stdin; gzip is recognized by content.
    #[cfg_attr(feature = "redis", arg(required_unless_present = "connection_string"))]
    #[cfg_attr(not(feature = "redis"), arg(required = true))]
    #[arg(value_name = "LOG")]
    logs: Vec<OsString>,
    /// Also read the request from osprofiler's Redis store (its one key),
    /// `redis://[:password@]host[:port][/db]`.
    #[cfg(feature = "redis")]
    #[arg(long, value_name = "URL")]
    connection_string: Option<String>,
    /// Rendering.
    #[arg(long, value_enum, default_value_t = ShowFormat::Tree)]
    format: ShowFormat,
    /// Same as `--format json` (osprofiler's JSON).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct HeadersArgs {
    /// The shared HMAC key (one of the service's hmac_keys).
    #[arg(long)]
    key: String,
    /// The request's base_id (default: a fresh one).
    #[arg(long, value_parser = parse_id)]
    base_id: Option<Id>,
    /// The parent point's trace_id (default: none).
    #[arg(long, value_parser = parse_id)]
    parent_id: Option<Id>,
    /// Sign with HMAC-SHA256 (only peers running this crate accept it).
    #[arg(long)]
    sha256: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutFormat {
    Text,
    Markdown,
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum SortColumn {
    Total,
    Max,
    Avg,
    Count,
    #[value(name = "self")]
    SelfTime,
    P50,
    P95,
    P99,
    Name,
}

#[derive(Clone, Copy, ValueEnum)]
enum ListSortArg {
    Wall,
    First,
    Points,
    Name,
}

#[derive(Clone, Copy, ValueEnum)]
enum ShowFormat {
    Tree,
    Json,
    Chrome,
    Svg,
    Html,
}

fn parse_id(s: &str) -> Result<Id, String> {
    Id::parse(s).map_err(|e| format!("not a UUID: {e}"))
}

fn parse_when(s: &str) -> Result<tracing_osprofiler::format::Timestamp, String> {
    parse_time(s).ok_or_else(|| "expected YYYY-MM-DD[THH:MM:SS[.ffffff]] (UTC)".to_string())
}

impl From<OutFormat> for Format {
    fn from(f: OutFormat) -> Self {
        match f {
            OutFormat::Text => Format::Text,
            OutFormat::Markdown => Format::Markdown,
            OutFormat::Csv => Format::Csv,
            OutFormat::Json => Format::Json,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(unix)]
    report_sigbus();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("osprof: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Turns a `SIGBUS`, which reading a mapped log raises when the file was
/// cut shorter meanwhile, into an error message and exit status 1 instead
/// of a crash.
#[cfg(unix)]
fn report_sigbus() {
    extern "C" fn on_sigbus(_: libc::c_int) {
        const MESSAGE: &[u8] = b"osprof: a log file was cut shorter while it was being read \
            (log rotation with copytruncate?); run again, or with --no-mmap\n";
        // SAFETY: write(2) and _exit(2) are async-signal-safe, and MESSAGE
        // is a valid buffer of that length.
        unsafe {
            libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
            libc::_exit(1);
        }
    }
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value;
    // the handler only calls async-signal-safe functions.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

/// Writes through `write` to `-o FILE` (created, written, flushed) or stdout.
fn emit(
    output: Option<&PathBuf>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), String> {
    match output {
        Some(path) => {
            let file =
                File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            let mut out = BufWriter::new(file);
            write(&mut out)
                .and_then(|()| out.flush())
                .and_then(|()| out.get_ref().sync_all())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            match write(&mut out).and_then(|()| out.flush()) {
                // `osprof rank ... | head` is not an error.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                r => r.map_err(|e| format!("cannot write to stdout: {e}")),
            }
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Rank(args) => {
            let c = &args.common;
            let inputs = c.inputs(None)?;
            let options = RankOptions::new()
                .with_mmap(!args.no_mmap)
                .with_self_time(args.self_time)
                .with_percentiles(args.percentiles)
                .with_sort(match args.sort {
                    SortColumn::Total => Column::Total,
                    SortColumn::Max => Column::Max,
                    SortColumn::Avg => Column::Avg,
                    SortColumn::Count => Column::Count,
                    SortColumn::SelfTime => Column::SelfTime,
                    SortColumn::P50 => Column::P50,
                    SortColumn::P95 => Column::P95,
                    SortColumn::P99 => Column::P99,
                    SortColumn::Name => Column::Name,
                })
                .with_reverse(c.reverse)
                .with_top(c.top)
                .with_filter(c.filter())
                .with_format(c.format.into());
            let report = rank(&inputs, &options).map_err(|e| e.to_string())?;
            emit(c.output.as_ref(), |out| report.write(out))?;
            if matches!(c.format, OutFormat::Text | OutFormat::Csv) {
                for note in report.notes() {
                    eprintln!("osprof: {note}");
                }
            }
            Ok(())
        }
        Command::List(args) => {
            let c = &args.common;
            let inputs = c.inputs(None)?;
            let options = ListOptions::new()
                .with_sort(match args.sort {
                    ListSortArg::Wall => ListSort::Wall,
                    ListSortArg::First => ListSort::First,
                    ListSortArg::Points => ListSort::Points,
                    ListSortArg::Name => ListSort::Name,
                })
                .with_reverse(c.reverse)
                .with_top(c.top)
                .with_filter(c.filter())
                .with_format(c.format.into());
            let report = list(&inputs, &options).map_err(|e| e.to_string())?;
            emit(c.output.as_ref(), |out| report.write(out))?;
            if matches!(c.format, OutFormat::Text | OutFormat::Csv) {
                for note in report.notes() {
                    eprintln!("osprof: {note}");
                }
            }
            Ok(())
        }
        Command::Show(args) => show(args),
        Command::Headers(args) => {
            let algorithm = if args.sha256 {
                HmacAlgorithm::Sha256
            } else {
                HmacAlgorithm::Sha1
            };
            if args.key.is_empty() {
                return Err("--key must not be empty".into());
            }
            let headers = sign(&args.key, args.base_id, args.parent_id, algorithm);
            emit(None, |out| writeln!(out, "{}", curl_args(&headers)))
        }
    }
}

fn show(args: ShowArgs) -> Result<(), String> {
    #[cfg(feature = "redis")]
    let store = args.connection_string.as_deref();
    #[cfg(not(feature = "redis"))]
    let store = None;
    let inputs = inputs(&args.logs, store, Some(args.base_id))?;
    let request = load_request(&inputs, args.base_id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no point of request {} in the logs", args.base_id))?;
    let tree = Tree::new(&request);
    let format = if args.json {
        ShowFormat::Json
    } else {
        args.format
    };
    emit(args.output.as_ref(), |out| match format {
        ShowFormat::Tree => show::write_text_tree(&tree, out),
        ShowFormat::Json => show::write_osprofiler_json(&tree, out),
        ShowFormat::Chrome => show::write_chrome_trace(&tree, out),
        ShowFormat::Svg => show::write_svg(&tree, out),
        ShowFormat::Html => show::write_html(&tree, out),
    })
}
