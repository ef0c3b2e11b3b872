//! `osprof`: reports on osprofiler / Mistral profiler logs.
//!
//! Argument parsing only: the command line becomes a [`Job`] in the
//! library's terms ([`Cli::into_job`]), and every report, every check and
//! every message behind it is a function of the `osprof` library, tested
//! there. Exit status 0 on success, 1 on a usage or I/O error (with an
//! `osprof: ...` message), 2 when clap rejects the arguments.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use osprof::headers::{note, sign, write_headers, HeadersFormat, Key, KEY_ENV};
use osprof::list::{list, List, ListOptions, ListSort};
use osprof::model::Tree;
use osprof::output::write_to;
use osprof::rank::{rank, Column, Rank, RankOptions};
use osprof::show::{find_request_noted, SelectError, Selector, ShowFormat, ShowOptions};
#[cfg(feature = "redis")]
use osprof::source::RedisSource;
use osprof::source::{Inputs, Source};
use osprof::{parse_time, show, Filter, Format, Pattern, Unit};
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

/// `--max-value-bytes` of `rank`, `list` or `show`, set once by `into_job`
/// for `inputs`.
#[cfg(feature = "redis")]
static MAX_VALUE_BYTES: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// `--store-timeout` of `rank`, `list` or `show`, set as `MAX_VALUE_BYTES` is.
#[cfg(feature = "redis")]
static STORE_TIMEOUT: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();

#[derive(Subcommand)]
enum Command {
    /// Time per trace name (Mistral's rank_profiled_methods.py report by default).
    Rank(RankArgs),
    /// One row per request (base_id), slowest first.
    List(ListArgs),
    /// One request as a tree, osprofiler JSON, Chrome trace, SVG or HTML.
    Show(ShowArgs),
    /// Prints the two signed headers that ask a service to profile one request
    /// (for curl, a shell or JSON) and the request's base_id.
    Headers(HeadersArgs),
}

/// How much of the Redis store `rank`, `list` and `show` take, and how
/// long they wait for it.
#[cfg(feature = "redis")]
#[derive(Args)]
struct StoreLimits {
    /// The longest value read from the Redis store, in bytes: a longer one
    /// is not kept, but named on stderr with its length and skipped.
    #[arg(long, value_name = "BYTES", default_value_t = RedisSource::DEFAULT_MAX_VALUE_BYTES)]
    max_value_bytes: u64,
    /// The longest the Redis store may take to answer one command (or
    /// pipeline) whole, and to connect: past it, osprof fails naming the
    /// store, however the answer trickles in.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    store_timeout: std::time::Duration,
}

#[cfg(feature = "redis")]
impl StoreLimits {
    /// Sets `MAX_VALUE_BYTES` and `STORE_TIMEOUT` for `inputs` (once: one
    /// command runs).
    fn set(&self) {
        let _ = (
            MAX_VALUE_BYTES.set(self.max_value_bytes),
            STORE_TIMEOUT.set(self.store_timeout),
        );
    }
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
    #[cfg(feature = "redis")]
    #[command(flatten)]
    store_limits: StoreLimits,
    /// Write the report to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
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
    /// Write durations in seconds (Mistral's layout), milliseconds or
    /// microseconds (text, Markdown, CSV; JSON is always in seconds).
    #[arg(long, value_enum, default_value_t = Unit::Seconds)]
    unit: Unit,
}

impl Common {
    /// The Redis store named, if any.
    fn store(&self) -> Option<String> {
        #[cfg(feature = "redis")]
        return self.connection_string.clone();
        #[cfg(not(feature = "redis"))]
        None
    }

    fn filter(&self) -> Filter {
        Filter::new()
            .with_base_ids(self.base_ids.clone())
            .with_name(self.name.as_deref().map(Pattern::new))
            .with_since(self.since)
            .with_until(self.until)
    }

