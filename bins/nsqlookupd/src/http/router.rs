//! Request routing with the observable behaviour of `julienschmidt/httprouter`, which Go's nsqlookupd uses:
//! a wrong method is a 405 with a sorted `Allow` that includes `OPTIONS`, `OPTIONS` is answered automatically,
//! `HEAD` is not routed, and a trailing slash or a differently-cased or unclean path is redirected (301 for
//! GET, 307 otherwise) when that finds a route of the same method.
//!
//! Go's `/debug/pprof*` routes are Go runtime tools and are not provided: those paths answer as any unknown
//! path does. The table is small and has no parameters, so matching is a walk over it; [`resolve`] is a pure
//! function, tested without a server.

use hyper::{Method, StatusCode};

/// An nsqlookupd HTTP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Ping,
    Info,
    Debug,
    Lookup,
    Topics,
    Channels,
    Nodes,
    TopicCreate,
    TopicDelete,
    ChannelCreate,
    ChannelDelete,
    TopicTombstone,
}

/// Go nsqlookupd's routes (master 3103474b; the deprecated underscore aliases are gone there).
const ROUTES: &[(&str, &str, Endpoint)] = &[
    ("GET", "/ping", Endpoint::Ping),
    ("GET", "/info", Endpoint::Info),
    ("GET", "/debug", Endpoint::Debug),
    ("GET", "/lookup", Endpoint::Lookup),
    ("GET", "/topics", Endpoint::Topics),
    ("GET", "/channels", Endpoint::Channels),
    ("GET", "/nodes", Endpoint::Nodes),
    ("POST", "/topic/create", Endpoint::TopicCreate),
    ("POST", "/topic/delete", Endpoint::TopicDelete),
    ("POST", "/channel/create", Endpoint::ChannelCreate),
    ("POST", "/channel/delete", Endpoint::ChannelDelete),
    ("POST", "/topic/tombstone", Endpoint::TopicTombstone),
];

/// What the router decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// Run the endpoint.
    Handle(Endpoint),
    /// Redirect to `location` (path plus the original query).
    Redirect {
        status: StatusCode,
        location: String,
    },
    /// Automatic `OPTIONS` answer.
    Options { allow: String },
    /// 405 with this `Allow` header.
    MethodNotAllowed { allow: String },
    /// 404.
    NotFound,
}

/// Routes `method` and the decoded `path`; `raw_query` is carried into redirect targets.
pub(crate) fn resolve(method: &Method, path: &str, raw_query: Option<&str>) -> Resolved {
    let m = method.as_str();
    // httprouter only tries redirects for a method that has routes at all.
    if ROUTES.iter().any(|(rm, _, _)| *rm == m) {
        if let Some(endpoint) = lookup(m, path, false) {
            return Resolved::Handle(endpoint);
        }
        if method != Method::CONNECT && path != "/" {
            let status = if method == Method::GET {
                StatusCode::MOVED_PERMANENTLY
            } else {
                StatusCode::TEMPORARY_REDIRECT
            };
            let fixed = path
                .strip_suffix('/')
                .filter(|p| !p.is_empty() && lookup(m, p, false).is_some())
                .map(str::to_owned)
                .or_else(|| case_insensitive(m, &clean_path(path)));
            if let Some(fixed) = fixed {
                return Resolved::Redirect {
                    status,
                    location: with_query(&fixed, raw_query),
                };
            }
        }
    }
    match allowed(path, m) {
        Some(allow) if method == Method::OPTIONS => Resolved::Options { allow },
        Some(allow) => Resolved::MethodNotAllowed { allow },
        None => Resolved::NotFound,
    }
}

fn lookup(method: &str, path: &str, ignore_case: bool) -> Option<Endpoint> {
    ROUTES
        .iter()
        .find(|(m, p, _)| {
            *m == method && (*p == path || (ignore_case && p.eq_ignore_ascii_case(path)))
        })
        .map(|(_, _, e)| *e)
}

/// httprouter's `findCaseInsensitivePath` with trailing-slash fixing, on a cleaned path; returns the route's
/// own spelling.
fn case_insensitive(method: &str, path: &str) -> Option<String> {
    let spelled = |p: &str| {
        ROUTES
            .iter()
            .find(|(m, r, _)| *m == method && r.eq_ignore_ascii_case(p))
            .map(|(_, r, _)| (*r).to_owned())
    };
    spelled(path).or_else(|| {
        path.strip_suffix('/')
            .filter(|p| !p.is_empty())
            .and_then(spelled)
    })
}

