//! Which destinations an outgoing call may carry a signed token to.
//!
//! This module owns the destination policy, [`Destinations`] (the risk, the
//! default and why are in its docs), and the view of one call's destination
//! it decides on, [`Destination`]. The policy only decides whether the token
//! headers are added; the call itself is always made.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// Where one outgoing call goes: its scheme, host and port, as the URL says
/// (no DNS lookup). What a [`Destinations`] policy decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<u16>,
}

impl<'a> Destination<'a> {
    /// A destination from its parts. `host` may be an IPv6 address in
    /// brackets, as URLs write it; `port` is the explicit port, or `None` for
    /// the scheme's default (80 for `http`, 443 for `https`).
    #[must_use]
    pub fn new(scheme: &'a str, host: &'a str, port: Option<u16>) -> Self {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let default_port =
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws") {
                Some(80)
            } else if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
                Some(443)
            } else {
                None
            };
        let port = port.or(default_port);
        Destination { scheme, host, port }
    }

    /// The destination of an absolute [`http::Uri`], `None` if it has no
    /// host (a relative URI).
    #[cfg(feature = "tower")]
    #[must_use]
    pub fn from_uri(uri: &'a http::Uri) -> Option<Self> {
        Some(Destination::new(
            uri.scheme_str().unwrap_or(""),
            uri.host()?,
            uri.port_u16(),
        ))
    }

    /// The URL scheme (`http`, `https`, …), empty if the URI has none.
    #[must_use]
    pub const fn scheme(&self) -> &'a str {
        self.scheme
    }

    /// The host as written in the URL, without the brackets of an IPv6
    /// address.
    #[must_use]
    pub const fn host(&self) -> &'a str {
        self.host
    }

    /// The port: the URL's, or else the scheme's default; `None` for an
    /// unknown scheme without a port.
    #[must_use]
    pub const fn port(&self) -> Option<u16> {
        self.port
    }

    /// The host as an IP address, if it is one: as the URL standard reads
    /// it, so `10.1`, `0x7f.0.0.1` and `3405803781` are IPv4 addresses
    /// (resolvers read them so too), as in a parsed `reqwest::Url`.
    #[must_use]
    pub fn ip(&self) -> Option<IpAddr> {
        match self.host.parse() {
            Ok(ip) => Some(ip),
            Err(_) => whatwg_ipv4(self.host).flatten().map(IpAddr::V4),
        }
    }

    /// The host name without the trailing dot of an absolute name, `None` if
    /// the host is an IP address, ends in a number without being one
    /// (`1.2.3.4.5`), or is not a host name at all (`fe80::1%25eth0`, a
    /// percent-encoded name): such a host matches no name rule.
    fn name(&self) -> Option<&'a str> {
        if self.host.parse::<IpAddr>().is_ok() || whatwg_ipv4(self.host).is_some() {
            return None;
        }
        let name = self.host.strip_suffix('.').unwrap_or(self.host);
        let label = |label: &str| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        name.split('.').all(label).then_some(name)
    }

    /// Whether the host is written as an absolute name (a trailing dot).
    fn absolute(&self) -> bool {
        self.host.ends_with('.')
    }
}

/// The host read as an IPv4 address by the URL standard's IPv4 parser:
/// `None` if it does not end in a number (a name), `Some(None)` if it ends
/// in a number but is no address (a URL parser rejects it), else the
/// address. `1` to `4` parts, each decimal, `0x` hex or `0` octal.
fn whatwg_ipv4(host: &str) -> Option<Option<std::net::Ipv4Addr>> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let parts: Vec<&str> = host.split('.').collect();
    let last = parts.last()?;
    let hex = |part: &str| {
        part.strip_prefix("0x")
            .or_else(|| part.strip_prefix("0X"))
            .map(str::to_owned)
    };
    let ends_in_number = !last.is_empty()
        && (last.bytes().all(|b| b.is_ascii_digit())
            || hex(last).is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit())));
    if !ends_in_number {
        return None;
    }
    let number = |part: &str| -> Option<u64> {
        if part.is_empty() {
            return None;
        }
        let (digits, radix) = match hex(part) {
            Some(digits) => (digits, 16),
            None if part.len() > 1 && part.starts_with('0') => (part[1..].to_owned(), 8),
            None => (part.to_owned(), 10),
        };
        if digits.is_empty() {
            return Some(0);
        }
        // Longer than any address: no need to read further.
        if digits.len() > 12 {
            return Some(u64::MAX);
        }
        u64::from_str_radix(&digits, radix).ok()
    };
    let numbers: Option<Vec<u64>> = parts.iter().map(|part| number(part)).collect();
    let Some(numbers) = numbers else {
        return Some(None);
    };
    if numbers.len() > 4 {
        return Some(None);
    }
    let (last, first) = numbers.split_last()?;
    if first.iter().any(|&n| n > 255) {
        return Some(None);
    }
    let limit = 1u64 << (8 * (5 - numbers.len()));
    if *last >= limit {
        return Some(None);
    }
    let mut address = *last;
    for (i, &n) in first.iter().enumerate() {
        address += n << (8 * (3 - i));
    }
    Some(u32::try_from(address).ok().map(std::net::Ipv4Addr::from))
}

