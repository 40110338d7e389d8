//! The nsqd configuration: every option this build knows, with the defaults of Go's nsqd.
//!
//! `Options` exists so the rest of the daemon reads one plain struct, whatever filled it in (the command line,
//! a `--config` file, or both). It also answers `GET /config/<name>`, because Go's nsqd exposes its
//! options over HTTP under their config-file names, and clients and tools rely on those names and encodings.

use std::time::Duration;

use md5::{Digest, Md5};
use serde_json::Value;

/// Every nsqd option this build knows, with Go nsqd's defaults. Durations are `std::time::Duration`.
///
/// Some options are accepted and stored but not acted on yet, because running without them loses nothing
/// the operator asked to keep and opens nothing they asked to close:
/// - `--statsd-*`: no metrics are sent;
/// - `--topology-region`, `--topology-zone`, `--enable-experiment`: reported, but delivery does not prefer
///   local consumers;
/// - `--queue-scan-worker-pool-max`, `--queue-scan-selection-count`: timeouts use timers, not a scanner;
/// - `--log-prefix`: log lines carry their own prefix;
/// - `--verbose`, `--worker-id`: deprecated in Go, where they do nothing either.
#[derive(Debug, Clone)]
pub struct Options {
    /// The node part of message IDs; Go's default hashes the hostname so nodes on different hosts differ.
    pub node_id: i64,
    /// The lowest level that gets logged.
    pub log_level: LogLevel,
    /// Text put in front of every log line.
    pub log_prefix: String,
    /// Where the TCP (V2 protocol) listener binds.
    pub tcp_address: String,
    /// Where the HTTP API listener binds.
    pub http_address: String,
    /// Where the HTTPS API listener binds (used only with a TLS certificate and key).
    pub https_address: String,
    /// The address this node registers with nsqlookupd, so consumers can reach it.
    pub broadcast_address: String,
    /// The TCP port registered with nsqlookupd; 0 means the port actually listened on.
    pub broadcast_tcp_port: u16,
    /// The HTTP port registered with nsqlookupd; 0 means the port actually listened on.
    pub broadcast_http_port: u16,
    /// The nsqlookupd daemons this node registers with; replaceable at run time over HTTP.
    pub nsqlookupd_tcp_addresses: Vec<String>,
    /// Where disk-backed queues and the metadata file live; empty means the working directory.
    pub data_path: String,
    /// How many messages each topic and channel keeps in memory before spilling to disk.
    pub mem_queue_size: i64,
    /// The size at which a disk queue rolls over to a new segment file.
    pub max_bytes_per_file: i64,
    /// How many disk queue writes happen between fsyncs.
    pub sync_every: i64,
    /// The longest time a disk queue goes without an fsync.
    pub sync_timeout: Duration,
    /// How often the queue scanner wakes to look for timed-out and deferred messages.
    pub queue_scan_interval: Duration,
    /// How often the queue scanner refreshes its list of channels.
    pub queue_scan_refresh_interval: Duration,
    /// How many channels the queue scanner samples on each pass.
    pub queue_scan_selection_count: i64,
    /// The most queue scan workers that run at once.
    pub queue_scan_worker_pool_max: i64,
    /// The share of dirty channels above which the queue scanner loops again without sleeping.
    pub queue_scan_dirty_percent: f64,
    /// How long a delivered message may stay unacknowledged before it is requeued.
    pub msg_timeout: Duration,
    /// The longest message timeout a client may ask for.
    pub max_msg_timeout: Duration,
    /// The largest single message body accepted.
    pub max_msg_size: i64,
    /// The largest command body (for example a whole MPUB) accepted.
    pub max_body_size: i64,
    /// The longest requeue or publish deferral a client may ask for.
    pub max_req_timeout: Duration,
    /// How long a client may stay silent before it is disconnected.
    pub client_timeout: Duration,
    /// The longest heartbeat interval a client may ask for.
    pub max_heartbeat_interval: Duration,
    /// The largest RDY count a client may set.
    pub max_rdy_count: i64,
    /// The largest output buffer a client may ask for.
    pub max_output_buffer_size: i64,
    /// The longest output buffer flush delay a client may ask for.
    pub max_output_buffer_timeout: Duration,
    /// The shortest output buffer flush delay a client may ask for.
    pub min_output_buffer_timeout: Duration,
    /// The output buffer flush delay a client gets when it does not ask.
    pub output_buffer_timeout: Duration,
    /// The most consumers one channel may have; 0 means unlimited.
    pub max_channel_consumers: i64,
    /// The prefix of statsd keys; `%s` is replaced by the node's host key (see `statsd_prefix_with_host`).
    pub statsd_prefix: String,
    /// The end-to-end latency percentiles to track, sorted descending as Go stores them.
    pub e2e_processing_latency_percentiles: Vec<f64>,
    /// The time window the latency percentiles cover.
    pub e2e_processing_latency_window_time: Duration,
    /// Whether clients may negotiate deflate compression.
    pub deflate: bool,
    /// The highest deflate level a client may negotiate.
    pub max_deflate_level: i64,
    /// Whether clients may negotiate snappy compression.
    pub snappy: bool,
    /// Go's TLS requirement level: `TLS_NOT_REQUIRED`, `TLS_REQUIRED_EXCEPT_HTTP` or `TLS_REQUIRED`.
    pub tls_required: i64,
    /// The lowest TLS version accepted, as the TLS wire number (0x0301 is TLS 1.0).
    pub tls_min_version: u16,
    /// Path of the TLS certificate.
    pub tls_cert: String,
    /// Path of the TLS private key.
    pub tls_key: String,
    /// Path of the CA file used to verify client certificates.
    pub tls_root_ca_file: String,
    /// Client certificate policy: empty, `require` or `require-verify`.
    pub tls_client_auth_policy: String,
    /// The auth servers asked about AUTH secrets; empty means auth is off.
    pub auth_http_addresses: Vec<String>,
    /// The HTTP method used to query the auth servers: `get` or `post`.
    pub auth_http_request_method: String,
    /// Connect timeout for outgoing HTTP requests (auth servers).
    pub http_client_connect_timeout: Duration,
    /// Whole-request timeout for outgoing HTTP requests (auth servers).
    pub http_client_request_timeout: Duration,
    /// Where statsd metrics go; empty means statsd is off.
    pub statsd_address: String,
    /// How often metrics are pushed to statsd.
    pub statsd_interval: Duration,
    /// Whether memory statistics are pushed to statsd.
    pub statsd_mem_stats: bool,
    /// The largest UDP datagram sent to statsd.
    pub statsd_udp_packet_size: i64,
    /// Whether ephemeral topics and channels are left out of statsd.
    pub statsd_exclude_ephemeral: bool,
    /// The region this node reports, for topology-aware consumers.
    pub topology_region: String,
    /// The zone this node reports, for topology-aware consumers.
    pub topology_zone: String,
    /// Experimental features switched on by name.
    pub enable_experiment: Vec<String>,
    /// The `--config` file path; empty when none was given. The file has already been applied to the other
    /// fields by the time anyone reads them. Go does not expose it under `/config`.
    pub config_file: String,
    /// `--verbose` was given. Go kept the flag for old command lines and gives it no effect (`--log-level`
    /// replaced it); so do we, but `main` can warn that it does nothing. Not a Go config name.
    pub verbose: bool,
    /// `--worker-id` was given. Go kept it as a boolean that does nothing (`--node-id` replaced it); so do we.
    /// Not a Go config name.
    pub worker_id: bool,
}

