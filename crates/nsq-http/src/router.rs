//! Request routing with the observable behaviour of `julienschmidt/httprouter`, which Go's nsqd and
//! nsqlookupd both use.
//!
//! Clients and tools meet its quirks: a wrong method is a 405 with a sorted `Allow` header that includes
//! `OPTIONS`, `OPTIONS` is answered automatically, `HEAD` is not routed, a trailing slash or a differently-cased
//! or unclean path is redirected (301 for GET, 307 otherwise) when that finds a route of the same method. A
//! daemon's table is small and static, so matching is a linear walk over it instead of httprouter's radix tree;
//! [`resolve`] is a pure function, generic over the daemon's endpoint enum, so the rules can be tested without
//! a server. Each daemon keeps its own table and endpoints.

use axum::response::Response;
use hyper::{Method, StatusCode};

use crate::response;

/// One line of a daemon's route table: method, pattern (`:name` is one non-empty segment), endpoint.
pub type Route<E> = (&'static str, &'static str, E);

/// What the router decided for a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved<E> {
    /// Run the endpoint; `param` is the `:name` segment where the pattern has one.
    Handle {
        /// The endpoint the route names.
        endpoint: E,
        /// The value of the pattern's parameter segment, if it has one.
        param: Option<String>,
    },
    /// Redirect to `location` (path plus the original query).
    Redirect {
        /// 301 for GET, 307 for other methods.
        status: StatusCode,
        /// The escaped path and the original query.
        location: String,
    },
    /// Automatic `OPTIONS` answer.
    Options {
        /// The `Allow` header value.
        allow: String,
    },
    /// 405 with this `Allow` header.
    MethodNotAllowed {
        /// The `Allow` header value.
        allow: String,
    },
    /// 404.
    NotFound,
}

impl<E> Resolved<E> {
    /// The endpoint to run and its parameter, or, for every other decision, the router's own answer to a
    /// request with `method` (Go's redirect, the automatic `OPTIONS`, the 405 or nsq's 404).
    #[allow(
        clippy::result_large_err,
        reason = "the answer goes straight back to hyper once per request; a Box would only add an allocation"
    )]
    pub fn into_endpoint(self, method: &Method) -> Result<(E, Option<String>), Response> {
        Err(match self {
            Resolved::Handle { endpoint, param } => return Ok((endpoint, param)),
            Resolved::Redirect { status, location } => {
                response::redirect(status, &location, method)
            }
            Resolved::Options { allow } => response::options(&allow),
            Resolved::MethodNotAllowed { allow } => response::method_not_allowed(&allow),
            Resolved::NotFound => response::v1_error(StatusCode::NOT_FOUND, "NOT_FOUND"),
        })
    }
}

/// Routes `method` and the decoded `path` through `routes`; `raw_query` is carried into redirect targets.
pub fn resolve<E: Copy>(
    routes: &[Route<E>],
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
) -> Resolved<E> {
    let m = method.as_str();
    // httprouter only tries redirects for a method that has routes at all.
    if routes.iter().any(|(rm, _, _)| *rm == m) {
        if let Some((endpoint, param)) = lookup(routes, m, path) {
            return Resolved::Handle { endpoint, param };
        }
        if method != Method::CONNECT && path != "/" {
            let status = if method == Method::GET {
                StatusCode::MOVED_PERMANENTLY
            } else {
                StatusCode::TEMPORARY_REDIRECT
            };
            // Trailing-slash redirect: no route of either daemon ends in '/', so only removing one can help.
            if path.len() > 1
                && path.ends_with('/')
                && lookup(routes, m, &path[..path.len() - 1]).is_some()
            {
                let location = with_query(&path[..path.len() - 1], raw_query);
                return Resolved::Redirect { status, location };
            }
            if let Some(fixed) = find_case_insensitive(routes, m, &clean_path(path)) {
                return Resolved::Redirect {
                    status,
                    location: with_query(&fixed, raw_query),
                };
            }
        }
    }
    let allow = allowed(routes, path, m);
    match allow {
        Some(allow) if method == Method::OPTIONS => Resolved::Options { allow },
        Some(allow) => Resolved::MethodNotAllowed { allow },
        None => Resolved::NotFound,
    }
}