/// A destination policy: which outgoing calls may carry a signed token.
///
/// A token signed for a call verifies on every service that shares the key
/// and never expires, so a call to a third party (a partner API, a webhook,
/// an object store) must not carry one: whoever receives it could have any
/// request of the fleet profiled, forever. A call the policy does not allow
/// is still made, without the token headers.
///
/// | policy | signs calls to |
/// |---|---|
/// | [`internal`](Self::internal) (default) | loopback and private IPs, `localhost`, names without a dot, `*.internal`, `*.local`, `*.home.arpa` |
/// | [`hosts`](Self::hosts) | the listed hosts, each with any port or one port; `*.example.com` for every name under `example.com` |
/// | [`predicate`](Self::predicate) | destinations a closure accepts |
/// | [`any`](Self::any) | everything (osprofiler's behaviour: only for a fleet that reaches nothing else) |
/// | [`none`](Self::none) | nothing (a service at the edge of the fleet) |
/// | `a.or(b)` | what `a` or `b` signs |
///
/// ```
/// use tracing_osprofiler::http::{Destination, Destinations};
///
/// let policy = Destinations::internal().or(Destinations::hosts(["api.example.com:8443"])?);
/// let allows = |host, port| policy.allows(&Destination::new("https", host, port));
/// assert!(allows("10.0.0.5", None));
/// assert!(allows("keystone", Some(5000)));
/// assert!(allows("API.example.com", Some(8443)));
/// assert!(!allows("api.example.com", None), "another port");
/// assert!(!allows("hooks.partner.example", None));
/// # Ok::<(), tracing_osprofiler::http::InvalidHostError>(())
/// ```
///
/// # The default
///
/// [`Destinations::internal`] signs calls to addresses that cannot leave the
/// site and to names that only a local resolver answers:
///
/// | destination | signed by default | why |
/// |---|---|---|
/// | loopback IP (`127.0.0.0/8`, `::1`) | yes | this machine |
/// | private IP (`10/8`, `172.16/12`, `192.168/16`, IPv6 `fc00::/7`) | yes | RFC 1918 / RFC 4193: not routed on the internet |
/// | `localhost`, `*.localhost` | yes | RFC 6761: always this machine |
/// | a name without a dot (`keystone`, `nova-api`) | yes | only search domains, `/etc/hosts` or a cluster DNS resolve it: a container, compose or Kubernetes service name |
/// | `*.internal`, `*.local`, `*.home.arpa` | yes | names reserved for private networks (ICANN `.internal`, mDNS and `cluster.local`, RFC 8375) |
/// | an all-digit or `0x…` name without a dot | no | resolvers read it as an IPv4 address (`3405803781` is `203.0.113.5`) |
/// | IPv4 in numeric forms (`10.1`, `0x7f.1`, `0177.0.0.1`) | as the address it is | URL parsers and resolvers read them as addresses |
/// | an absolute name of one label (`ai.`, `com.`, `keystone.`), except `localhost.` | no | a top-level domain: public DNS answers it |
/// | cloud metadata services: `metadata.google.internal`, `metadata`, `instance-data`, `instance-data.ec2.internal`, `fd00:ec2::254`, `fd20:ce::254` | no | the service hands out the instance's credentials; these names and addresses would otherwise pass as internal |
/// | a host that is neither an IP address nor a host name (an IPv6 zone `[fe80::1%25eth0]`, a percent-encoded name) | no | it names no host a policy could vouch for |
/// | any other name or IP (`api.example.com`, `203.0.113.7`, link-local `169.254.0.0/16`, CGNAT `100.64.0.0/10`) | no | may be outside the fleet |
///
/// A fleet that calls itself by public names adds them:
/// `Destinations::internal().or(Destinations::hosts(["*.svc.example.com"])?)`.
///
/// [`allows_uri`](Self::allows_uri) and [`allows_url`](Self::allows_url)
/// decide alike on every URL.
///
/// The decision is made on the URL as written, before any DNS lookup: a
/// public name that happens to resolve to a private address is not signed,
/// and a bare name is trusted to be resolved by the site's own resolver.
#[derive(Clone)]
pub struct Destinations {
    /// A destination is allowed if any rule allows it.
    rules: Cow<'static, [Rule]>,
}

