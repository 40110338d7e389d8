//! nsqadmin's options, with Go's defaults (Go's `nsqadmin.Options` and `NewOptions`).

use std::time::Duration;

/// Everything nsqadmin can be configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Lowest level logged: debug, info, warn, error or fatal.
    pub log_level: String,
    /// Text in front of each log line (Go's default `[nsqadmin] `).
    pub log_prefix: String,
    /// `<addr>:<port>` of the HTTP listener.
    pub http_address: String,
    /// The URL prefix every route lives under.
    pub base_path: String,
    /// Graphite's HTTP address, for the UI's graphs.
    pub graphite_url: String,
    /// Whether graphite requests are proxied through nsqadmin (`/render`).
    pub proxy_graphite: bool,
    /// The statsd counter name format the UI builds graphite targets with.
    pub statsd_counter_format: String,
    /// The statsd gauge name format.
    pub statsd_gauge_format: String,
    /// The statsd prefix nsqd uses.
    pub statsd_prefix: String,
    /// The statsd interval nsqd uses (graphite rates are divided by it).
    pub statsd_interval: Duration,
    /// nsqlookupd HTTP addresses; when any is set, nsqd addresses are ignored for discovery.
    pub nsqlookupd_http_addresses: Vec<String>,
    /// nsqd HTTP addresses, used when no lookupd is given.
    pub nsqd_http_addresses: Vec<String>,
    /// Connect timeout of requests to lookupd and nsqd.
    pub http_client_connect_timeout: Duration,
    /// Whole-request timeout of requests to lookupd and nsqd.
    pub http_client_request_timeout: Duration,
    /// Whether https upstreams' certificates are accepted unchecked.
    pub http_client_tls_insecure_skip_verify: bool,
    /// PEM file whose certificates are the only roots https upstreams are checked against (empty: the
    /// system roots).
    pub http_client_tls_root_ca_file: String,
    /// PEM client certificate presented to https upstreams (with `http_client_tls_key`).
    pub http_client_tls_cert: String,
    /// PEM private key of `http_client_tls_cert`.
    pub http_client_tls_key: String,
    /// The CIDR `/config` requests must come from (empty: anyone).
    pub allow_config_from_cidr: String,
    /// Where admin actions are POSTed as JSON (empty: nowhere).
    pub notification_http_endpoint: String,
    /// The request header that names the user for the admin check.
    pub acl_http_header: String,
    /// Users allowed privileged actions; empty means everyone.
    pub admin_users: Vec<String>,
    /// Accepted for compatibility; the UI is not served yet.
    pub dev_static_dir: String,
    /// `--config`: the TOML file read under the command line's flags; empty when none was given.
    pub config_file: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            log_level: "info".to_owned(),
            log_prefix: "[nsqadmin] ".to_owned(),
            http_address: "0.0.0.0:4171".to_owned(),
            base_path: "/".to_owned(),
            graphite_url: String::new(),
            proxy_graphite: false,
            statsd_counter_format: "stats.counters.%s.count".to_owned(),
            statsd_gauge_format: "stats.gauges.%s".to_owned(),
            statsd_prefix: "nsq.%s".to_owned(),
            statsd_interval: Duration::from_secs(60),
            nsqlookupd_http_addresses: Vec::new(),
            nsqd_http_addresses: Vec::new(),
            http_client_connect_timeout: Duration::from_secs(2),
            http_client_request_timeout: Duration::from_secs(5),
            http_client_tls_insecure_skip_verify: false,
            http_client_tls_root_ca_file: String::new(),
            http_client_tls_cert: String::new(),
            http_client_tls_key: String::new(),
            allow_config_from_cidr: "127.0.0.1/8".to_owned(),
            notification_http_endpoint: String::new(),
            acl_http_header: "X-Forwarded-User".to_owned(),
            admin_users: Vec::new(),
            dev_static_dir: String::new(),
            config_file: String::new(),
        }
    }
}

/// Whether `level` is one of Go's level names (case-insensitive).
pub fn is_log_level(level: &str) -> bool {
    matches!(
        level.to_ascii_lowercase().as_str(),
        "debug" | "info" | "warn" | "error" | "fatal"
    )
}

/// The OS hostname (Go's `os.Hostname()`), empty if it cannot be read.
pub fn os_hostname() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}