/// Exact (case-sensitive) match of `path` against the routes of `method`.
fn lookup<E: Copy>(routes: &[Route<E>], method: &str, path: &str) -> Option<(E, Option<String>)> {
    routes
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
fn find_case_insensitive<E>(routes: &[Route<E>], method: &str, path: &str) -> Option<String> {
    let try_path = |p: &str| {
        routes
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
fn allowed<E: Copy>(routes: &[Route<E>], path: &str, req_method: &str) -> Option<String> {
    let mut methods: Vec<&str> = Vec::new();
    for (m, _, _) in routes {
        if *m == req_method || *m == "OPTIONS" || methods.contains(m) {
            continue;
        }
        if lookup(routes, m, path).is_some() {
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
pub fn clean_path(path: &str) -> String {
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
/// A path made only of route spellings needs no escaping; a parameter segment as sent may.
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
pub fn decode_path(raw: &str) -> String {
    if !raw.contains('%') {
        return raw.to_owned();
    }
    match percent_decode(raw.as_bytes(), false) {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => raw.to_owned(),
    }
}

/// Decodes `%XX` (and `+` as a space when `plus_is_space`); `None` on a malformed escape, as Go's unescape.
pub fn percent_decode(s: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
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

/// The value of one hexadecimal digit.
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

    /// A table with the shapes both daemons use: plain routes, one path under two methods, a parameter.
    const TABLE: &[Route<u8>] = &[
        ("GET", "/ping", 1),
        ("POST", "/pub", 2),
        ("GET", "/config/:opt", 3),
        ("PUT", "/config/:opt", 3),
    ];

    fn resolve(method: &Method, path: &str, query: Option<&str>) -> Resolved<u8> {
        super::resolve(TABLE, method, path, query)
    }

    #[test]
    fn parameters_are_one_non_empty_segment() {
        assert_eq!(
            resolve(&Method::PUT, "/config/log_level", None),
            Resolved::Handle {
                endpoint: 3,
                param: Some("log_level".to_owned())
            }
        );
        assert_eq!(resolve(&Method::GET, "/config/", None), Resolved::NotFound);
        assert_eq!(
            resolve(&Method::GET, "/config/a/b", None),
            Resolved::NotFound
        );
    }

    #[test]
    fn allow_lists_other_methods_sorted_with_options() {
        assert_eq!(
            resolve(&Method::POST, "/config/x", None),
            Resolved::MethodNotAllowed {
                allow: "GET, OPTIONS, PUT".to_owned()
            }
        );
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
    }

    #[test]
    fn redirects_escape_the_parameter_as_sent() {
        assert_eq!(
            resolve(&Method::GET, "/Config/a b/", Some("x=1")),
            Resolved::Redirect {
                status: StatusCode::MOVED_PERMANENTLY,
                location: "/config/a%20b?x=1".to_owned()
            }
        );
        assert_eq!(resolve(&Method::DELETE, "/ping/", None), Resolved::NotFound);
    }

    #[test]
    fn every_decision_but_handle_is_answered_by_the_router() {
        let method = Method::GET;
        assert_eq!(
            resolve(&method, "/ping", None).into_endpoint(&method).ok(),
            Some((1, None))
        );
        let status = |path: &str| match resolve(&method, path, None).into_endpoint(&method) {
            Ok(_) => panic!("{path} was handled"),
            Err(res) => res.status(),
        };
        assert_eq!(status("/ping/"), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(status("/pub"), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(status("/nosuch"), StatusCode::NOT_FOUND);
    }

    #[test]
    fn paths_are_cleaned_and_decoded() {
        assert_eq!(clean_path("//info"), "/info");
        assert_eq!(clean_path("/a/./b/../c/"), "/a/c/");
        assert_eq!(clean_path(""), "/");
        assert_eq!(decode_path("/config/log%5Flevel"), "/config/log_level");
        assert_eq!(decode_path("/l%6Fokup"), "/lookup");
        assert_eq!(decode_path("/bad%zz"), "/bad%zz");
        assert_eq!(escape_path("/a b"), "/a%20b");
        assert_eq!(percent_decode(b"a+b%21", true), Some(b"a b!".to_vec()));
    }
}