#[derive(Clone)]
enum Rule {
    Any,
    Internal,
    Host(HostPattern),
    Predicate(Arc<dyn Fn(&Destination<'_>) -> bool + Send + Sync>),
}

const INTERNAL: &[Rule] = &[Rule::Internal];
const ANY: &[Rule] = &[Rule::Any];

impl Default for Destinations {
    fn default() -> Self {
        Destinations::internal()
    }
}

impl Destinations {
    /// Loopback and private IP addresses, `localhost`, names without a dot,
    /// and names under `.internal`, `.local`, `.home.arpa` (the default; see
    /// [the default](Self#the-default) for why each).
    #[must_use]
    pub const fn internal() -> Self {
        Destinations {
            rules: Cow::Borrowed(INTERNAL),
        }
    }

    /// Every destination, as osprofiler does. Only for a fleet whose
    /// services call nothing outside it.
    #[must_use]
    pub const fn any() -> Self {
        Destinations {
            rules: Cow::Borrowed(ANY),
        }
    }

    /// No destination: calls are profiled on this side only.
    #[must_use]
    pub const fn none() -> Self {
        Destinations {
            rules: Cow::Borrowed(&[]),
        }
    }

    /// Exactly these hosts. Each entry is a host name or IP address, with
    /// any port, or `host:port` for one port (`[::1]:8080` for IPv6); a
    /// `*.` prefix matches every name under a domain, not the domain itself.
    /// Names compare without regard to case or a trailing dot.
    ///
    /// # Errors
    ///
    /// An entry that is empty, a URL rather than a host, `*` alone, not a
    /// host name, or with a port that is not a number from 0 to 65535. The
    /// error names the entry.
    ///
    /// ```
    /// use tracing_osprofiler::http::Destinations;
    ///
    /// assert!(Destinations::hosts(["api.internal", "10.0.0.5:8080", "*.svc.example.com"]).is_ok());
    /// let error = Destinations::hosts(["https://api.example.com/"]).unwrap_err();
    /// assert_eq!(error.entry(), "https://api.example.com/");
    /// ```
    pub fn hosts<I>(hosts: I) -> Result<Self, InvalidHostError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let rules = hosts
            .into_iter()
            .map(|entry| HostPattern::parse(entry.as_ref()).map(Rule::Host))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Destinations {
            rules: Cow::Owned(rules),
        })
    }