/// `tls_required` value: TLS is optional (Go's `TLSNotRequired`).
pub const TLS_NOT_REQUIRED: i64 = 0;
/// `tls_required` value: TCP clients must upgrade to TLS; plain HTTP stays open (Go's `TLSRequiredExceptHTTP`,
/// `--tls-required=tcp-https`).
pub const TLS_REQUIRED_EXCEPT_HTTP: i64 = 1;
/// `tls_required` value: TLS everywhere; plain HTTP answers 403 `TLS_REQUIRED` (Go's `TLSRequired`).
pub const TLS_REQUIRED: i64 = 2;

impl Default for Options {
    fn default() -> Self {
        let hostname = os_hostname();
        Options {
            node_id: node_id_for_hostname(&hostname),
            log_level: LogLevel::Info,
            log_prefix: "[nsqd] ".to_owned(),
            tcp_address: "0.0.0.0:4150".to_owned(),
            http_address: "0.0.0.0:4151".to_owned(),
            https_address: "0.0.0.0:4152".to_owned(),
            broadcast_address: hostname,
            broadcast_tcp_port: 0,
            broadcast_http_port: 0,
            nsqlookupd_tcp_addresses: Vec::new(),
            data_path: String::new(),
            mem_queue_size: 10_000,
            max_bytes_per_file: 100 * 1024 * 1024,
            sync_every: 2500,
            sync_timeout: Duration::from_secs(2),
            queue_scan_interval: Duration::from_millis(100),
            queue_scan_refresh_interval: Duration::from_secs(5),
            queue_scan_selection_count: 20,
            queue_scan_worker_pool_max: 4,
            queue_scan_dirty_percent: 0.25,
            msg_timeout: Duration::from_secs(60),
            max_msg_timeout: Duration::from_secs(15 * 60),
            max_msg_size: 1024 * 1024,
            max_body_size: 5 * 1024 * 1024,
            max_req_timeout: Duration::from_secs(60 * 60),
            client_timeout: Duration::from_secs(60),
            max_heartbeat_interval: Duration::from_secs(60),
            max_rdy_count: 2500,
            max_output_buffer_size: 64 * 1024,
            max_output_buffer_timeout: Duration::from_secs(30),
            min_output_buffer_timeout: Duration::from_millis(25),
            output_buffer_timeout: Duration::from_millis(250),
            max_channel_consumers: 0,
            statsd_prefix: "nsq.%s".to_owned(),
            e2e_processing_latency_percentiles: Vec::new(),
            e2e_processing_latency_window_time: Duration::from_secs(10 * 60),
            deflate: true,
            max_deflate_level: 6,
            snappy: true,
            tls_required: 0,
            tls_min_version: 0x0301,
            tls_cert: String::new(),
            tls_key: String::new(),
            tls_root_ca_file: String::new(),
            tls_client_auth_policy: String::new(),
            auth_http_addresses: Vec::new(),
            auth_http_request_method: "get".to_owned(),
            http_client_connect_timeout: Duration::from_secs(2),
            http_client_request_timeout: Duration::from_secs(5),
            statsd_address: String::new(),
            statsd_interval: Duration::from_secs(60),
            statsd_mem_stats: true,
            statsd_udp_packet_size: 508,
            statsd_exclude_ephemeral: false,
            topology_region: String::new(),
            topology_zone: String::new(),
            enable_experiment: Vec::new(),
            config_file: String::new(),
            verbose: false,
            worker_id: false,
        }
    }
}

