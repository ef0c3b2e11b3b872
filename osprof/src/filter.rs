//! Which lines a report looks at: by request, by trace name (a `*`/`?`
//! [`Pattern`]) and by time, the time as given on a command line
//! ([`parse_time`]).

use tracing_osprofiler::format::{Line, Timestamp};
use tracing_osprofiler::Id;

/// A `*`/`?` wildcard pattern over trace names (`engine-*`); without a
/// wildcard it must match the whole name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(Vec<char>);

impl Pattern {
    /// A pattern from its text.
    #[must_use]
    pub fn new(pattern: &str) -> Self {
        Pattern(pattern.chars().collect())
    }

    /// Whether `name` matches.
    ///
    /// ```
    /// use osprof::Pattern;
    /// assert!(Pattern::new("engine-*-complete").matches("engine-on-action-complete"));
    /// assert!(!Pattern::new("engine").matches("engine-start"));
    /// ```
    #[must_use]
    pub fn matches(&self, name: &str) -> bool {
        // Iterative glob with one backtrack point: linear in practice, never
        // exponential.
        let p = &self.0;
        let n: Vec<char> = name.chars().collect();
        let (mut pi, mut ni) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ni < n.len() {
            if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
                pi += 1;
                ni += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some((pi, ni));
                pi += 1;
            } else if let Some((sp, sn)) = star {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
}

/// Which lines a report looks at. The default keeps everything.
///
/// | setting | default | keeps |
/// |---|---|---|
/// | `base_ids` | empty: all | lines of these requests |
/// | `name` | none: all | lines whose trace name matches |
/// | `since` | none | lines at or after this time |
/// | `until` | none | lines before this time |
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Filter {
    pub(crate) base_ids: Vec<Id>,
    pub(crate) name: Option<Pattern>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
}

impl Filter {
    /// Keeps everything.
    #[must_use]
    pub fn new() -> Self {
        Filter::default()
    }

    /// Keeps only these requests (all when empty).
    #[must_use]
    pub fn with_base_ids(mut self, ids: Vec<Id>) -> Self {
        self.base_ids = ids;
        self
    }

    /// Keeps only names matching `pattern`.
    #[must_use]
    pub fn with_name(mut self, pattern: Option<Pattern>) -> Self {
        self.name = pattern;
        self
    }

    /// Keeps only lines at or after `since`.
    #[must_use]
    pub fn with_since(mut self, since: Option<Timestamp>) -> Self {
        self.since = since;
        self
    }

    /// Keeps only lines before `until`.
    #[must_use]
    pub fn with_until(mut self, until: Option<Timestamp>) -> Self {
        self.until = until;
        self
    }

    /// Whether this filter keeps every line (the default).
    #[inline]
    pub(crate) fn keeps_everything(&self) -> bool {
        self.base_ids.is_empty()
            && self.name.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    pub(crate) fn keeps_base(&self, base_id: Id) -> bool {
        self.base_ids.is_empty() || self.base_ids.contains(&base_id)
    }

    pub(crate) fn keeps_time(&self, t: Timestamp) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }

    pub(crate) fn keeps_name(&self, name: &str) -> bool {
        self.name.as_ref().is_none_or(|p| p.matches(name))
    }

    pub(crate) fn keeps(&self, line: &Line<'_>) -> bool {
        self.keeps_base(line.ids.base_id)
            && self.keeps_time(line.timestamp)
            && self.keeps_name(&line.name)
    }
}

/// Reads a time given on a command line: `YYYY-MM-DDTHH:MM:SS[.ffffff]`
/// (UTC; a space may replace the `T`, a trailing `Z` is allowed), or a
/// date alone (`YYYY-MM-DD`, midnight).
///
/// ```
/// use osprof::parse_time;
/// let t = parse_time("2020-02-27T08:04:25.5").unwrap();
/// assert_eq!(t.to_string(), "2020-02-27T08:04:25.500000");
/// assert_eq!(parse_time("2020-02-27").unwrap().to_string(), "2020-02-27T00:00:00.000000");
/// assert!(parse_time("yesterday").is_none());
/// ```
#[must_use]
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((d, t)) => (d, t),
        None => (text, "00:00:00"),
    };
    let mut d = date.splitn(3, '-').map(|p| p.parse::<u32>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<u8>().ok());
    let (h, m, s) = (t.next()??, t.next()??, t.next().unwrap_or(Some(0))?);
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros = format!("{frac:0<6}").parse::<u32>().ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(year).ok()?,
        time::Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let dt = date.with_hms_micro(h, m, s, micros).ok()?.assume_utc();
    Some(Timestamp::from(dt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        for (p, n, m) in [
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("?x", "yx", true),
            ("db-*", "db-query", true),
            ("*-stop", "a-stop-x", false),
        ] {
            assert_eq!(Pattern::new(p).matches(n), m, "{p} {n}");
        }
    }

    #[test]
    fn times() {
        assert!(parse_time("2020-02-30").is_none());
        assert!(parse_time("2020-02-27T25:00:00").is_none());
        assert!(parse_time("2020-02-27T08:04:25.1234567").is_none());
        assert_eq!(
            parse_time("2020-02-27 08:04").unwrap().to_string(),
            "2020-02-27T08:04:00.000000"
        );
    }
}