/// The `Allow` value for `path`: the other methods that route it, plus `OPTIONS`, sorted.
fn allowed(path: &str, req_method: &str) -> Option<String> {
    let mut methods: Vec<&str> = ROUTES
        .iter()
        .filter(|(m, p, _)| *p == path && *m != req_method)
        .map(|(m, _, _)| *m)
        .collect();
    if methods.is_empty() {
        return None;
    }
    methods.push("OPTIONS");
    methods.sort_unstable();
    methods.dedup();
    Some(methods.join(", "))
}

/// httprouter's `CleanPath`: a leading `/`, no empty, `.` or `..` segments, a trailing slash kept.
fn clean_path(path: &str) -> String {
    let trailing = path.len() > 1 && path.ends_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() || trailing {
        out.push('/');
    }
    out
}

/// The redirect target as Go's `URL.String()` writes it: the route path, then `?query` if there is one. The
/// fixed path is always one of our routes, which need no escaping.
fn with_query(path: &str, raw_query: Option<&str>) -> String {
    match raw_query.filter(|q| !q.is_empty()) {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    }
}

/// Percent-decodes a request path as Go's `URL.Path` holds it; an invalid escape leaves it as sent.
pub(crate) fn decode_path(raw: &str) -> String {
    if !raw.contains('%') {
        return raw.to_owned();
    }
    match percent_decode(raw.as_bytes(), false) {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => raw.to_owned(),
    }
}

/// Decodes `%XX` (and `+` as a space when `plus_is_space`); `None` on a malformed escape, as Go's unescape.
pub(crate) fn percent_decode(s: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
    let hex = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let hi = hex(*s.get(i + 1)?)?;
                let lo = hex(*s.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(status: StatusCode, location: &str) -> Resolved {
        Resolved::Redirect {
            status,
            location: location.to_owned(),
        }
    }

    #[test]
    fn routes_methods_and_options() {
        assert_eq!(
            resolve(&Method::GET, "/lookup", Some("topic=a")),
            Resolved::Handle(Endpoint::Lookup)
        );
        assert_eq!(
            resolve(&Method::POST, "/topic/tombstone", None),
            Resolved::Handle(Endpoint::TopicTombstone)
        );
        let not_allowed = |a: &str| Resolved::MethodNotAllowed {
            allow: a.to_owned(),
        };
        assert_eq!(
            resolve(&Method::POST, "/lookup", None),
            not_allowed("GET, OPTIONS")
        );
        assert_eq!(
            resolve(&Method::HEAD, "/ping", None),
            not_allowed("GET, OPTIONS")
        );
        assert_eq!(
            resolve(&Method::GET, "/channel/delete", None),
            not_allowed("OPTIONS, POST")
        );
        assert_eq!(
            resolve(&Method::OPTIONS, "/lookup", None),
            Resolved::Options {
                allow: "GET, OPTIONS".to_owned()
            }
        );
        assert_eq!(
            resolve(&Method::OPTIONS, "/nosuch", None),
            Resolved::NotFound
        );
        assert_eq!(resolve(&Method::GET, "/nosuch", None), Resolved::NotFound);
        assert_eq!(
            resolve(&Method::GET, "/debug/pprof", None),
            Resolved::NotFound
        );
        // The deprecated aliases of older releases are not routed in 1.3.
        assert_eq!(
            resolve(&Method::POST, "/create_topic", None),
            Resolved::NotFound
        );
    }

    #[test]
    fn redirects_like_httprouter() {
        assert_eq!(
            resolve(&Method::GET, "/lookup/", Some("topic=topic_a")),
            redirect(StatusCode::MOVED_PERMANENTLY, "/lookup?topic=topic_a")
        );
        assert_eq!(
            resolve(&Method::POST, "/topic/create/", Some("topic=a")),
            redirect(StatusCode::TEMPORARY_REDIRECT, "/topic/create?topic=a")
        );
        assert_eq!(
            resolve(&Method::GET, "/NODES", None),
            redirect(StatusCode::MOVED_PERMANENTLY, "/nodes")
        );
        assert_eq!(
            resolve(&Method::GET, "//info", None),
            redirect(StatusCode::MOVED_PERMANENTLY, "/info")
        );
        assert_eq!(
            resolve(&Method::GET, "/Topics/", None),
            redirect(StatusCode::MOVED_PERMANENTLY, "/topics")
        );
        assert_eq!(
            resolve(&Method::GET, "/debug/", None),
            redirect(StatusCode::MOVED_PERMANENTLY, "/debug")
        );
        assert_eq!(resolve(&Method::DELETE, "/ping/", None), Resolved::NotFound);
    }

    #[test]
    fn paths_are_cleaned_and_decoded() {
        assert_eq!(clean_path("/a/./b/../c/"), "/a/c/");
        assert_eq!(decode_path("/l%6Fokup"), "/lookup");
        assert_eq!(decode_path("/bad%zz"), "/bad%zz");
        assert_eq!(percent_decode(b"a+b%21", true), Some(b"a b!".to_vec()));
    }
}