/// Log verbosity. The numbers are Go's `lg.LogLevel` values, which `GET /config/log_level` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Fatal = 5,
}

impl LogLevel {
    /// Parses a level name the way Go does: case-insensitive, one of debug, info, warn, error, fatal.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warn" => Some(LogLevel::Warn),
            "error" => Some(LogLevel::Error),
            "fatal" => Some(LogLevel::Fatal),
            _ => None,
        }
    }

    /// The lowercase name, as accepted by `parse`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Fatal => "fatal",
        }
    }
}

/// What `GET /config/<name>` answers, encoded the way Go's nsqd encodes it.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    /// A string option: Go sends it raw as `text/plain`.
    Text(String),
    /// Anything else, sent as JSON: numbers, booleans and arrays; durations as integer nanoseconds, the log
    /// level as its number (2 is info).
    Json(Value),
}

impl Options {
    /// Looks an option up by its Go config name, or returns `None` (Go answers 400 `INVALID_OPTION`).
    ///
    /// Config names are the flag names with `-` turned into `_`, except `id` (for `--node-id`),
    /// `nsqlookupd_tcp_addresses`, `auth_http_addresses`, `e2e_processing_latency_percentiles` and
    /// `enable_experiment`. Go only looks at struct fields that carry a flag tag, so the options without a
    /// flag in Go (`queue_scan_interval`, `queue_scan_refresh_interval`, `queue_scan_dirty_percent`,
    /// `client_timeout`) are unknown names there, and here too.
    pub fn config_value(&self, name: &str) -> Option<ConfigValue> {
        let value = match name {
            "id" => json(self.node_id),
            "log_level" => json(self.log_level as i64),
            "log_prefix" => text(&self.log_prefix),
            "tcp_address" => text(&self.tcp_address),
            "http_address" => text(&self.http_address),
            "https_address" => text(&self.https_address),
            "broadcast_address" => text(&self.broadcast_address),
            "broadcast_tcp_port" => json(self.broadcast_tcp_port),
            "broadcast_http_port" => json(self.broadcast_http_port),
            "nsqlookupd_tcp_addresses" => json(self.nsqlookupd_tcp_addresses.clone()),
            "auth_http_addresses" => json(self.auth_http_addresses.clone()),
            "auth_http_request_method" => text(&self.auth_http_request_method),
            "http_client_connect_timeout" => nanos(self.http_client_connect_timeout),
            "http_client_request_timeout" => nanos(self.http_client_request_timeout),
            "topology_region" => text(&self.topology_region),
            "topology_zone" => text(&self.topology_zone),
            "data_path" => text(&self.data_path),
            "mem_queue_size" => json(self.mem_queue_size),
            "max_bytes_per_file" => json(self.max_bytes_per_file),
            "sync_every" => json(self.sync_every),
            "sync_timeout" => nanos(self.sync_timeout),
            "queue_scan_selection_count" => json(self.queue_scan_selection_count),
            "queue_scan_worker_pool_max" => json(self.queue_scan_worker_pool_max),
            "msg_timeout" => nanos(self.msg_timeout),
            "max_msg_timeout" => nanos(self.max_msg_timeout),
            "max_msg_size" => json(self.max_msg_size),
            "max_body_size" => json(self.max_body_size),
            "max_req_timeout" => nanos(self.max_req_timeout),
            "max_heartbeat_interval" => nanos(self.max_heartbeat_interval),
            "max_rdy_count" => json(self.max_rdy_count),
            "max_output_buffer_size" => json(self.max_output_buffer_size),
            "max_output_buffer_timeout" => nanos(self.max_output_buffer_timeout),
            "min_output_buffer_timeout" => nanos(self.min_output_buffer_timeout),
            "output_buffer_timeout" => nanos(self.output_buffer_timeout),
            "max_channel_consumers" => json(self.max_channel_consumers),
            "statsd_address" => text(&self.statsd_address),
            "statsd_prefix" => ConfigValue::Text(self.statsd_prefix_with_host()),
            "statsd_interval" => nanos(self.statsd_interval),
            "statsd_mem_stats" => json(self.statsd_mem_stats),
            "statsd_udp_packet_size" => json(self.statsd_udp_packet_size),
            "statsd_exclude_ephemeral" => json(self.statsd_exclude_ephemeral),
            "e2e_processing_latency_window_time" => nanos(self.e2e_processing_latency_window_time),
            "e2e_processing_latency_percentiles" => ConfigValue::Json(Value::Array(
                self.e2e_processing_latency_percentiles
                    .iter()
                    .map(|&p| go_json_float(p))
                    .collect(),
            )),
            "tls_cert" => text(&self.tls_cert),
            "tls_key" => text(&self.tls_key),
            "tls_client_auth_policy" => text(&self.tls_client_auth_policy),
            "tls_root_ca_file" => text(&self.tls_root_ca_file),
            "tls_required" => json(self.tls_required),
            "tls_min_version" => json(self.tls_min_version),
            "deflate" => json(self.deflate),
            "max_deflate_level" => json(self.max_deflate_level),
            "snappy" => json(self.snappy),
            "enable_experiment" => json(self.enable_experiment.clone()),
            _ => return None,
        };
        Some(value)
    }

