//! Which request `osprof show` renders: a whole `base_id`, the first
//! characters of one (as many as make it unique in the logs), or the
//! request that began last or took longest. All but a whole id need the
//! list of requests first ([`crate::list::list`]), so the logs are
//! read twice: they must be files, not stdin.

use std::fmt;

use tracing_osprofiler::Id;

use crate::list::{list, ListOptions, ListSort, RequestRow};
use crate::model::{load_request, Request};
use crate::render::escape::text;
use crate::source::{Inputs, Source};

/// How many requests an ambiguous prefix's error names.
const CANDIDATES_SHOWN: usize = 10;

/// Why a request a user just sent may be in no log, most likely first: what
/// a newcomer checks when `show` finds nothing.
const LIKELY_CAUSES: &str = "Likely causes: the request was not profiled (its token \
    was signed with a key that is not among the service's hmac_keys, and the service warns \
    `profile tokens refused ... bad_signature=1`; or a level filter on the whole subscriber \
    switches profiling off); it was not kept (tail capture keeps only slow or failed \
    requests); its lines are in another log (another hour's osprofiler.YYYY-MM-DD-HH.log, \
    another service's log directory, another sink); or it is still being served and its \
    lines not yet written. `osprof list LOG...` lists the requests the logs hold";

/// Which request to show.
///
/// ```
/// use osprof::show::Selector;
///
/// assert!(matches!(Selector::parse("6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b"), Ok(Selector::Id(_))));
/// assert_eq!(Selector::parse("6F9E-3c1a").unwrap(), Selector::Prefix("6f9e3c1a".into()));
/// assert!(Selector::parse("not-an-id").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selector {
    /// This `base_id`.
    Id(Id),
    /// The one request whose `base_id` starts with these hex digits
    /// (lower case, without dashes).
    Prefix(String),
    /// The request that began last (the latest first timestamp).
    Latest,
    /// The request with the longest wall time.
    Slowest,
}

impl Selector {
    /// A `base_id` as given on a command line: a whole id in any form
    /// [`Id::parse`] reads, or the start of one: hex digits, dashes
    /// anywhere (they are ignored), any case.
    ///
    /// # Errors
    ///
    /// [`SelectError::NotAnId`] for anything else, or an empty prefix.
    pub fn parse(text: &str) -> Result<Selector, SelectError> {
        if let Ok(id) = Id::parse(text) {
            return Ok(Selector::Id(id));
        }
        let digits: String = text
            .chars()
            .filter(|&c| c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if digits.is_empty() || digits.len() > 32 || !digits.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(SelectError::NotAnId(text.to_owned()));
        }
        Ok(Selector::Prefix(digits))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Id(id) => write!(f, "request {id}"),
            Selector::Prefix(p) => write!(f, "request whose base_id starts with {p}"),
            Selector::Latest => f.write_str("latest request"),
            Selector::Slowest => f.write_str("slowest request"),
        }
    }
}

/// Why no request could be shown.
#[derive(Debug)]
#[non_exhaustive]
pub enum SelectError {
    /// Neither a `base_id` nor the start of one.
    NotAnId(String),
    /// No request in the logs is the one asked for.
    NotFound(Selector),
    /// Several requests' `base_id`s start with the prefix: the first ones,
    /// earliest first, and how many more.
    Ambiguous {
        /// The prefix, as in [`Selector::Prefix`].
        prefix: String,
        /// Up to ten of them.
        candidates: Vec<RequestRow>,
        /// How many others.
        more: usize,
    },
    /// The logs would have to be read twice, and one of them is stdin.
    Stdin(Selector),
    /// A log could not be read.
    Read(crate::Error),
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::NotAnId(text) => write!(
                f,
                "{} is not a base_id nor the start of one (hex digits)",
                crate::render::escape::text(text)
            ),
            SelectError::NotFound(Selector::Id(id)) => {
                write!(f, "no point of request {id} in the logs. {LIKELY_CAUSES}")
            }
            SelectError::NotFound(Selector::Prefix(p)) => write!(
                f,
                "no request in the logs has a base_id starting with {p}. {LIKELY_CAUSES}"
            ),
            SelectError::NotFound(_) => write!(f, "no request in the logs. {LIKELY_CAUSES}"),
            SelectError::Ambiguous {
                prefix,
                candidates,
                more,
            } => {
                let count = candidates.len() + more;
                write!(
                    f,
                    "{count} requests have a base_id starting with {prefix}; give more of it:"
                )?;
                for r in candidates {
                    write!(
                        f,
                        "\n  {}  {}  {:>10.3} s  {}",
                        r.base_id,
                        r.first,
                        r.wall,
                        text(&r.root)
                    )?;
                }
                if *more > 0 {
                    write!(f, "\n  and {more} more")?;
                }
                Ok(())
            }
            SelectError::Stdin(selector) => write!(
                f,
                "finding the {selector} reads the logs twice: give files, not - (stdin), \
                 or the whole base_id"
            ),
            SelectError::Read(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SelectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SelectError::Read(e) => Some(e),
            _ => None,
        }
    }
}

