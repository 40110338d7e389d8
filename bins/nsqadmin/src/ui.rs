//! The web UI: a single page (`static/index.html`) plus its script and style sheet, embedded in the binary so
//! nsqadmin needs no files at run time. Our own plain HTML/JS/CSS, not Go's Backbone bundle.
//!
//! Every page route (`/`, `/topics/:topic`, `/topics/:topic/:channel`, `/nodes`, `/nodes/:node`,
//! `/counter`, `/lookup`) answers the same page; its script picks what to show from the location. The page
//! learns `--base-path`, the version and the graphite settings from `<meta>` tags filled in here.
//!
//! With `--graphite-url` the charts come from graphite's `/render?format=json` instead of `/api/history`:
//! the page is told where to fetch them (graphite itself, or nsqadmin's own `/render` with
//! `--proxy-graphite`, as Go's page is) and the statsd prefix, formats and interval it builds targets with.
//! Assets are served at `/static/:asset`. `--dev-static-dir` is accepted but not used.

use axum::body::Body;
use axum::response::Response;
use hyper::{header, Method, StatusCode};

use crate::Context;

const INDEX_HTML: &str = include_str!("../static/index.html");
const APP_JS: &str = include_str!("../static/app.js");
const APP_CSS: &str = include_str!("../static/app.css");
const FAVICON: &str = include_str!("../static/favicon.svg");

/// Whether `path` (without the base path) is one of the UI's page routes.
fn is_page(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segments.iter().skip(1).any(|s| s.is_empty()) {
        return false;
    }
    matches!(
        segments.as_slice(),
        [""] | ["nodes"]
            | ["counter"]
            | ["lookup"]
            | ["topics", _]
            | ["topics", _, _]
            | ["nodes", _]
    )
}

/// Escapes text for an HTML attribute value.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Where the page fetches `render` from, ending in `/`: empty without graphite, nsqadmin's own base path
/// with `--proxy-graphite`, otherwise graphite's URL.
fn graphite_base(opts: &crate::options::Options, base: &str) -> String {
    if opts.graphite_url.is_empty() {
        String::new()
    } else if opts.proxy_graphite {
        base.to_owned()
    } else {
        format!("{}/", opts.graphite_url.trim_end_matches('/'))
    }
}

/// The page with the server's settings filled in.
fn index(ctx: &Context) -> String {
    let opts = ctx.opts();
    let mut base = opts.base_path.trim_end_matches('/').to_owned();
    base.push('/');
    INDEX_HTML
        .replace("{{BASE}}", &escape(&base))
        .replace("{{VERSION}}", &escape(crate::NSQ_VERSION))
        .replace("{{GRAPHITE}}", &escape(&graphite_base(&opts, &base)))
        .replace("{{STATSD_PREFIX}}", &escape(&opts.statsd_prefix))
        .replace(
            "{{STATSD_COUNTER_FORMAT}}",
            &escape(&opts.statsd_counter_format),
        )
        .replace(
            "{{STATSD_GAUGE_FORMAT}}",
            &escape(&opts.statsd_gauge_format),
        )
        .replace(
            "{{STATSD_INTERVAL}}",
            &opts.statsd_interval.as_secs().to_string(),
        )
        .replace(
            "{{LOOKUPD}}",
            if opts.nsqlookupd_http_addresses.is_empty() {
                "false"
            } else {
                "true"
            },
        )
}

fn reply(content_type: &str, body: String) -> Response {
    let mut res = Response::new(Body::from(body));
    let headers = res.headers_mut();
    if let Ok(v) = content_type.parse() {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = "no-cache".parse() {
        headers.insert(header::CACHE_CONTROL, v);
    }
    res
}

/// Answers a UI request or the history API (`path` is without the base path); `None` when `path` is
/// neither, so the caller answers `404`.
pub fn answer(ctx: &Context, method: &Method, path: &str) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    if let Some(res) = crate::history::answer(ctx, path) {
        return Some(res);
    }
    if is_page(path) {
        return Some(reply("text/html; charset=utf-8", index(ctx)));
    }
    let (content_type, body) = match path.strip_prefix("/static/")? {
        "app.js" => ("application/javascript; charset=utf-8", APP_JS),
        "app.css" => ("text/css; charset=utf-8", APP_CSS),
        "favicon.svg" => ("image/svg+xml", FAVICON),
        _ => {
            let mut res = reply("text/plain; charset=utf-8", "NOT_FOUND".to_owned());
            *res.status_mut() = StatusCode::NOT_FOUND;
            return Some(res);
        }
    };
    Some(reply(content_type, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_routes() {
        for p in [
            "/",
            "/nodes",
            "/counter",
            "/lookup",
            "/topics/t",
            "/topics/t/c",
            "/nodes/h:1",
        ] {
            assert!(is_page(p), "{p}");
        }
        for p in [
            "/topics",
            "/topics/t/c/d",
            "/topics//c",
            "/api/topics",
            "/x",
        ] {
            assert!(!is_page(p), "{p}");
        }
    }

    #[test]
    fn graphite_base_follows_the_proxy_flag() {
        let mut opts = crate::options::Options::default();
        assert_eq!(graphite_base(&opts, "/admin/"), "");
        opts.graphite_url = "http://g:8080/".to_owned();
        assert_eq!(graphite_base(&opts, "/admin/"), "http://g:8080/");
        opts.proxy_graphite = true;
        assert_eq!(graphite_base(&opts, "/admin/"), "/admin/");
    }

    #[test]
    fn settings_are_escaped() {
        assert_eq!(escape(r#"/a"<b>&"#), "/a&quot;&lt;b&gt;&amp;");
        assert!(INDEX_HTML.contains("{{BASE}}"));
    }
}