    /// The statsd prefix with `%s` replaced by this node's host key and a trailing `.` ensured, as Go's nsqd
    /// rewrites it at start-up (and then reports it from `GET /config/statsd_prefix`).
    ///
    /// The host key is `<broadcast_address>:<port>` with `.` and `:` turned into `_`; the port is
    /// `broadcast_http_port`, or the port written in `http_address` when that is 0. An empty prefix stays empty.
    /// Applying it twice changes nothing, so it is safe to store the result back into `statsd_prefix`.
    pub fn statsd_prefix_with_host(&self) -> String {
        if self.statsd_prefix.is_empty() {
            return String::new();
        }
        let port = if self.broadcast_http_port != 0 {
            self.broadcast_http_port.to_string()
        } else {
            self.http_address
                .rsplit_once(':')
                .map(|(_, port)| port.to_owned())
                .unwrap_or_default()
        };
        // Go joins with net.JoinHostPort, which brackets IPv6 hosts.
        let host = if self.broadcast_address.contains(':') {
            format!("[{}]:{port}", self.broadcast_address)
        } else {
            format!("{}:{port}", self.broadcast_address)
        };
        let host_key = host.replace(['.', ':'], "_");
        let mut prefix = self.statsd_prefix.replace("%s", &host_key);
        if !prefix.ends_with('.') {
            prefix.push('.');
        }
        prefix
    }
}

