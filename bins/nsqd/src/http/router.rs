//! Request routing with the observable behaviour of `julienschmidt/httprouter`, which Go's nsqd uses.
//!
//! Clients and tools meet its quirks: a wrong method is a 405 with a sorted `Allow` header that includes
//! `OPTIONS`, `OPTIONS` is answered automatically, `HEAD` is not routed, a trailing slash or a differently-cased
//! or unclean path is redirected (301 for GET, 307 otherwise). Our table is small and static, so matching is
//! a linear walk over it instead of httprouter's radix tree; [`resolve`] is a pure function so the rules can be
//! tested without a server.
//!
//! Go's pprof routes are deliberately absent: those paths answer as any unknown path does. The two Go debug
//! actions that are not pprof (`/debug/setblockrate`, `/debug/freememory`) are routed and answer as Go does.

use hyper::{Method, StatusCode};

/// An nsqd HTTP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Ping,
    Info,
    Pub,
    Mpub,
    Stats,
    TopicCreate,
    TopicDelete,
    TopicEmpty,
    TopicPause,
    TopicUnpause,
    ChannelCreate,
    ChannelDelete,
    ChannelEmpty,
    ChannelPause,
    ChannelUnpause,
    Config,
    SetBlockRate,
    FreeMemory,
}

/// The route table: method, pattern (`:name` is one non-empty segment), endpoint.
const ROUTES: &[(&str, &str, Endpoint)] = &[
    ("GET", "/ping", Endpoint::Ping),
    ("GET", "/info", Endpoint::Info),
    ("POST", "/pub", Endpoint::Pub),
    ("POST", "/mpub", Endpoint::Mpub),
    ("GET", "/stats", Endpoint::Stats),
    ("POST", "/topic/create", Endpoint::TopicCreate),
    ("POST", "/topic/delete", Endpoint::TopicDelete),
    ("POST", "/topic/empty", Endpoint::TopicEmpty),
    ("POST", "/topic/pause", Endpoint::TopicPause),
    ("POST", "/topic/unpause", Endpoint::TopicUnpause),
    ("POST", "/channel/create", Endpoint::ChannelCreate),
    ("POST", "/channel/delete", Endpoint::ChannelDelete),
    ("POST", "/channel/empty", Endpoint::ChannelEmpty),
    ("POST", "/channel/pause", Endpoint::ChannelPause),
    ("POST", "/channel/unpause", Endpoint::ChannelUnpause),
    ("GET", "/config/:opt", Endpoint::Config),
    ("PUT", "/config/:opt", Endpoint::Config),
    ("PUT", "/debug/setblockrate", Endpoint::SetBlockRate),
    ("POST", "/debug/freememory", Endpoint::FreeMemory),
];

/// What the router decided for a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// Run the endpoint; `param` is the `:opt` segment where the pattern has one.
    Handle {
        endpoint: Endpoint,
        param: Option<String>,
    },
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
    if ROUTES.iter().any(|(rm, _, _)| *rm == m) {
        if let Some((endpoint, param)) = lookup(m, path) {
            return Resolved::Handle { endpoint, param };
        }
        if method != Method::CONNECT && path != "/" {
            let status = if method == Method::GET {
                StatusCode::MOVED_PERMANENTLY
            } else {
                StatusCode::TEMPORARY_REDIRECT
            };
            // Trailing-slash redirect: none of our routes ends in '/', so only removing one can help.
            if path.len() > 1 && path.ends_with('/') && lookup(m, &path[..path.len() - 1]).is_some()
            {
                let location = with_query(&path[..path.len() - 1], raw_query);
                return Resolved::Redirect { status, location };
            }
            if let Some(fixed) = find_case_insensitive(m, &clean_path(path)) {
                return Resolved::Redirect {
                    status,
                    location: with_query(&fixed, raw_query),
                };
            }
        }
    }
    let allow = allowed(path, m);
    match allow {
        Some(allow) if method == Method::OPTIONS => Resolved::Options { allow },
        Some(allow) => Resolved::MethodNotAllowed { allow },
        None => Resolved::NotFound,
    }
}