    /// What to read and where to write, the store's limits set for
    /// `inputs`.
    fn into_reading(self) -> Reading {
        #[cfg(feature = "redis")]
        self.store_limits.set();
        Reading {
            store: self.store(),
            logs: self.logs,
            format: self.format,
            output: self.output,
        }
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
    /// Add the busy-time columns: total and average of the busy times the
    /// stop lines give, and how many points gave none (left out).
    #[arg(long)]
    busy: bool,
    /// Sort by this column (`busy` turns --busy on).
    #[arg(long, value_enum, default_value_t = Column::Total)]
    sort: Column,
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
    #[arg(long, value_enum, default_value_t = ListSort::Wall)]
    sort: ListSort,
    /// Read plain log files instead of mapping them into memory (slower;
    /// for files that may be cut shorter while being read).
    #[arg(long)]
    no_mmap: bool,
}

#[derive(Args)]
#[command(override_usage = "osprof show [OPTIONS] <BASE_ID> <LOG>...\n       \
    osprof show [OPTIONS] --latest|--slowest <LOG>...")]
struct ShowArgs {
    /// The request's base_id, or as many of its first characters as make it
    /// unique in the logs (`6f9e3c1a`), then the logs: files, `-` for stdin
    /// (a whole base_id only), gzip recognized by content. No BASE_ID with
    /// --latest or --slowest.
    #[cfg_attr(
        feature = "redis",
        arg(required_unless_present_any = ["connection_string", "latest", "slowest"])
    )]
    #[cfg_attr(not(feature = "redis"), arg(required = true))]
    #[arg(value_name = "BASE_ID> <LOG")]
    args: Vec<OsString>,
    /// Also read osprofiler's Redis store, `redis://[:password@]host[:port][/db]`
    /// (for a whole base_id, only that request's key).
    #[cfg(feature = "redis")]
    #[arg(long, value_name = "URL")]
    connection_string: Option<String>,
    #[cfg(feature = "redis")]
    #[command(flatten)]
    store_limits: StoreLimits,
    /// Show the request that began last.
    #[arg(long, conflicts_with = "slowest")]
    latest: bool,
    /// Show the request with the longest wall time.
    #[arg(long)]
    slowest: bool,
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
#[command(
    after_help = "The key, one of the service's hmac_keys, comes from exactly one of: \
    --key-file FILE, the environment variable OSPROFILER_HMAC_KEY, or --key KEY (discouraged). \
    Surrounding whitespace is not part of it; a blank key is refused."
)]
struct HeadersArgs {
    /// Read the HMAC key from the first line of FILE (`-`: stdin).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// The HMAC key itself. Discouraged: every local user sees it in the
    /// process list, and it stays in the shell's history; use --key-file or
    /// OSPROFILER_HMAC_KEY.
    #[arg(long, value_name = "KEY", conflicts_with = "key_file")]
    key: Option<String>,
    /// The request's base_id (default: a fresh one).
    #[arg(long, value_parser = parse_id)]
    base_id: Option<Id>,
    /// The parent point's trace_id (default: none).
    #[arg(long, value_parser = parse_id)]
    parent_id: Option<Id>,
    /// Sign with HMAC-SHA256 (only peers running this crate accept it).
    #[arg(long)]
    sha256: bool,
    /// What to print.
    #[arg(long, value_enum, default_value_t = HeadersFormat::Curl)]
    format: HeadersFormat,
}

fn parse_id(s: &str) -> Result<Id, String> {
    Id::parse(s).map_err(|e| format!("not a UUID: {e}"))
}

/// Seconds, a fraction allowed (`0.5`): more than 0, at most a day.
#[cfg(feature = "redis")]
fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 86_400.0 => Ok(std::time::Duration::from_secs_f64(secs)),
        _ => Err("expected seconds, more than 0 and at most 86400 (e.g. 10 or 0.5)".to_string()),
    }
}

fn parse_when(s: &str) -> Result<tracing_osprofiler::format::Timestamp, String> {
    parse_time(s).ok_or_else(|| "expected YYYY-MM-DD[THH:MM:SS[.ffffff]] (UTC)".to_string())
}

/// What a table report (`rank`, `list`) reads and where it goes.
struct Reading {
    logs: Vec<OsString>,
    store: Option<String>,
    format: Format,
    output: Option<PathBuf>,
}

impl Reading {
    /// The inputs read into a report by `make`, checked (`check_files`,
    /// with the report's `unreadable` lines), written by `write`, and the
    /// `notes` its format leaves out said on stderr.
    fn report<R>(
        self,
        make: impl FnOnce(&Inputs) -> Result<R, osprof::Error>,
        unreadable: impl FnOnce(&R) -> &osprof::Unreadable,
        write: impl FnOnce(&R, &mut dyn Write) -> io::Result<()>,
        notes: impl FnOnce(&R) -> Vec<String>,
    ) -> Result<(), String> {
        let inputs = inputs(&self.logs, self.store.as_deref(), None)?;
        let report = make(&inputs).map_err(|e| e.to_string())?;
        check_files(&inputs, unreadable(&report))?;
        emit(self.output.as_ref(), |out| write(&report, out))?;
        print_notes(self.format, notes(&report));
        Ok(())
    }
}

