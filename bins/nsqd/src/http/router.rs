//! nsqd's endpoints and route table. The matching itself, with the observable behaviour of
//! `julienschmidt/httprouter` (405 + `Allow`, automatic `OPTIONS`, redirects), is `nsq_http::router`, shared
//! with nsqlookupd; the tests here pin that behaviour down on nsqd's own routes.
//!
//! Go's pprof routes are deliberately absent: those paths answer as any unknown path does. The two Go debug
//! actions that are not pprof (`/debug/setblockrate`, `/debug/freememory`) are routed and answer as Go does.

use hyper::Method;
use nsq_http::router::{self, Route};

/// An nsqd HTTP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Ping,
    Info,
    Pub,
    Mpub,
    Stats,
    Metrics,
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
const ROUTES: &[Route<Endpoint>] = &[
    ("GET", "/ping", Endpoint::Ping),
    ("GET", "/info", Endpoint::Info),
    ("POST", "/pub", Endpoint::Pub),
    ("POST", "/mpub", Endpoint::Mpub),
    ("GET", "/stats", Endpoint::Stats),
    ("GET", "/metrics", Endpoint::Metrics),
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
pub(crate) type Resolved = router::Resolved<Endpoint>;

/// Routes `method` and the decoded `path` through nsqd's table; `raw_query` is carried into redirect targets.
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
        assert_eq!(
            resolve(&Method::POST, "/metrics", None),
            allow("GET, OPTIONS")
        );
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
}