/// Exact (case-sensitive) match of `path` against the routes of `method`.
fn lookup(method: &str, path: &str) -> Option<(Endpoint, Option<String>)> {
    ROUTES
        .iter()
        .filter(|(m, _, _)| *m == method)
        .find_map(|(_, pattern, endpoint)| {
            match_pattern(pattern, path, false).map(|(_, param)| (*endpoint, param))
        })
}

/// Matches segment by segment. Returns the path as the route spells it (the parameter as given) and the
/// parameter value.
fn match_pattern(pattern: &str, path: &str, ignore_case: bool) -> Option<(String, Option<String>)> {
    let pats: Vec<&str> = pattern.split('/').collect();
    let segs: Vec<&str> = path.split('/').collect();
    if pats.len() != segs.len() {
        return None;
    }
    let mut fixed = Vec::with_capacity(segs.len());
    let mut param = None;
    for (p, s) in pats.iter().zip(&segs) {
        if p.starts_with(':') {
            if s.is_empty() {
                return None;
            }
            param = Some((*s).to_owned());
            fixed.push(*s);
        } else if p == s || (ignore_case && p.eq_ignore_ascii_case(s)) {
            fixed.push(*p);
        } else {
            return None;
        }
    }
    Some((fixed.join("/"), param))
}

/// httprouter's `findCaseInsensitivePath` with trailing-slash fixing, on an already cleaned path.
fn find_case_insensitive(method: &str, path: &str) -> Option<String> {
    let try_path = |p: &str| {
        ROUTES
            .iter()
            .filter(|(m, _, _)| *m == method)
            .find_map(|(_, pattern, _)| match_pattern(pattern, p, true).map(|(fixed, _)| fixed))
    };
    try_path(path).or_else(|| {
        if path.len() > 1 && path.ends_with('/') {
            try_path(&path[..path.len() - 1])
        } else {
            None
        }
    })
}

/// The `Allow` value for `path`: every other method with a route for it, plus `OPTIONS`, sorted.
fn allowed(path: &str, req_method: &str) -> Option<String> {
    let mut methods: Vec<&str> = Vec::new();
    for (m, _, _) in ROUTES {
        if *m == req_method || *m == "OPTIONS" || methods.contains(m) {
            continue;
        }
        if lookup(m, path).is_some() {
            methods.push(m);
        }
    }
    if methods.is_empty() {
        return None;
    }
    methods.push("OPTIONS");
    methods.sort_unstable();
    Some(methods.join(", "))
}