/// What the command line asks for, in the library's terms.
enum Job {
    Rank {
        reading: Reading,
        options: RankOptions,
    },
    List {
        reading: Reading,
        options: ListOptions,
    },
    Show {
        selector: Selector,
        logs: Vec<OsString>,
        store: Option<String>,
        options: ShowOptions,
        output: Option<PathBuf>,
    },
    Headers {
        key: Option<String>,
        key_file: Option<PathBuf>,
        base_id: Option<Id>,
        parent_id: Option<Id>,
        algorithm: HmacAlgorithm,
        format: HeadersFormat,
    },
}

impl Cli {
    /// The parsed arguments as library options; nothing is read yet.
    ///
    /// # Errors
    ///
    /// What clap could not check alone: a `show` without logs, or whose
    /// BASE_ID is no id.
    fn into_job(self) -> Result<Job, clap::Error> {
        Ok(match self.command {
            Command::Rank(args) => {
                let c = args.common;
                Job::Rank {
                    options: RankOptions::new()
                        .with_mmap(!args.no_mmap)
                        .with_self_time(args.self_time)
                        .with_percentiles(args.percentiles)
                        .with_busy(args.busy || args.sort == Column::Busy)
                        .with_sort(args.sort)
                        .with_reverse(c.reverse)
                        .with_top(c.top)
                        .with_filter(c.filter())
                        .with_format(c.format)
                        .with_unit(c.unit),
                    reading: c.into_reading(),
                }
            }
            Command::List(args) => {
                let c = args.common;
                Job::List {
                    options: ListOptions::new()
                        .with_mmap(!args.no_mmap)
                        .with_sort(args.sort)
                        .with_reverse(c.reverse)
                        .with_top(c.top)
                        .with_filter(c.filter())
                        .with_format(c.format)
                        .with_unit(c.unit),
                    reading: c.into_reading(),
                }
            }
            Command::Show(args) => {
                #[cfg(feature = "redis")]
                let store = args.connection_string;
                #[cfg(feature = "redis")]
                args.store_limits.set();
                #[cfg(not(feature = "redis"))]
                let store: Option<String> = None;
                let mut logs = args.args;
                let selector = if args.latest {
                    Selector::Latest
                } else if args.slowest {
                    Selector::Slowest
                } else if logs.is_empty() {
                    // Not reached: clap requires one argument at least.
                    return Err(show_error(
                        clap::error::ErrorKind::MissingRequiredArgument,
                        "osprof show needs a BASE_ID and the logs",
                    ));
                } else {
                    let id = logs.remove(0);
                    Selector::parse(&id.to_string_lossy())
                        .map_err(|e| show_error(clap::error::ErrorKind::ValueValidation, e))?
                };
                if logs.is_empty() && store.is_none() {
                    return Err(show_error(
                        clap::error::ErrorKind::MissingRequiredArgument,
                        "osprof show needs the logs after the BASE_ID",
                    ));
                }
                Job::Show {
                    selector,
                    logs,
                    store,
                    options: ShowOptions::new().with_format(if args.json {
                        ShowFormat::Json
                    } else {
                        args.format
                    }),
                    output: args.output,
                }
            }
            Command::Headers(args) => Job::Headers {
                key: args.key,
                key_file: args.key_file,
                format: args.format,
                base_id: args.base_id,
                parent_id: args.parent_id,
                algorithm: if args.sha256 {
                    HmacAlgorithm::Sha256
                } else {
                    HmacAlgorithm::Sha1
                },
            },
        })
    }
}

/// A usage error of `osprof show`, as clap reports its own (exit status 2).
fn show_error(kind: clap::error::ErrorKind, message: impl std::fmt::Display) -> clap::Error {
    let mut cli = Cli::command();
    cli.build();
    match cli.find_subcommand_mut("show") {
        Some(show) => show.error(kind, message),
        None => cli.error(kind, message),
    }
}