    /// The destinations `allow` returns `true` for. It runs on every call
    /// made inside a profiled request, so keep it cheap.
    ///
    /// ```
    /// use tracing_osprofiler::http::{Destination, Destinations};
    ///
    /// let policy = Destinations::predicate(|to| to.scheme() == "https" && to.host().ends_with(".corp.example"));
    /// assert!(policy.allows(&Destination::new("https", "db.corp.example", None)));
    /// assert!(!policy.allows(&Destination::new("http", "db.corp.example", None)));
    /// ```
    #[must_use]
    pub fn predicate<F>(allow: F) -> Self
    where
        F: Fn(&Destination<'_>) -> bool + Send + Sync + 'static,
    {
        Destinations {
            rules: Cow::Owned(vec![Rule::Predicate(Arc::new(allow))]),
        }
    }

    /// The destinations `self` or `other` allows.
    #[must_use]
    pub fn or(self, other: Destinations) -> Self {
        let mut rules = self.rules.into_owned();
        rules.extend(other.rules.iter().cloned());
        Destinations {
            rules: Cow::Owned(rules),
        }
    }

    /// Whether a call to `destination` may carry a signed token.
    #[must_use]
    pub fn allows(&self, destination: &Destination<'_>) -> bool {
        self.rules.iter().any(|rule| match rule {
            Rule::Any => true,
            Rule::Internal => is_internal(destination),
            Rule::Host(pattern) => pattern.matches(destination),
            Rule::Predicate(allow) => allow(destination),
        })
    }

    /// Whether a call to `uri` may carry a signed token; `false` for a URI
    /// without a host. For clients on `http` types: check before
    /// [`inject_current`](super::inject::inject_current).
    ///
    /// The host is read as a URL parser reads it (as [`allows_url`] does):
    /// numeric IPv4 forms are addresses (`http://10.1/` is `10.0.0.1`), a
    /// host that is neither an IP address nor a host name (an IPv6 zone
    /// such as `[fe80::1%25eth0]`, a percent-encoded name) is refused.
    ///
    /// [`allows_url`]: Self::allows_url
    #[cfg(feature = "tower")]
    #[must_use]
    pub fn allows_uri(&self, uri: &http::Uri) -> bool {
        // With a URL parser at hand, decide on exactly what `allows_url`
        // sees (percent-decoding, IDNA), so that the two always agree.
        #[cfg(feature = "reqwest")]
        if uri.scheme().is_some() {
            return ::reqwest::Url::parse(&uri.to_string()).is_ok_and(|url| self.allows_url(&url));
        }
        Destination::from_uri(uri).is_some_and(|destination| self.allows(&destination))
    }

    /// Whether a call to `url` may carry a signed token; `false` for a URL
    /// without a host.
    #[cfg(feature = "reqwest")]
    #[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
    #[must_use]
    pub fn allows_url(&self, url: &::reqwest::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        self.allows(&Destination::new(
            url.scheme(),
            host,
            url.port_or_known_default(),
        ))
    }
}

impl fmt::Debug for Destinations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for rule in self.rules.iter() {
            match rule {
                Rule::Any => list.entry(&format_args!("any")),
                Rule::Internal => list.entry(&format_args!("internal")),
                Rule::Host(pattern) => list.entry(pattern),
                Rule::Predicate(_) => list.entry(&format_args!("predicate")),
            };
        }
        list.finish()
    }
}

/// Cloud metadata services, reached by names and addresses the other
/// rules of [`Destinations::internal`] would allow: the service answers
/// with the instance's credentials, and must not be handed a token either.
const METADATA_NAMES: &[&str] = &[
    "metadata.google.internal",
    // GCE and EC2 resolve these through their search domains.
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
];

fn is_metadata_ip(ip: IpAddr) -> bool {
    // EC2's and GCE's IPv6 metadata addresses sit in fc00::/7.
    ip == IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254))
        || ip == IpAddr::V6(std::net::Ipv6Addr::new(0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254))
}

fn is_internal(destination: &Destination<'_>) -> bool {
    if let Some(ip) = destination.ip() {
        return is_internal_ip(ip) && !is_metadata_ip(ip);
    }
    let Some(name) = destination.name() else {
        return false;
    };
    if METADATA_NAMES
        .iter()
        .any(|metadata| name.eq_ignore_ascii_case(metadata))
    {
        return false;
    }
    if !name.contains('.') {
        // An absolute name of one label (`ai.`, `com.`) is a top-level
        // domain, which public DNS answers; only `localhost.` is this
        // machine. A resolver may read an all-digit or `0x` label as an
        // IPv4 address (`inet_aton`): `ip()` has already read those.
        return name.eq_ignore_ascii_case("localhost")
            || (!destination.absolute() && !looks_numeric(name));
    }
    [".localhost", ".internal", ".local", ".home.arpa"]
        .iter()
        .any(|suffix| ends_with_ignore_case(name, suffix))
}

fn is_internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                // Unique local addresses, fc00::/7 (RFC 4193).
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_private())
        }
    }
}

fn looks_numeric(label: &str) -> bool {
    let hex = label
        .strip_prefix("0x")
        .or_else(|| label.strip_prefix("0X"));
    match hex {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_hexdigit()),
        None => label.bytes().all(|b| b.is_ascii_digit()),
    }
}