fn text(s: &str) -> ConfigValue {
    ConfigValue::Text(s.to_owned())
}

fn json(v: impl Into<Value>) -> ConfigValue {
    ConfigValue::Json(v.into())
}

/// Go's `time.Duration` is an int64 of nanoseconds, and that is what its JSON encoder writes.
fn nanos(d: Duration) -> ConfigValue {
    ConfigValue::Json(Value::from(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
}

/// Encodes a float as Go's `encoding/json` does for the common cases: whole numbers carry no `.0`
/// (Go writes `1`, serde_json would write `1.0`).
fn go_json_float(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        // The range check above makes this conversion exact.
        return Value::from(v as i64);
    }
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// The OS hostname, as Go's `os.Hostname`. Go exits when it cannot be read; a default value has no way to
/// fail, so this falls back to `localhost`.
fn os_hostname() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Go's default node ID: the IEEE CRC-32 of the 16-byte MD5 digest of the hostname, modulo 1024.
fn node_id_for_hostname(hostname: &str) -> i64 {
    let digest = Md5::digest(hostname.as_bytes());
    i64::from(crc32fast::hash(&digest) % 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options of the golden capture's `main` instance: `--broadcast-address=127.0.0.1 --node-id=1
    /// --e2e-processing-latency-percentile=0.5,0.99`, its HTTP port and its temporary data path.
    fn golden_main() -> Options {
        Options {
            tcp_address: "127.0.0.1:54636".to_owned(),
            http_address: "127.0.0.1:54637".to_owned(),
            broadcast_address: "127.0.0.1".to_owned(),
            node_id: 1,
            data_path: "/tmp/nsqd-data-7t2h1ajv".to_owned(),
            e2e_processing_latency_percentiles: vec![0.99, 0.5],
            ..Options::default()
        }
    }

    /// The response body nsqd writes for a value.
    fn body(name: &str) -> Option<String> {
        golden_main().config_value(name).map(|v| match v {
            ConfigValue::Text(s) => s,
            ConfigValue::Json(v) => serde_json::to_string(&v).unwrap(),
        })
    }

    fn is_json(name: &str) -> bool {
        matches!(golden_main().config_value(name), Some(ConfigValue::Json(_)))
    }

    #[test]
    fn golden_config_get_nsqlookupd_tcp_addresses() {
        assert_eq!(body("nsqlookupd_tcp_addresses").as_deref(), Some("[]"));
        assert!(is_json("nsqlookupd_tcp_addresses"));
    }

    #[test]
    fn golden_config_get_log_level() {
        assert_eq!(body("log_level").as_deref(), Some("2"));
        assert!(is_json("log_level"));
    }

    #[test]
    fn golden_config_get_mem_queue_size() {
        assert_eq!(body("mem_queue_size").as_deref(), Some("10000"));
    }

    #[test]
    fn golden_config_get_msg_timeout() {
        assert_eq!(body("msg_timeout").as_deref(), Some("60000000000"));
    }

    #[test]
    fn golden_config_get_max_req_timeout() {
        assert_eq!(body("max_req_timeout").as_deref(), Some("3600000000000"));
    }

    #[test]
    fn golden_config_get_e2e_processing_latency_percentiles() {
        assert_eq!(
            body("e2e_processing_latency_percentiles").as_deref(),
            Some("[0.99,0.5]")
        );
    }

    #[test]
    fn golden_config_get_broadcast_address() {
        assert_eq!(
            golden_main().config_value("broadcast_address"),
            Some(ConfigValue::Text("127.0.0.1".to_owned()))
        );
    }

    #[test]
    fn golden_config_get_tls_min_version() {
        assert_eq!(body("tls_min_version").as_deref(), Some("769"));
    }

    #[test]
    fn golden_config_get_tls_required() {
        assert_eq!(body("tls_required").as_deref(), Some("0"));
        assert!(is_json("tls_required"));
    }

    #[test]
    fn golden_config_get_data_path() {
        assert_eq!(
            golden_main().config_value("data_path"),
            Some(ConfigValue::Text("/tmp/nsqd-data-7t2h1ajv".to_owned()))
        );
    }

    #[test]
    fn golden_config_get_id() {
        assert_eq!(body("id").as_deref(), Some("1"));
    }

    #[test]
    fn golden_config_get_node_id_is_not_a_name() {
        assert_eq!(body("node_id"), None);
    }

    #[test]
    fn golden_config_get_statsd_prefix() {
        assert_eq!(
            golden_main().config_value("statsd_prefix"),
            Some(ConfigValue::Text("nsq.127_0_0_1_54637.".to_owned()))
        );
    }

    #[test]
    fn golden_config_get_deflate() {
        assert_eq!(body("deflate").as_deref(), Some("true"));
    }

    #[test]
    fn golden_config_get_max_deflate_level() {
        assert_eq!(body("max_deflate_level").as_deref(), Some("6"));
    }

    #[test]
    fn golden_config_get_enable_experiment() {
        assert_eq!(body("enable_experiment").as_deref(), Some("[]"));
    }

    #[test]
    fn golden_config_get_unknown() {
        assert_eq!(body("bogus_option"), None);
    }

    #[test]
    fn golden_config_get_nsqlookupd_tcp_addresses_after_put() {
        let mut opts = golden_main();
        opts.nsqlookupd_tcp_addresses = vec!["127.0.0.1:56289".to_owned()];
        assert_eq!(
            opts.config_value("nsqlookupd_tcp_addresses"),
            Some(ConfigValue::Json(serde_json::json!(["127.0.0.1:56289"])))
        );
    }

    #[test]
    fn every_go_config_name_is_known() {
        let names = [
            "id",
            "log_level",
            "log_prefix",
            "tcp_address",
            "http_address",
            "https_address",
            "broadcast_address",
            "broadcast_tcp_port",
            "broadcast_http_port",
            "nsqlookupd_tcp_addresses",
            "auth_http_addresses",
            "auth_http_request_method",
            "http_client_connect_timeout",
            "http_client_request_timeout",
            "topology_region",
            "topology_zone",
            "data_path",
            "mem_queue_size",
            "max_bytes_per_file",
            "sync_every",
            "sync_timeout",
            "queue_scan_selection_count",
            "queue_scan_worker_pool_max",
            "msg_timeout",
            "max_msg_timeout",
            "max_msg_size",
            "max_body_size",
            "max_req_timeout",
            "max_heartbeat_interval",
            "max_rdy_count",
            "max_output_buffer_size",
            "max_output_buffer_timeout",
            "min_output_buffer_timeout",
            "output_buffer_timeout",
            "max_channel_consumers",
            "statsd_address",
            "statsd_prefix",
            "statsd_interval",
            "statsd_mem_stats",
            "statsd_udp_packet_size",
            "statsd_exclude_ephemeral",
            "e2e_processing_latency_window_time",
            "e2e_processing_latency_percentiles",
            "tls_cert",
            "tls_key",
            "tls_client_auth_policy",
            "tls_root_ca_file",
            "tls_required",
            "tls_min_version",
            "deflate",
            "max_deflate_level",
            "snappy",
            "enable_experiment",
        ];
        let opts = Options::default();
        for name in names {
            assert!(opts.config_value(name).is_some(), "{name} should be known");
        }
    }

    #[test]
    fn options_without_a_go_flag_are_not_config_names() {
        let opts = Options::default();
        for name in [
            "queue_scan_interval",
            "queue_scan_refresh_interval",
            "queue_scan_dirty_percent",
            "client_timeout",
            "node_id",
            "lookupd_tcp_address",
        ] {
            assert_eq!(opts.config_value(name), None, "{name}");
        }
    }

    #[test]
    fn flags_without_a_go_options_field_are_not_config_names() {
        // Go's --config, --verbose and --worker-id are flags only; its Options struct has no field for them.
        let opts = Options {
            config_file: "x.cfg".to_owned(),
            verbose: true,
            worker_id: true,
            ..Options::default()
        };
        for name in ["config", "config_file", "verbose", "worker_id"] {
            assert_eq!(opts.config_value(name), None, "{name}");
        }
    }

    #[test]
    fn config_values_have_go_encodings() {
        let opts = Options::default();
        let cases: [(&str, Value); 10] = [
            ("sync_timeout", Value::from(2_000_000_000u64)),
            ("min_output_buffer_timeout", Value::from(25_000_000u64)),
            ("max_bytes_per_file", Value::from(104_857_600)),
            ("statsd_mem_stats", Value::Bool(true)),
            ("statsd_exclude_ephemeral", Value::Bool(false)),
            ("statsd_udp_packet_size", Value::from(508)),
            ("max_channel_consumers", Value::from(0)),
            ("broadcast_tcp_port", Value::from(0)),
            ("auth_http_addresses", Value::Array(Vec::new())),
            (
                "e2e_processing_latency_percentiles",
                Value::Array(Vec::new()),
            ),
        ];
        for (name, want) in cases {
            assert_eq!(
                opts.config_value(name),
                Some(ConfigValue::Json(want)),
                "{name}"
            );
        }
        for (name, want) in [
            ("log_prefix", "[nsqd] "),
            ("auth_http_request_method", "get"),
            ("statsd_address", ""),
            ("tls_cert", ""),
        ] {
            assert_eq!(
                opts.config_value(name),
                Some(ConfigValue::Text(want.to_owned())),
                "{name}"
            );
        }
    }

    #[test]
    fn whole_percentiles_encode_like_go() {
        let opts = Options {
            e2e_processing_latency_percentiles: vec![1.0, 0.95],
            ..golden_main()
        };
        let Some(ConfigValue::Json(v)) = opts.config_value("e2e_processing_latency_percentiles")
        else {
            panic!("percentiles should be JSON");
        };
        assert_eq!(serde_json::to_string(&v).unwrap(), "[1,0.95]");
    }

    #[test]
    fn statsd_prefix_rules() {
        let mut opts = golden_main();
        opts.broadcast_http_port = 9000;
        assert_eq!(opts.statsd_prefix_with_host(), "nsq.127_0_0_1_9000.");

        opts.broadcast_address = "::1".to_owned();
        assert_eq!(opts.statsd_prefix_with_host(), "nsq.[__1]_9000.");

        opts.statsd_prefix = "custom".to_owned();
        assert_eq!(opts.statsd_prefix_with_host(), "custom.");

        opts.statsd_prefix = String::new();
        assert_eq!(opts.statsd_prefix_with_host(), "");

        // Storing the result back must not change it again.
        let mut opts = golden_main();
        opts.statsd_prefix = opts.statsd_prefix_with_host();
        assert_eq!(opts.statsd_prefix_with_host(), "nsq.127_0_0_1_54637.");
    }

    #[test]
    fn default_node_id_is_crc32_of_md5_mod_1024() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e; its IEEE CRC-32 is worked out independently here.
        let digest: [u8; 16] = [
            0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04, 0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8,
            0x42, 0x7e,
        ];
        assert_eq!(
            node_id_for_hostname(""),
            i64::from(reference_crc32(&digest) % 1024)
        );
        let id = Options::default().node_id;
        assert!((0..1024).contains(&id));
        assert_eq!(id, node_id_for_hostname(&os_hostname()));
    }

    /// A bit-at-a-time IEEE CRC-32, to check the library call against.
    fn reference_crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn log_levels_parse_case_insensitively() {
        for (s, want) in [
            ("debug", LogLevel::Debug),
            ("INFO", LogLevel::Info),
            ("Warn", LogLevel::Warn),
            ("error", LogLevel::Error),
            ("FATAL", LogLevel::Fatal),
        ] {
            assert_eq!(LogLevel::parse(s), Some(want));
            assert_eq!(LogLevel::parse(want.as_str()), Some(want));
        }
        assert_eq!(LogLevel::parse("warning"), None);
        assert_eq!(LogLevel::parse(""), None);
        assert!(LogLevel::Debug < LogLevel::Fatal);
    }
}
