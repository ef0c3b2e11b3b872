//! What the example services share, so that `axum_service` and
//! `actix_service` take the same flags and set profiling up the same way:
//! their command line, the writer and subscriber, the keys and the tail
//! capture policy, and the work of `GET /` (`work.rs`). Only the
//! framework's own wiring stays in each example.

pub mod work;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tracing_osprofiler::writer::{ProfileWriter, RollingFile, WriterGuard};
use tracing_osprofiler::{Capture, CapturePolicy, HmacKeys, OsProfilerLayer};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

/// The command line of an example service (the table in each example's
/// module doc).
pub struct Args {
    /// `--listen`: the address the service binds.
    pub listen: SocketAddr,
    /// `--log-dir`: where its profile log is written.
    pub log_dir: PathBuf,
    hmac_keys: String,
    connection_strings: Vec<String>,
    project: Option<String>,
    service: Option<String>,
    /// `--downstream`: a URL `GET /` also calls, signed, if any.
    pub downstream: Option<String>,
    keep_slower_than: Option<Duration>,
    keep_errors: bool,
}

impl Args {
    /// The process's arguments; `--help` prints the usage of `program` and
    /// exits with success.
    pub fn parse(program: &str) -> Result<Args, String> {
        let mut args = Args {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            log_dir: PathBuf::from("osprofiler-logs"),
            hmac_keys: "SECRET_KEY".to_owned(),
            connection_strings: Vec::new(),
            project: None,
            service: None,
            downstream: None,
            keep_slower_than: None,
            keep_errors: false,
        };
        let mut iter = std::env::args().skip(1);
        while let Some(flag) = iter.next() {
            let mut value = || iter.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--listen" => {
                    args.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?;
                }
                "--log-dir" => args.log_dir = PathBuf::from(value()?),
                "--hmac-keys" => args.hmac_keys = value()?,
                "--connection-string" => args.connection_strings.push(value()?),
                "--project" => args.project = Some(value()?),
                "--service" => args.service = Some(value()?),
                "--downstream" => args.downstream = Some(value()?),
                "--keep-slower-than" => {
                    args.keep_slower_than = Some(
                        parse_duration(&value()?)
                            .map_err(|e| format!("--keep-slower-than: {e}"))?,
                    );
                }
                "--keep-errors" => args.keep_errors = true,
                "-h" | "--help" => {
                    // Asked for: the usage on stdout, and success.
                    println!(
                        "usage: {program} [--listen ADDR] [--log-dir DIR] [--hmac-keys K1,K2] \
                         [--connection-string URL]... [--project NAME] [--service NAME] \
                         [--downstream URL] [--keep-slower-than DURATION] [--keep-errors]"
                    );
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other:?} (try --help)")),
            }
        }
        Ok(args)
    }

    /// The keys a token may be signed with; none is an error.
    pub fn keys(&self) -> Result<HmacKeys, String> {
        let keys = HmacKeys::from_comma_separated(&self.hmac_keys);
        if keys.is_empty() {
            return Err("--hmac-keys: no key given".to_owned());
        }
        Ok(keys)
    }

    /// Builds the writer (the log directory and every connection string) and
    /// installs the subscriber: the profiling layer with fields, and warnings
    /// (the middleware's summary of refused tokens) on stderr. Keep the guard
    /// until the service stops: dropping it flushes the sinks.
    pub fn init_profiling(&self) -> Result<WriterGuard, Box<dyn std::error::Error>> {
        let mut builder = ProfileWriter::builder().with_file(RollingFile::new(&self.log_dir));
        for connection_string in &self.connection_strings {
            builder = builder.with_connection_string(connection_string)?;
        }
        if let Some(project) = &self.project {
            builder = builder.with_project(project);
        }
        if let Some(service) = &self.service {
            builder = builder.with_service(service);
        }
        let (writer, guard) = builder.build()?;
        tracing_subscriber::registry()
            // Fields on start lines: the root's method and path, `user = 42`.
            .with(OsProfilerLayer::new(writer).with_fields(true))
            // Colours only on a terminal: none in a file or a pipe.
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_filter(LevelFilter::WARN),
            )
            .init();
        Ok(guard)
    }

    /// Tail capture, when `--keep-slower-than` or `--keep-errors` asks for
    /// it: requests without a token are recorded in memory and written only
    /// when slow or failed (docs/configuration.md, "Tail capture").
    pub fn capture(&self) -> Option<Capture> {
        (self.keep_slower_than.is_some() || self.keep_errors).then(|| {
            CapturePolicy::new()
                .with_keep_slower_than(self.keep_slower_than)
                .with_keep_errors(self.keep_errors)
                .build()
        })
    }

    /// The line a service prints once it listens on `address`. Connection
    /// strings may hold passwords: only their number is printed.
    pub fn listening(&self, address: SocketAddr) -> String {
        format!(
            "listening on http://{address}/ ; profiled requests are logged in {}{}",
            self.log_dir.display(),
            match self.connection_strings.len() {
                0 => String::new(),
                n => format!(" and sent to {n} more sink(s)"),
            }
        )
    }
}

/// `150ms`, `2s`, `1.5s`, `500us`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?}: give a unit (ms, s, us)"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: not a number and a unit"))?;
    let seconds = match unit {
        "s" => number,
        "ms" => number / 1e3,
        "us" | "µs" => number / 1e6,
        _ => return Err(format!("{text:?}: the unit is one of s, ms, us")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}