fn ends_with_ignore_case(name: &str, suffix: &str) -> bool {
    let (name, suffix) = (name.as_bytes(), suffix.as_bytes());
    name.len() > suffix.len() && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// One entry of [`Destinations::hosts`].
#[derive(Clone, PartialEq, Eq)]
struct HostPattern {
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Clone, PartialEq, Eq)]
enum HostMatch {
    Ip(IpAddr),
    /// Lower case, no trailing dot.
    Name(String),
    /// `.example.com`: any name ending so, lower case.
    Under(String),
}

impl HostPattern {
    fn parse(entry: &str) -> Result<Self, InvalidHostError> {
        let error = |reason| InvalidHostError {
            entry: entry.to_owned(),
            reason,
        };
        let text = entry.trim();
        if text.is_empty() {
            return Err(error("it is empty"));
        }
        if text.contains(['/', '?', '#', '@']) {
            return Err(error(
                "it is a URL; give the host or host:port only (`api.example.com:8443`)",
            ));
        }
        if text == "*" {
            return Err(error(
                "`*` alone would sign every call: use Destinations::any()",
            ));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(HostPattern {
                host: HostMatch::Ip(ip),
                port: None,
            });
        }
        let (host, port) = match text.rsplit_once(':') {
            // `[::1]`: brackets and no port.
            _ if text.starts_with('[') && text.ends_with(']') => (text, None),
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| error("the port is not a number from 0 to 65535"))?;
                (host, Some(port))
            }
            None => (text, None),
        };
        if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let ip = v6
                .parse::<IpAddr>()
                .map_err(|_| error("the part in brackets is not an IPv6 address"))?;
            return Ok(HostPattern {
                host: HostMatch::Ip(ip),
                port,
            });
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(HostPattern {
                host: HostMatch::Ip(ip),
                port,
            });
        }
        let (under, name) = match host.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, host),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        let valid_label = |label: &str| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !name.split('.').all(valid_label) {
            return Err(error(
                "it is not a host name (letters, digits, `-`, `_`, dots between labels; `*.` only as a prefix)",
            ));
        }
        let name = name.to_ascii_lowercase();
        let host = if under {
            HostMatch::Under(format!(".{name}"))
        } else {
            HostMatch::Name(name)
        };
        Ok(HostPattern { host, port })
    }

    fn matches(&self, destination: &Destination<'_>) -> bool {
        if self.port.is_some() && self.port != destination.port() {
            return false;
        }
        match &self.host {
            HostMatch::Ip(ip) => destination.ip() == Some(*ip),
            HostMatch::Name(name) => destination
                .name()
                .is_some_and(|host| host.eq_ignore_ascii_case(name)),
            HostMatch::Under(suffix) => destination
                .name()
                .is_some_and(|host| ends_with_ignore_case(host, suffix)),
        }
    }
}

impl fmt::Debug for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostMatch::Ip(IpAddr::V6(ip)) if self.port.is_some() => write!(f, "[{ip}]")?,
            HostMatch::Ip(ip) => write!(f, "{ip}")?,
            HostMatch::Name(name) => f.write_str(name)?,
            HostMatch::Under(suffix) => write!(f, "*{suffix}")?,
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// An entry of [`Destinations::hosts`] that is not a host or `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHostError {
    entry: String,
    reason: &'static str,
}

impl InvalidHostError {
    /// The entry as given.
    #[must_use]
    pub fn entry(&self) -> &str {
        &self.entry
    }
}

impl fmt::Display for InvalidHostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "destination host {:?} is not valid: {}",
            self.entry, self.reason
        )
    }
}