/// httprouter's `CleanPath`: a leading '/', no empty, `.` or `..` segments, the trailing slash kept.
pub(crate) fn clean_path(path: &str) -> String {
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

/// The redirect target as Go's `URL.String()` writes it: the escaped path, then `?query` when there is one.
fn with_query(path: &str, raw_query: Option<&str>) -> String {
    let mut out = escape_path(path);
    if let Some(q) = raw_query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Go's `url.PathEscape`-style escaping for `URL.EscapedPath` (`shouldEscape` in path mode).
fn escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_'
                    | b'.'
                    | b'~'
                    | b'$'
                    | b'&'
                    | b'+'
                    | b','
                    | b'/'
                    | b':'
                    | b';'
                    | b'='
                    | b'@'
            );
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decodes a request path as Go's `URL.Path` holds it; an invalid escape leaves the path as sent.
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
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let hi = hex_value(*s.get(i + 1)?)?;
                let lo = hex_value(*s.get(i + 2)?)?;
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

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(endpoint: Endpoint) -> Resolved {
        Resolved::Handle {
            endpoint,
            param: None,
        }
    }

    #[test]
    fn routes_match_exactly() {
        assert_eq!(resolve(&Method::GET, "/ping", None), handle(Endpoint::Ping));
        assert_eq!(
            resolve(&Method::POST, "/channel/unpause", None),
            handle(Endpoint::ChannelUnpause)
        );
        assert_eq!(
            resolve(&Method::PUT, "/config/log_level", None),
            Resolved::Handle {
                endpoint: Endpoint::Config,
                param: Some("log_level".to_owned())
            }
        );
    }

    #[test]
    fn wrong_method_is_405_with_sorted_allow() {
        let allow = |a: &str| Resolved::MethodNotAllowed {
            allow: a.to_owned(),
        };
        assert_eq!(resolve(&Method::GET, "/pub", None), allow("OPTIONS, POST"));
        assert_eq!(
            resolve(&Method::POST, "/stats", None),
            allow("GET, OPTIONS")
        );
        assert_eq!(
            resolve(&Method::DELETE, "/topic/create", None),
            allow("OPTIONS, POST")
        );
        assert_eq!(
            resolve(&Method::POST, "/config/log_level", None),
            allow("GET, OPTIONS, PUT")
        );
        assert_eq!(resolve(&Method::HEAD, "/ping", None), allow("GET, OPTIONS"));
    }

    #[test]
    fn options_and_not_found() {
        assert_eq!(
            resolve(&Method::OPTIONS, "/pub", None),
            Resolved::Options {
                allow: "OPTIONS, POST".to_owned()
            }
        );
        assert_eq!(
            resolve(&Method::OPTIONS, "/nosuch", None),
            Resolved::NotFound
        );
        assert_eq!(resolve(&Method::GET, "/nosuch", None), Resolved::NotFound);
        assert_eq!(
            resolve(&Method::POST, "/nosuch/deeper", None),
            Resolved::NotFound
        );
        assert_eq!(resolve(&Method::GET, "/", None), Resolved::NotFound);
        assert_eq!(resolve(&Method::GET, "/config/", None), Resolved::NotFound);
        assert_eq!(
            resolve(&Method::GET, "/config/a/b", None),
            Resolved::NotFound
        );
        // Go's debug routes are not served: they look like any unknown path.
        assert_eq!(
            resolve(&Method::GET, "/debug/pprof", None),
            Resolved::NotFound
        );
        assert_eq!(
            resolve(&Method::GET, "/debug/pprof/", None),
            Resolved::NotFound
        );
        assert_eq!(
            resolve(&Method::POST, "/debug/freememory", None),
            handle(Endpoint::FreeMemory)
        );
        assert_eq!(
            resolve(&Method::GET, "/debug/freememory", None),
            Resolved::MethodNotAllowed {
                allow: "OPTIONS, POST".to_owned()
            }
        );
        assert_eq!(
            resolve(&Method::PUT, "/debug/setblockrate", Some("rate=0")),
            handle(Endpoint::SetBlockRate)
        );
    }

    #[test]
    fn redirects_like_httprouter() {
        let redirect = |status, location: &str| Resolved::Redirect {
            status,
            location: location.to_owned(),
        };
        assert_eq!(
            resolve(&Method::GET, "/ping/", None),
            redirect(StatusCode::MOVED_PERMANENTLY, "/ping")
        );
        assert_eq!(
            resolve(&Method::POST, "/pub/", Some("topic=alpha")),
            redirect(StatusCode::TEMPORARY_REDIRECT, "/pub?topic=alpha")
        );
        assert_eq!(
            resolve(&Method::GET, "/STATS", Some("format=json")),
            redirect(StatusCode::MOVED_PERMANENTLY, "/stats?format=json")
        );
        assert_eq!(
            resolve(&Method::GET, "//info", None),
            redirect(StatusCode::MOVED_PERMANENTLY, "/info")
        );
        assert_eq!(
            resolve(&Method::GET, "/Config/Log_Level/", None),
            redirect(StatusCode::MOVED_PERMANENTLY, "/config/Log_Level")
        );
        // A method without any route gets no redirect, only the 405/404 decision.
        assert_eq!(resolve(&Method::DELETE, "/ping/", None), Resolved::NotFound);
    }

    #[test]
    fn paths_are_cleaned_and_decoded() {
        assert_eq!(clean_path("//info"), "/info");
        assert_eq!(clean_path("/a/./b/../c/"), "/a/c/");
        assert_eq!(clean_path(""), "/");
        assert_eq!(decode_path("/config/log%5Flevel"), "/config/log_level");
        assert_eq!(decode_path("/bad%zz"), "/bad%zz");
        assert_eq!(escape_path("/a b"), "/a%20b");
    }
}
