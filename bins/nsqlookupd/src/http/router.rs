//! nsqlookupd's endpoints and route table. The matching itself, with the observable behaviour of
//! `julienschmidt/httprouter` (405 + `Allow`, automatic `OPTIONS`, redirects), is `nsq_http::router`, shared
//! with nsqd; the tests here pin that behaviour down on lookupd's own routes.
//!
//! Go's `/debug/pprof*` routes are Go runtime tools and are not provided: those paths answer as any unknown
//! path does.

use hyper::Method;
use nsq_http::router::{self, Route};

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
    Metrics,
    TopicCreate,
    TopicDelete,
    ChannelCreate,
    ChannelDelete,
    TopicTombstone,
}

/// Go nsqlookupd's routes (master 3103474b; the deprecated underscore aliases are gone there).
const ROUTES: &[Route<Endpoint>] = &[
    ("GET", "/ping", Endpoint::Ping),
    ("GET", "/info", Endpoint::Info),
    ("GET", "/debug", Endpoint::Debug),
    ("GET", "/lookup", Endpoint::Lookup),
    ("GET", "/topics", Endpoint::Topics),
    ("GET", "/channels", Endpoint::Channels),
    ("GET", "/nodes", Endpoint::Nodes),
    ("GET", "/metrics", Endpoint::Metrics),
    ("POST", "/topic/create", Endpoint::TopicCreate),
    ("POST", "/topic/delete", Endpoint::TopicDelete),
    ("POST", "/channel/create", Endpoint::ChannelCreate),
    ("POST", "/channel/delete", Endpoint::ChannelDelete),
    ("POST", "/topic/tombstone", Endpoint::TopicTombstone),
];

/// What the router decided.
pub(crate) type Resolved = router::Resolved<Endpoint>;

/// Routes `method` and the decoded `path` through lookupd's table; `raw_query` is carried into redirect
/// targets.
pub(crate) fn resolve(method: &Method, path: &str, raw_query: Option<&str>) -> Resolved {
    router::resolve(ROUTES, method, path, raw_query)
}

#[cfg(test)]
mod tests {
    use hyper::StatusCode;

    use super::*;

    fn handle(endpoint: Endpoint) -> Resolved {
        Resolved::Handle {
            endpoint,
            param: None,
        }
    }

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
            handle(Endpoint::Lookup)
        );
        assert_eq!(
            resolve(&Method::POST, "/topic/tombstone", None),
            handle(Endpoint::TopicTombstone)
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
            resolve(&Method::GET, "/metrics", None),
            handle(Endpoint::Metrics)
        );
        assert_eq!(
            resolve(&Method::PUT, "/metrics", None),
            not_allowed("GET, OPTIONS")
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
}