impl std::error::Error for InvalidHostError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(host: &str) -> Destination<'_> {
        Destination::new("http", host, None)
    }

    #[test]
    fn internal_by_address_and_by_name() {
        let policy = Destinations::default();
        for host in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "[::1]",
            "::1",
            "[fd12:3456::1]",
            "[::ffff:10.0.0.1]",
            "localhost",
            "LOCALHOST.",
            "api.localhost",
            "keystone",
            "nova-api",
            "glance.openstack.svc.cluster.local",
            "db.internal",
            "printer.home.arpa",
        ] {
            assert!(policy.allows(&to(host)), "{host}");
        }
        for host in [
            "203.0.113.5",
            "8.8.8.8",
            "172.32.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "[2001:db8::1]",
            "[fe80::1]",
            "[::ffff:8.8.8.8]",
            "api.example.com",
            "internal.example.com",
            "example.local.evil.com",
            "localhost.example.com",
            "3405803781",
            "0xcb007105",
            "",
            ".",
        ] {
            assert!(!policy.allows(&to(host)), "{host}");
        }
    }

    #[test]
    fn absolute_top_level_names_zones_and_metadata_services_are_not_internal() {
        let policy = Destinations::default();
        for host in [
            // Absolute names of one label are top-level domains.
            "ai.",
            "com.",
            "keystone.",
            "internal.",
            // A zone makes no host name; link-local is refused anyway.
            "fe80::1%25eth0",
            "[fe80::1%25eth0]",
            "[fd12::1%25eth0]",
            "local%68ost",
            "a/b",
            // Cloud metadata services.
            "metadata.google.internal",
            "METADATA.Google.Internal.",
            "metadata",
            "instance-data",
            "instance-data.ec2.internal",
            "[fd00:ec2::254]",
            "[fd20:ce::254]",
            // Ends in a number without being an address.
            "1.2.3.4.5",
            "10.0.0.256",
            "10.0x100.1",
            "keystone.10",
        ] {
            assert!(!policy.allows(&to(host)), "{host}");
        }
        for host in [
            "localhost.",
            "db.internal.",
            "metadata-proxy",
            "ec2.internal.example.internal",
            // Numeric forms of internal addresses, as a URL parser reads them.
            "10.1",
            "127.1",
            "0x7f.1",
            "0177.0.0.1",
            "2130706433",
            "192.168.0x1.1.",
        ] {
            assert!(policy.allows(&to(host)), "{host}");
        }
    }

    #[test]
    fn whatwg_ipv4_reads_numbers_as_a_url_parser_does() {
        let ip = |host: &str| whatwg_ipv4(host).map(|ip| ip.map(|ip| ip.to_string()));
        assert_eq!(ip("keystone"), None);
        assert_eq!(ip("a.b"), None);
        assert_eq!(ip("0xzz"), None);
        assert_eq!(ip("1"), Some(Some("0.0.0.1".into())));
        assert_eq!(ip("0x"), Some(Some("0.0.0.0".into())));
        assert_eq!(ip("1.2.3.4."), Some(Some("1.2.3.4".into())));
        assert_eq!(ip("0300.0250.1"), Some(Some("192.168.0.1".into())));
        assert_eq!(ip("4294967295"), Some(Some("255.255.255.255".into())));
        assert_eq!(ip("4294967296"), Some(None));
        assert_eq!(ip("99999999999999999999999"), Some(None));
        assert_eq!(ip("1..2"), Some(None));
        assert_eq!(ip("08.1"), Some(None));
    }

    /// `allows_uri` and `allows_url` decide alike on every URL both can
    /// read, and the URI path alone (no URL parser: a build without the
    /// `reqwest` feature) never allows what a URL parser's reading refuses.
    #[cfg(feature = "reqwest")]
    #[test]
    fn allows_uri_and_allows_url_agree() {
        let hosts = [
            "127.0.0.1",
            "127.1",
            "10.1",
            "0x7f.1",
            "0177.0.0.1",
            "2130706433",
            "3405803781",
            "0xcb007105",
            "1.2.3.4.5",
            "10.0.0.256",
            "[::1]",
            "[fe80::1]",
            "[fe80::1%25eth0]",
            "[fd00:ec2::254]",
            "[::ffff:10.0.0.1]",
            "[::ffff:a00:1]",
            "localhost",
            "LOCALHOST",
            "localhost.",
            "local%68ost",
            "keystone",
            "keystone.",
            "KEYSTONE",
            "ai.",
            "com.",
            "db.internal",
            "db.internal.",
            "metadata.google.internal",
            "metadata",
            "Metadata.Google.Internal.",
            "api.example.com",
            "api.example.com.",
            "xn--nxasmq6b",
            "a_b",
            "a..b",
            "partner.example.com",
            "x.svc.corp",
            "svc.corp",
            "evil%2esvc.corp",
            "169.254.169.254",
            "0251.0376.0251.0376",
            "192.168.1.1.",
            "%31%30.0.0.1",
        ];
        let policies = [
            Destinations::internal(),
            Destinations::hosts(["api.example.com", "*.svc.corp", "10.0.0.1:80", "[::1]"]).unwrap(),
            Destinations::predicate(|to| to.host().starts_with("key")),
            Destinations::any(),
        ];
        let mut compared = 0;
        for scheme in ["http", "https", "ws"] {
            for host in hosts {
                for port in ["", ":80", ":8080"] {
                    let text = format!("{scheme}://{host}{port}/path?q");
                    let (Ok(uri), Ok(url)) =
                        (text.parse::<http::Uri>(), ::reqwest::Url::parse(&text))
                    else {
                        continue;
                    };
                    compared += 1;
                    for policy in &policies {
                        let by_url = policy.allows_url(&url);
                        assert_eq!(policy.allows_uri(&uri), by_url, "{text} {policy:?}");
                        let by_uri_alone =
                            Destination::from_uri(&uri).is_some_and(|to| policy.allows(&to));
                        assert!(!by_uri_alone || by_url, "{text} {policy:?}");
                    }
                }
            }
        }
        assert!(compared > 100, "{compared}");
    }

    #[test]
    fn hosts_match_name_ip_port_and_subdomains() {
        let policy = Destinations::hosts([
            "API.example.com.",
            "10.0.0.5:8080",
            "[::1]:9000",
            "*.svc.corp",
        ])
        .unwrap();
        assert!(policy.allows(&to("api.example.com")));
        assert!(policy.allows(&Destination::new("https", "Api.Example.Com.", Some(1))));
        assert!(!policy.allows(&to("x.api.example.com")));
        assert!(policy.allows(&Destination::new("http", "10.0.0.5", Some(8080))));
        assert!(!policy.allows(&to("10.0.0.5")), "port 80");
        assert!(policy.allows(&Destination::new("http", "[::1]", Some(9000))));
        assert!(policy.allows(&Destination::new("http", "::1", Some(9000))));
        assert!(policy.allows(&to("nova.svc.corp")));
        assert!(policy.allows(&to("a.b.SVC.corp")));
        assert!(!policy.allows(&to("svc.corp")), "the domain itself");
        assert!(!policy.allows(&to("evilsvc.corp")));
        assert!(
            !policy.allows(&to("keystone")),
            "not internal() unless or'ed"
        );
        assert_eq!(
            format!("{policy:?}"),
            "[api.example.com, 10.0.0.5:8080, [::1]:9000, *.svc.corp]"
        );
    }

    #[test]
    fn default_ports_come_from_the_scheme() {
        let policy = Destinations::hosts(["a.example:443"]).unwrap();
        assert!(policy.allows(&Destination::new("https", "a.example", None)));
        assert!(policy.allows(&Destination::new("HTTPS", "a.example", None)));
        assert!(!policy.allows(&Destination::new("http", "a.example", None)));
        assert!(!policy.allows(&Destination::new("gopher", "a.example", None)));
        #[cfg(feature = "tower")]
        {
            let uri: http::Uri = "https://a.example/x?y".parse().unwrap();
            assert!(policy.allows_uri(&uri));
            let relative: http::Uri = "/x".parse().unwrap();
            assert!(!Destinations::any().allows_uri(&relative));
        }
    }

    #[test]
    fn bad_entries_are_errors_naming_the_entry() {
        for entry in [
            "",
            "  ",
            "http://a.example",
            "a.example/path",
            "user@a.example",
            "*",
            "a.example:http",
            "a.example:65536",
            "a..example",
            "a.*.example",
            "[nope]:80",
            "exa mple.com",
        ] {
            let error = Destinations::hosts(["ok.example", entry]).unwrap_err();
            assert_eq!(error.entry(), entry);
            assert!(error.to_string().contains(&format!("{entry:?}")), "{error}");
        }
    }

    #[test]
    fn any_none_predicate_or() {
        assert!(Destinations::any().allows(&to("8.8.8.8")));
        assert!(!Destinations::none().allows(&to("127.0.0.1")));
        let https = Destinations::predicate(|to| to.scheme() == "https");
        assert!(https.allows(&Destination::new("https", "8.8.8.8", None)));
        assert!(!https.allows(&to("127.0.0.1")));
        let both = Destinations::none().or(https).or(Destinations::internal());
        assert!(both.allows(&to("127.0.0.1")));
        assert!(both.allows(&Destination::new("https", "8.8.8.8", None)));
        assert!(!both.allows(&to("8.8.8.8")));
        assert_eq!(format!("{both:?}"), "[predicate, internal]");
    }
}