fn main() -> ExitCode {
    let job = Cli::parse().into_job().unwrap_or_else(|e| e.exit());
    #[cfg(unix)]
    report_sigbus();
    match run(job) {
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

/// Writes the report to `-o FILE` or stdout (`osprof::output`).
fn emit(
    output: Option<&PathBuf>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), String> {
    write_to(output.map(PathBuf::as_path), write).map_err(|e| e.to_string())
}

/// Notes a report leaves out of its text or CSV, on stderr.
fn print_notes(format: Format, notes: Vec<String>) {
    if !format.holds_notes() {
        for note in notes {
            eprintln!("osprof: {note}");
        }
    }
}

/// The logs named, and the Redis store (all of it, or one request's key).
fn inputs(logs: &[OsString], store: Option<&str>, request: Option<Id>) -> Result<Inputs, String> {
    // Only a store is pushed to it.
    #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
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
        let mut redis = RedisSource::new(connection_string)
            .map_err(|e| e.to_string())?
            .with_max_value_bytes(
                MAX_VALUE_BYTES
                    .get()
                    .copied()
                    .unwrap_or(RedisSource::DEFAULT_MAX_VALUE_BYTES),
            )
            .with_timeout(
                STORE_TIMEOUT
                    .get()
                    .copied()
                    .unwrap_or(RedisSource::DEFAULT_TIMEOUT),
            );
        if let Some(base_id) = request {
            redis = redis.with_request(base_id);
        }
        sources.push(Source::Redis(redis));
    }
    #[cfg(not(feature = "redis"))]
    let _ = (store, request);
    Inputs::new(sources).map_err(|e| e.to_string())
}

/// A file or standard input in which no line is a trace point, or a store
/// without an event, was named by mistake: an error, not an empty report.
/// Files are read again only when some line was unreadable (a log or stdin
/// without one cannot be foreign), so a clean log costs nothing more; a
/// store (and stdin) is judged by what the report read of it, at no cost.
/// A mixed log still reports, its unreadable lines counted in the notes.
fn check_files(inputs: &Inputs, unreadable: &osprof::Unreadable) -> Result<(), String> {
    note_empty_stdin(inputs);
    #[cfg(feature = "redis")]
    let store = inputs
        .sources()
        .iter()
        .any(|s| matches!(s, Source::Redis(_)));
    #[cfg(not(feature = "redis"))]
    let store = false;
    if unreadable.count == 0 {
        if store {
            return osprof::check_streams(inputs).map_err(|e| e.to_string());
        }
        return Ok(());
    }
    osprof::check_logs(inputs).map_err(|e| e.to_string())
}

/// An empty standard input reports as an empty file does (nothing, exit
/// 0), but is said on stderr: on a pipe it usually means the command
/// before failed.
fn note_empty_stdin(inputs: &Inputs) {
    if osprof::stdin_was_empty(inputs) {
        eprintln!("osprof: standard input was empty: no line was read from it");
    }
}

fn run(job: Job) -> Result<(), String> {
    match job {
        Job::Rank { reading, options } => reading.report(
            |inputs| rank(inputs, &options),
            |report| &report.unreadable,
            Rank::write,
            Rank::notes,
        ),
        Job::List { reading, options } => reading.report(
            |inputs| list(inputs, &options),
            |report| &report.unreadable,
            List::write,
            List::notes,
        ),
        Job::Show {
            selector,
            logs,
            store,
            options,
            output,
        } => {
            // A whole base_id reads one key of the store; anything else
            // walks it.
            let request = match &selector {
                Selector::Id(id) => Some(*id),
                _ => None,
            };
            let inputs = inputs(&logs, store.as_deref(), request)?;
            let found = match find_request_noted(&inputs, &selector) {
                Ok(found) => found,
                // A file that is no profiler log is the likeliest cause.
                Err(e @ SelectError::NotFound(_)) => {
                    note_empty_stdin(&inputs);
                    osprof::check_logs(&inputs).map_err(|e| e.to_string())?;
                    return Err(e.to_string());
                }
                Err(e) => return Err(e.to_string()),
            };
            if let Some(note) = &found.note {
                // --latest and --slowest pick one request among many: say which.
                eprintln!("osprof: {note}");
            }
            let request = found.request;
            let tree = Tree::new(&request);
            let options = options
                .with_log_names(inputs.sources().iter().map(ToString::to_string))
                .with_kept(found.kept);
            emit(output.as_ref(), |out| show::write(&tree, &options, out))
        }
        Job::Headers {
            key,
            key_file,
            base_id,
            parent_id,
            algorithm,
            format,
        } => {
            let key = Key::from_sources(key, key_file.as_deref(), std::env::var_os(KEY_ENV))
                .map_err(|e| e.to_string())?;
            let signed = sign(&key, base_id, parent_id, algorithm);
            emit(None, |out| write_headers(&signed, format, out))?;
            if let Some(note) = note(&signed, format) {
                eprintln!("osprof: {note}");
            }
            Ok(())
        }
    }
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::*;

    /// `--store-timeout`'s default is a string for clap: it must stay the
    /// library's `DEFAULT_TIMEOUT`.
    #[test]
    fn store_timeout_default_is_the_librarys() {
        #[derive(Parser)]
        struct Limits {
            #[command(flatten)]
            limits: StoreLimits,
        }
        let parsed = Limits::try_parse_from(["osprof"]).unwrap();
        assert_eq!(parsed.limits.store_timeout, RedisSource::DEFAULT_TIMEOUT);
        assert_eq!(
            parsed.limits.max_value_bytes,
            RedisSource::DEFAULT_MAX_VALUE_BYTES
        );
    }
}