impl From<crate::Error> for SelectError {
    fn from(e: crate::Error) -> Self {
        SelectError::Read(e)
    }
}

/// The `base_id` of the request `selector` names in `inputs`.
///
/// # Errors
///
/// [`SelectError::NotFound`] when there is none, [`SelectError::Ambiguous`]
/// when a prefix fits several, [`SelectError::Stdin`] when the logs would
/// have to be read twice and one is stdin, [`SelectError::Read`] when a log
/// cannot be read.
pub fn select(inputs: &Inputs, selector: &Selector) -> Result<Id, SelectError> {
    select_row(inputs, selector).map(|(id, _)| id)
}

/// [`select`], with the row of the request picked and how many requests
/// the logs hold (`None` for a whole `base_id`, which needs no list).
fn select_row(
    inputs: &Inputs,
    selector: &Selector,
) -> Result<(Id, Option<(RequestRow, usize)>), SelectError> {
    if let Selector::Id(id) = selector {
        return Ok((*id, None));
    }
    if inputs.sources().iter().any(|s| matches!(s, Source::Stdin)) {
        return Err(SelectError::Stdin(selector.clone()));
    }
    let options = match selector {
        Selector::Latest => ListOptions::new()
            .with_sort(ListSort::First)
            .with_reverse(true),
        Selector::Slowest => ListOptions::new().with_sort(ListSort::Wall),
        // Earliest first, for the list of candidates.
        _ => ListOptions::new().with_sort(ListSort::First),
    };
    let requests = list(inputs, &options.with_mmap(true))?.requests;
    let total = requests.len();
    let mut found: Vec<RequestRow> = match selector {
        Selector::Prefix(prefix) => requests
            .into_iter()
            .filter(|r| {
                r.base_id
                    .as_uuid()
                    .simple()
                    .to_string()
                    .starts_with(prefix.as_str())
            })
            .collect(),
        _ => requests.into_iter().take(1).collect(),
    };
    match (found.len(), selector) {
        (0, _) => Err(SelectError::NotFound(selector.clone())),
        (n, Selector::Prefix(prefix)) if n > 1 => Err(SelectError::Ambiguous {
            prefix: prefix.clone(),
            more: n.saturating_sub(CANDIDATES_SHOWN),
            candidates: found.into_iter().take(CANDIDATES_SHOWN).collect(),
        }),
        (_, _) => {
            let row = found.swap_remove(0);
            Ok((row.base_id, Some((row, total))))
        }
    }
}

/// The request found, and which one it is, in a sentence for stderr.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Found {
    /// Its points, from every log.
    pub request: Request,
    /// Which request `--latest`, `--slowest` or a prefix picked, among how
    /// many (`showing the latest of 3 requests: 6f9e... (began ..., 0.012345 s,
    /// root wsgi)`); `None` for a whole `base_id`, which picks nothing.
    pub note: Option<String>,
    /// Why tail capture kept the request (`slow` or `error`), when its
    /// root's start line says so; `None` for a request its caller signed.
    pub kept: Option<&'static str>,
}

/// [`find_request`], and a note saying which request was picked, so that a
/// user who asked for the latest request sees which one that is.
///
/// # Errors
///
/// Those of [`find_request`].
pub fn find_request_noted(inputs: &Inputs, selector: &Selector) -> Result<Found, SelectError> {
    let (id, row) = select_row(inputs, selector)?;
    let (request, kept) = crate::model::load_request_kept(inputs, id)?
        .ok_or(SelectError::NotFound(Selector::Id(id)))?;
    let note = row.map(|(row, total)| {
        let which = match selector {
            Selector::Latest => format!(
                "the latest of {total} request{}",
                if total == 1 { "" } else { "s" }
            ),
            Selector::Slowest => format!(
                "the slowest of {total} request{}",
                if total == 1 { "" } else { "s" }
            ),
            Selector::Prefix(p) => format!("the request whose base_id starts with {p}"),
            Selector::Id(_) => "the request".to_owned(),
        };
        format!(
            "showing {which}: {} (began {}, {:.6} s, root {})",
            row.base_id,
            row.first,
            row.wall,
            text(&row.root)
        )
    });
    Ok(Found {
        request,
        note,
        kept,
    })
}

/// The points of the request `selector` names, from every log: [`select`],
/// then [`load_request`].
///
/// # Errors
///
/// Those of [`select`], and [`SelectError::NotFound`] when no line of a
/// whole `base_id` is in the logs.
pub fn find_request(inputs: &Inputs, selector: &Selector) -> Result<Request, SelectError> {
    let id = select(inputs, selector)?;
    load_request(inputs, id)?.ok_or(SelectError::NotFound(Selector::Id(id)))
}
