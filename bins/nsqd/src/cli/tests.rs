//! Tests of the command line: every flag in every spelling Go accepts, Go's error wording, and the checks
//! Go's nsqd makes at start-up.

use super::*;
use crate::options::{TLS_NOT_REQUIRED, TLS_REQUIRED, TLS_REQUIRED_EXCEPT_HTTP};

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn run(list: &[&str]) -> Options {
    match parse_args(args(list)) {
        Ok(CliAction::Run(opts)) => opts,
        other => panic!("{list:?} gave {other:?}"),
    }
}

fn err(list: &[&str]) -> String {
    match parse_args(args(list)) {
        Err(e) => e.to_string(),
        other => panic!("{list:?} should fail, gave {other:?}"),
    }
}

/// Every spelling Go accepts for a flag that takes a value.
fn spellings(flag: &str, value: &str) -> [Vec<String>; 4] {
    [
        args(&[&format!("-{flag}"), value]),
        args(&[&format!("-{flag}={value}")]),
        args(&[&format!("--{flag}"), value]),
        args(&[&format!("--{flag}={value}")]),
    ]
}

#[test]
fn every_flag_in_all_four_spellings() {
    type Check = fn(&Options) -> bool;
    let cases: &[(&str, &str, Check)] = &[
        ("tcp-address", "127.0.0.1:1", |o| {
            o.tcp_address == "127.0.0.1:1"
        }),
        ("http-address", ":4000", |o| o.http_address == ":4000"),
        ("https-address", "[::1]:2", |o| o.https_address == "[::1]:2"),
        ("broadcast-address", "10.1.2.3", |o| {
            o.broadcast_address == "10.1.2.3"
        }),
        ("node-id", "1023", |o| o.node_id == 1023),
        ("data-path", "/var/lib/nsq", |o| {
            o.data_path == "/var/lib/nsq"
        }),
        ("mem-queue-size", "0", |o| o.mem_queue_size == 0),
        ("msg-timeout", "1m30s", |o| {
            o.msg_timeout == Duration::from_secs(90)
        }),
        ("max-msg-timeout", "1h", |o| {
            o.max_msg_timeout == Duration::from_secs(3600)
        }),
        ("max-msg-size", "2048", |o| o.max_msg_size == 2048),
        ("max-body-size", "0x1000", |o| o.max_body_size == 4096),
        ("max-req-timeout", "90s", |o| {
            o.max_req_timeout == Duration::from_secs(90)
        }),
        ("max-rdy-count", "100", |o| o.max_rdy_count == 100),
        ("max-heartbeat-interval", "5s", |o| {
            o.max_heartbeat_interval == Duration::from_secs(5)
        }),
        ("max-output-buffer-size", "1_024", |o| {
            o.max_output_buffer_size == 1024
        }),
        ("max-output-buffer-timeout", "2s", |o| {
            o.max_output_buffer_timeout == Duration::from_secs(2)
        }),
        ("min-output-buffer-timeout", "10ms", |o| {
            o.min_output_buffer_timeout == Duration::from_millis(10)
        }),
        ("output-buffer-timeout", "1.5s", |o| {
            o.output_buffer_timeout == Duration::from_millis(1500)
        }),
        ("max-channel-consumers", "7", |o| {
            o.max_channel_consumers == 7
        }),
        ("e2e-processing-latency-percentile", "0.9", |o| {
            o.e2e_processing_latency_percentiles == [0.9]
        }),
        ("e2e-processing-latency-window-time", "1m", |o| {
            o.e2e_processing_latency_window_time == Duration::from_secs(60)
        }),
        ("log-level", "DEBUG", |o| o.log_level == LogLevel::Debug),
        (
            "config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/nsqd.cfg.example"),
            |o| o.config_file.ends_with("/docs/nsqd.cfg.example"),
        ),
        ("log-prefix", "[x] ", |o| o.log_prefix == "[x] "),
        ("broadcast-tcp-port", "4250", |o| {
            o.broadcast_tcp_port == 4250
        }),
        ("broadcast-http-port", "0x10", |o| {
            o.broadcast_http_port == 16
        }),
        ("lookupd-tcp-address", "127.0.0.1:4160", |o| {
            o.nsqlookupd_tcp_addresses == ["127.0.0.1:4160"]
        }),
        ("auth-http-address", "http://a:1/auth", |o| {
            o.auth_http_addresses == ["http://a:1/auth"]
        }),
        ("auth-http-request-method", "post", |o| {
            o.auth_http_request_method == "post"
        }),
        ("http-client-connect-timeout", "3s", |o| {
            o.http_client_connect_timeout == Duration::from_secs(3)
        }),
        ("http-client-request-timeout", "7s", |o| {
            o.http_client_request_timeout == Duration::from_secs(7)
        }),
        ("topology-region", "eu", |o| o.topology_region == "eu"),
        ("topology-zone", "eu-1a", |o| o.topology_zone == "eu-1a"),
        ("enable-experiment", "topology-aware-consumption", |o| {
            o.enable_experiment == ["topology-aware-consumption"]
        }),
        ("max-bytes-per-file", "1024", |o| {
            o.max_bytes_per_file == 1024
        }),
        ("sync-every", "10", |o| o.sync_every == 10),
        ("sync-timeout", "100ms", |o| {
            o.sync_timeout == Duration::from_millis(100)
        }),
        ("queue-scan-worker-pool-max", "8", |o| {
            o.queue_scan_worker_pool_max == 8
        }),
        ("queue-scan-selection-count", "40", |o| {
            o.queue_scan_selection_count == 40
        }),
        ("statsd-address", "127.0.0.1:8125", |o| {
            o.statsd_address == "127.0.0.1:8125"
        }),
        ("statsd-prefix", "custom", |o| o.statsd_prefix == "custom"),
        ("statsd-interval", "10s", |o| {
            o.statsd_interval == Duration::from_secs(10)
        }),
        ("statsd-udp-packet-size", "1432", |o| {
            o.statsd_udp_packet_size == 1432
        }),
        ("tls-cert", "/x/server.pem", |o| {
            o.tls_cert == "/x/server.pem"
        }),
        ("tls-key", "/x/server.key", |o| o.tls_key == "/x/server.key"),
        ("tls-root-ca-file", "/x/ca.pem", |o| {
            o.tls_root_ca_file == "/x/ca.pem"
        }),
        ("tls-client-auth-policy", "require-verify", |o| {
            o.tls_client_auth_policy == "require-verify" && o.tls_required == TLS_REQUIRED
        }),
        ("tls-min-version", "TLS1.2", |o| o.tls_min_version == 0x0303),
        ("max-deflate-level", "9", |o| o.max_deflate_level == 9),
    ];
    // Every flag must have a case here or in the boolean table; the two flags with tests of their own (an
    // action and a boolean-like enum) are the exceptions.
    let covered: Vec<&str> = cases
        .iter()
        .map(|c| c.0)
        .chain(BOOL_FLAGS.iter().map(|b| b.0))
        .chain(["version", "tls-required"])
        .collect();
    for spec in FLAGS {
        assert!(
            covered.contains(&spec.name),
            "no test case for -{}",
            spec.name
        );
    }
    let defaults = Options::default();
    for &(flag, value, check) in cases {
        assert!(!check(&defaults), "-{flag}={value} is the default");
        for argv in spellings(flag, value) {
            // A certificate pair first, so the TLS flags pass Go's start-up checks.
            let argv: Vec<String> = args(&["--tls-cert=base.pem", "--tls-key=base.key"])
                .into_iter()
                .chain(argv)
                .collect();
            let opts = match parse_args(argv.clone()) {
                Ok(CliAction::Run(opts)) => opts,
                other => panic!("{argv:?} gave {other:?}"),
            };
            assert!(check(&opts), "{argv:?} did not set the option");
        }
    }
}

/// Reads one boolean option back.
type BoolGetter = fn(&Options) -> bool;

/// The boolean flags that are options, with a way to read each back.
const BOOL_FLAGS: &[(&str, BoolGetter)] = &[
    ("verbose", |o| o.verbose),
    ("worker-id", |o| o.worker_id),
    ("statsd-mem-stats", |o| o.statsd_mem_stats),
    ("statsd-exclude-ephemeral", |o| o.statsd_exclude_ephemeral),
    ("deflate", |o| o.deflate),
    ("snappy", |o| o.snappy),
];

#[test]
fn bool_option_flags_in_all_go_forms() {
    for &(flag, get) in BOOL_FLAGS {
        for dashes in ["-", "--"] {
            let on = |suffix: &str| get(&run(&[&format!("{dashes}{flag}{suffix}")]));
            for suffix in ["", "=true", "=1", "=t", "=T", "=TRUE", "=True"] {
                assert!(on(suffix), "{dashes}{flag}{suffix} should set it");
            }
            for suffix in ["=false", "=0", "=f", "=F", "=FALSE", "=False"] {
                assert!(!on(suffix), "{dashes}{flag}{suffix} should clear it");
            }
            assert_eq!(
                err(&[&format!("{dashes}{flag}=yes")]),
                format!("invalid boolean value \"yes\" for -{flag}: parse error")
            );
        }
        // A separate "false" is a positional argument: the flag is set and parsing stops there.
        let opts = run(&[
            &format!("--{flag}=false"),
            &format!("--{flag}"),
            "false",
            "--bogus",
        ]);
        assert!(get(&opts), "--{flag} false");
    }
}

#[test]
fn deprecated_flags_are_accepted_and_remembered() {
    let opts = run(&["--verbose", "--worker-id"]);
    assert!(opts.verbose && opts.worker_id);
    let opts = run(&[]);
    assert!(!opts.verbose && !opts.worker_id);
    // Go's --worker-id is a boolean now, so an old numeric use is an error rather than a node ID.
    assert_eq!(
        err(&["--worker-id=5"]),
        "invalid boolean value \"5\" for -worker-id: parse error"
    );
    assert_eq!(run(&["--verbose", "--node-id=7"]).node_id, 7);
}

#[test]
fn repeatable_flags_append_every_occurrence_in_order() {
    let opts = run(&[
        "--lookupd-tcp-address=10.0.0.1:4160",
        "-lookupd-tcp-address",
        "10.0.0.2:4160",
        "--lookupd-tcp-address",
        "a:1,b:2",
        "--auth-http-address=auth1:4181",
        "--auth-http-address=https://auth2/check",
        "--enable-experiment=topology-aware-consumption",
        "--enable-experiment=other",
    ]);
    // Unlike the percentile flag, a comma does not split the value (Go's app.StringArray).
    assert_eq!(
        opts.nsqlookupd_tcp_addresses,
        ["10.0.0.1:4160", "10.0.0.2:4160", "a:1,b:2"]
    );
    assert_eq!(
        opts.auth_http_addresses,
        ["auth1:4181", "https://auth2/check"]
    );
    assert_eq!(
        opts.enable_experiment,
        ["topology-aware-consumption", "other"]
    );
    let body = |name: &str| match opts.config_value(name) {
        Some(crate::options::ConfigValue::Json(v)) => serde_json::to_string(&v).unwrap(),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(
        body("nsqlookupd_tcp_addresses"),
        r#"["10.0.0.1:4160","10.0.0.2:4160","a:1,b:2"]"#
    );
    assert_eq!(
        body("enable_experiment"),
        r#"["topology-aware-consumption","other"]"#
    );
}

#[test]
fn tls_required_values() {
    const PAIR: [&str; 2] = ["--tls-cert=c.pem", "--tls-key=c.key"];
    let level = |flag: &str| run(&[PAIR[0], PAIR[1], flag]).tls_required;
    for flag in [
        "--tls-required",
        "-tls-required",
        "--tls-required=true",
        "--tls-required=1",
        "--tls-required=T",
        // Go lowercases before parsing, so mixed case is accepted here though not for plain booleans.
        "--tls-required=tRuE",
    ] {
        assert_eq!(level(flag), TLS_REQUIRED, "{flag}");
    }
    for flag in ["--tls-required=tcp-https", "-tls-required=TCP-HTTPS"] {
        assert_eq!(level(flag), TLS_REQUIRED_EXCEPT_HTTP, "{flag}");
    }
    for flag in [
        "--tls-required=false",
        "--tls-required=0",
        "--tls-required=FALSE",
    ] {
        assert_eq!(level(flag), TLS_NOT_REQUIRED, "{flag}");
    }
    assert_eq!(run(&[]).tls_required, TLS_NOT_REQUIRED);
    // Go treats it as a boolean flag: a separate value is a positional argument that ends parsing.
    let opts = run(&[
        PAIR[0],
        PAIR[1],
        "--tls-required",
        "tcp-https",
        "--node-id=9",
    ]);
    assert_eq!(opts.tls_required, TLS_REQUIRED);
    assert_ne!(opts.node_id, 9);
    assert_eq!(
        err(&["--tls-required=maybe"]),
        "invalid boolean value \"maybe\" for -tls-required: \
         strconv.ParseBool: parsing \"maybe\": invalid syntax"
    );
    assert_eq!(
        err(&["--tls-required=YES"]),
        "invalid boolean value \"YES\" for -tls-required: \
         strconv.ParseBool: parsing \"yes\": invalid syntax"
    );
    assert_eq!(
        err(&["--tls-required="]),
        "invalid boolean value \"\" for -tls-required: \
         strconv.ParseBool: parsing \"\": invalid syntax"
    );
    // Requiring TLS without a certificate fails as Go's nsqd fails at start-up.
    assert_eq!(
        err(&["--tls-required"]),
        "cannot require TLS client connections without TLS key and cert"
    );
    assert_eq!(
        err(&["--tls-required=tcp-https"]),
        "cannot require TLS client connections without TLS key and cert"
    );
    assert_eq!(
        run(&["--tls-required=false"]).tls_required,
        TLS_NOT_REQUIRED
    );
}

#[test]
fn tls_client_auth_policy_forces_tls_required() {
    let opts = run(&[
        "--tls-cert=c",
        "--tls-key=k",
        "--tls-client-auth-policy=require",
    ]);
    assert_eq!(opts.tls_required, TLS_REQUIRED);
    // Only "not required" is raised; Go keeps tcp-https as it is.
    let opts = run(&[
        "--tls-cert=c",
        "--tls-key=k",
        "--tls-required=tcp-https",
        "--tls-client-auth-policy=require-verify",
    ]);
    assert_eq!(opts.tls_required, TLS_REQUIRED_EXCEPT_HTTP);
    // Even an explicit false is overridden, as in Go.
    let opts = run(&[
        "--tls-cert=c",
        "--tls-key=k",
        "--tls-required=false",
        "--tls-client-auth-policy=require",
    ]);
    assert_eq!(opts.tls_required, TLS_REQUIRED);
    assert_eq!(
        err(&["--tls-client-auth-policy=require"]),
        "cannot require TLS client connections without TLS key and cert"
    );
}

#[test]
fn tls_certificate_and_key_come_together() {
    let opts = run(&["--tls-cert=c", "--tls-key=k"]);
    assert_eq!((opts.tls_cert.as_str(), opts.tls_key.as_str()), ("c", "k"));
    assert_eq!(opts.tls_required, TLS_NOT_REQUIRED);
    for argv in [["--tls-cert=c"], ["--tls-key=k"]] {
        assert_eq!(
            err(&argv),
            "failed to build TLS config - --tls-cert and --tls-key must be given together"
        );
    }
}

#[test]
fn tls_min_version_values() {
    for (value, want) in [
        ("tls1.0", 0x0301),
        ("tls1.1", 0x0302),
        ("tls1.2", 0x0303),
        ("tls1.3", 0x0304),
        ("TLS1.3", 0x0304),
        ("Tls1.1", 0x0302),
    ] {
        assert_eq!(
            run(&["--tls-min-version", value]).tls_min_version,
            want,
            "{value}"
        );
    }
    // An empty value keeps what was there, as Go's does.
    assert_eq!(run(&["--tls-min-version="]).tls_min_version, 0x0301);
    assert_eq!(
        run(&["--tls-min-version=tls1.2", "--tls-min-version="]).tls_min_version,
        0x0303
    );
    assert_eq!(
        err(&["--tls-min-version=ssl3.0"]),
        "invalid value \"ssl3.0\" for flag -tls-min-version: \
         SSL 3.0 is not supported; use tls1.0, tls1.1, tls1.2 or tls1.3"
    );
    assert_eq!(
        err(&["--tls-min-version=TLS1.4"]),
        "invalid value \"TLS1.4\" for flag -tls-min-version: unknown tlsVersionOption \"tls1.4\""
    );
    assert_eq!(
        err(&["--tls-min-version", "771"]),
        "invalid value \"771\" for flag -tls-min-version: unknown tlsVersionOption \"771\""
    );
    assert_eq!(
        err(&["--tls-min-version"]),
        "flag needs an argument: -tls-min-version"
    );
}

#[test]
fn max_deflate_level_validation() {
    for level in 1..=9 {
        assert_eq!(
            run(&[&format!("--max-deflate-level={level}")]).max_deflate_level,
            level
        );
    }
    for bad in ["0", "10", "-1"] {
        assert_eq!(
            err(&["--max-deflate-level", bad]),
            "--max-deflate-level must be [1,9]",
            "{bad}"
        );
    }
    assert_eq!(
        err(&["--max-deflate-level=x"]),
        "invalid value \"x\" for flag -max-deflate-level: parse error"
    );
    // Go checks the deflate level before the node ID.
    assert_eq!(
        err(&["--node-id=5000", "--max-deflate-level=0"]),
        "--max-deflate-level must be [1,9]"
    );
}

#[test]
fn auth_http_request_method_validation() {
    assert_eq!(
        run(&["--auth-http-request-method=get"]).auth_http_request_method,
        "get"
    );
    for bad in ["GET", "put", ""] {
        assert_eq!(
            err(&["--auth-http-request-method", bad]),
            "--auth-http-request-method must be post or get",
            "{bad:?}"
        );
    }
}

#[test]
fn port_flags() {
    assert_eq!(
        run(&["--broadcast-tcp-port=65535"]).broadcast_tcp_port,
        65535
    );
    assert_eq!(run(&["--broadcast-http-port=0"]).broadcast_http_port, 0);
    assert_eq!(
        err(&["--broadcast-tcp-port=65536"]),
        "invalid value \"65536\" for flag -broadcast-tcp-port: a port must be in [0,65535]"
    );
    assert_eq!(
        err(&["--broadcast-http-port", "-1"]),
        "invalid value \"-1\" for flag -broadcast-http-port: a port must be in [0,65535]"
    );
    assert_eq!(
        err(&["--broadcast-http-port=x"]),
        "invalid value \"x\" for flag -broadcast-http-port: parse error"
    );
}

#[test]
fn go_nsq_test_script_command_line_parses() {
    // go-nsq's test.sh starts nsqd exactly so.
    let opts = run(&[
        "--data-path=/tmp/go-nsq-test",
        "--tcp-address=127.0.0.1:4150",
        "--http-address=127.0.0.1:4151",
        "--broadcast-address=127.0.0.1",
        "--tls-cert=./test/server.pem",
        "--tls-key=./test/server.key",
        "--tls-root-ca-file=./test/ca.pem",
    ]);
    assert_eq!(opts.data_path, "/tmp/go-nsq-test");
    assert_eq!(opts.tcp_address, "127.0.0.1:4150");
    assert_eq!(opts.http_address, "127.0.0.1:4151");
    assert_eq!(opts.broadcast_address, "127.0.0.1");
    assert_eq!(opts.tls_cert, "./test/server.pem");
    assert_eq!(opts.tls_key, "./test/server.key");
    assert_eq!(opts.tls_root_ca_file, "./test/ca.pem");
    assert_eq!(opts.tls_required, TLS_NOT_REQUIRED);
}

#[test]
fn version_in_all_bool_forms() {
    for spelling in ["-version", "--version"] {
        for suffix in ["", "=true", "=1", "=t", "=T", "=TRUE", "=True"] {
            let argv = args(&[&format!("{spelling}{suffix}")]);
            assert!(
                matches!(parse_args(argv.clone()), Ok(CliAction::PrintVersion)),
                "{argv:?}"
            );
        }
        for suffix in ["=false", "=0", "=f", "=F", "=FALSE", "=False"] {
            let argv = args(&[&format!("{spelling}{suffix}")]);
            assert!(
                matches!(parse_args(argv.clone()), Ok(CliAction::Run(_))),
                "{argv:?}"
            );
        }
    }
    // A later occurrence overrides an earlier one, as in Go.
    assert!(matches!(
        parse_args(args(&["--version", "--version=false"])),
        Ok(CliAction::Run(_))
    ));
}

#[test]
fn bool_flags_never_take_a_separate_value() {
    // "false" is a positional argument, so parsing stops there and the flag stays set.
    assert!(matches!(
        parse_args(args(&["--version", "false"])),
        Ok(CliAction::PrintVersion)
    ));
    assert_eq!(
        err(&["--version=yes"]),
        "invalid boolean value \"yes\" for -version: parse error"
    );
    assert_eq!(
        err(&["-version=tRUE"]),
        "invalid boolean value \"tRUE\" for -version: parse error"
    );
}

#[test]
fn version_is_reported_before_validation_but_after_parse_errors() {
    assert!(matches!(
        parse_args(args(&["--node-id=5000", "--version"])),
        Ok(CliAction::PrintVersion)
    ));
    assert_eq!(
        err(&["--version", "--bogus"]),
        "flag provided but not defined: -bogus"
    );
}

#[test]
fn help_flags() {
    for flag in ["-h", "--h", "-help", "--help"] {
        match parse_args(args(&[flag])) {
            Ok(CliAction::PrintHelp(text)) => assert_eq!(text, help_text()),
            other => panic!("{flag} gave {other:?}"),
        }
    }
    // Help stops parsing, so a bad flag after it is not reached, but one before it is.
    assert!(matches!(
        parse_args(args(&["--help", "--bogus"])),
        Ok(CliAction::PrintHelp(_))
    ));
    assert_eq!(
        err(&["--bogus", "--help"]),
        "flag provided but not defined: -bogus"
    );
}

#[test]
fn unknown_flags_and_bad_syntax() {
    assert_eq!(err(&["--nope"]), "flag provided but not defined: -nope");
    assert_eq!(err(&["-nope=1"]), "flag provided but not defined: -nope");
    // Flags from the docs site or forks that Go's nsqd master does not define are rejected as Go rejects them.
    assert_eq!(
        err(&["--max-defer-timeout=1h"]),
        "flag provided but not defined: -max-defer-timeout"
    );
    assert_eq!(
        err(&["--auth-fail-closed"]),
        "flag provided but not defined: -auth-fail-closed"
    );
    assert_eq!(
        err(&["---tcp-address=x"]),
        "bad flag syntax: ---tcp-address=x"
    );
    assert_eq!(err(&["-=x"]), "bad flag syntax: -=x");
    assert_eq!(err(&["--=x"]), "bad flag syntax: --=x");
}

#[test]
fn missing_values() {
    assert_eq!(
        err(&["--tcp-address"]),
        "flag needs an argument: -tcp-address"
    );
    assert_eq!(
        err(&["-msg-timeout"]),
        "flag needs an argument: -msg-timeout"
    );
}

#[test]
fn separate_values_may_look_like_flags() {
    // Go takes the next argument as the value whatever it looks like.
    assert_eq!(run(&["--data-path", "--weird"]).data_path, "--weird");
    // An empty inline value is a value.
    assert_eq!(run(&["--broadcast-address="]).broadcast_address, "");
    // Only the first '=' splits.
    assert_eq!(run(&["--data-path=a=b"]).data_path, "a=b");
}

#[test]
fn bad_integers() {
    assert_eq!(
        err(&["--max-msg-size=abc"]),
        "invalid value \"abc\" for flag -max-msg-size: parse error"
    );
    assert_eq!(
        err(&["--mem-queue-size", "1.5"]),
        "invalid value \"1.5\" for flag -mem-queue-size: parse error"
    );
    assert_eq!(
        err(&["--max-rdy-count="]),
        "invalid value \"\" for flag -max-rdy-count: parse error"
    );
    assert_eq!(
        err(&["--max-body-size=99999999999999999999"]),
        "invalid value \"99999999999999999999\" for flag -max-body-size: value out of range"
    );
    assert_eq!(
        err(&["--max-channel-consumers=09"]),
        "invalid value \"09\" for flag -max-channel-consumers: parse error"
    );
}

#[test]
fn bad_durations() {
    for bad in ["60", "1x", "abc", "", "1.5.5s", "-", ".s"] {
        assert_eq!(
            err(&["--msg-timeout", bad]),
            format!("invalid value {bad:?} for flag -msg-timeout: parse error")
        );
    }
    assert_eq!(
        err(&["--msg-timeout=-1s"]),
        "invalid value \"-1s\" for flag -msg-timeout: negative durations are not allowed"
    );
    assert_eq!(run(&["--msg-timeout=-0s"]).msg_timeout, Duration::ZERO);
}

#[test]
fn bad_log_level() {
    assert_eq!(
        err(&["--log-level=loud"]),
        "invalid value \"loud\" for flag -log-level: invalid log level 'loud' \
         (debug, info, warn, error, fatal)"
    );
    assert_eq!(run(&["-log-level", "fatal"]).log_level, LogLevel::Fatal);
}

#[test]
fn parsing_stops_at_positional_arguments() {
    let opts = run(&["--node-id=3", "extra", "--node-id=4", "--bogus"]);
    assert_eq!(opts.node_id, 3);
    let opts = run(&["--node-id=3", "--", "--node-id=4", "--bogus"]);
    assert_eq!(opts.node_id, 3);
    let opts = run(&["--node-id=3", "-", "--bogus"]);
    assert_eq!(opts.node_id, 3);
    // Only "--" itself ends the flags; the argument after it is not parsed even if it is "--".
    let opts = run(&["--", "--", "--node-id=9"]);
    assert_eq!(opts.node_id, Options::default().node_id);
}

#[test]
fn later_occurrences_win() {
    let opts = run(&["--tcp-address=a:1", "-tcp-address", "b:2"]);
    assert_eq!(opts.tcp_address, "b:2");
}

#[test]
fn no_arguments_gives_defaults() {
    let opts = run(&[]);
    let defaults = Options::default();
    for name in [
        "id",
        "tcp_address",
        "msg_timeout",
        "log_level",
        "broadcast_address",
    ] {
        assert_eq!(
            opts.config_value(name),
            defaults.config_value(name),
            "{name}"
        );
    }
}

#[test]
fn defaults_equal_go() {
    let o = Options::default();
    let durations: &[(&str, Duration, Duration)] = &[
        ("sync_timeout", o.sync_timeout, Duration::from_secs(2)),
        (
            "queue_scan_interval",
            o.queue_scan_interval,
            Duration::from_millis(100),
        ),
        (
            "queue_scan_refresh_interval",
            o.queue_scan_refresh_interval,
            Duration::from_secs(5),
        ),
        ("msg_timeout", o.msg_timeout, Duration::from_secs(60)),
        (
            "max_msg_timeout",
            o.max_msg_timeout,
            Duration::from_secs(900),
        ),
        (
            "max_req_timeout",
            o.max_req_timeout,
            Duration::from_secs(3600),
        ),
        ("client_timeout", o.client_timeout, Duration::from_secs(60)),
        (
            "max_heartbeat_interval",
            o.max_heartbeat_interval,
            Duration::from_secs(60),
        ),
        (
            "max_output_buffer_timeout",
            o.max_output_buffer_timeout,
            Duration::from_secs(30),
        ),
        (
            "min_output_buffer_timeout",
            o.min_output_buffer_timeout,
            Duration::from_millis(25),
        ),
        (
            "output_buffer_timeout",
            o.output_buffer_timeout,
            Duration::from_millis(250),
        ),
        (
            "e2e_window",
            o.e2e_processing_latency_window_time,
            Duration::from_secs(600),
        ),
        (
            "http_client_connect_timeout",
            o.http_client_connect_timeout,
            Duration::from_secs(2),
        ),
        (
            "http_client_request_timeout",
            o.http_client_request_timeout,
            Duration::from_secs(5),
        ),
        (
            "statsd_interval",
            o.statsd_interval,
            Duration::from_secs(60),
        ),
    ];
    for (name, got, want) in durations {
        assert_eq!(got, want, "{name}");
    }
    let ints: &[(&str, i64, i64)] = &[
        ("mem_queue_size", o.mem_queue_size, 10_000),
        ("max_bytes_per_file", o.max_bytes_per_file, 104_857_600),
        ("sync_every", o.sync_every, 2500),
        (
            "queue_scan_selection_count",
            o.queue_scan_selection_count,
            20,
        ),
        (
            "queue_scan_worker_pool_max",
            o.queue_scan_worker_pool_max,
            4,
        ),
        ("max_msg_size", o.max_msg_size, 1_048_576),
        ("max_body_size", o.max_body_size, 5_242_880),
        ("max_rdy_count", o.max_rdy_count, 2500),
        ("max_output_buffer_size", o.max_output_buffer_size, 65_536),
        ("max_channel_consumers", o.max_channel_consumers, 0),
        ("max_deflate_level", o.max_deflate_level, 6),
        ("tls_required", o.tls_required, 0),
        ("tls_min_version", i64::from(o.tls_min_version), 769),
        ("statsd_udp_packet_size", o.statsd_udp_packet_size, 508),
        ("broadcast_tcp_port", i64::from(o.broadcast_tcp_port), 0),
        ("broadcast_http_port", i64::from(o.broadcast_http_port), 0),
    ];
    for (name, got, want) in ints {
        assert_eq!(got, want, "{name}");
    }
    let strings: &[(&str, &str, &str)] = &[
        ("log_prefix", &o.log_prefix, "[nsqd] "),
        ("tcp_address", &o.tcp_address, "0.0.0.0:4150"),
        ("http_address", &o.http_address, "0.0.0.0:4151"),
        ("https_address", &o.https_address, "0.0.0.0:4152"),
        ("data_path", &o.data_path, ""),
        ("statsd_prefix", &o.statsd_prefix, "nsq.%s"),
        ("statsd_address", &o.statsd_address, ""),
        (
            "auth_http_request_method",
            &o.auth_http_request_method,
            "get",
        ),
        ("tls_cert", &o.tls_cert, ""),
        ("tls_key", &o.tls_key, ""),
        ("tls_root_ca_file", &o.tls_root_ca_file, ""),
        ("tls_client_auth_policy", &o.tls_client_auth_policy, ""),
        ("topology_region", &o.topology_region, ""),
        ("topology_zone", &o.topology_zone, ""),
    ];
    for (name, got, want) in strings {
        assert_eq!(got, want, "{name}");
    }
    let bools: &[(&str, bool, bool)] = &[
        ("deflate", o.deflate, true),
        ("snappy", o.snappy, true),
        ("statsd_mem_stats", o.statsd_mem_stats, true),
        (
            "statsd_exclude_ephemeral",
            o.statsd_exclude_ephemeral,
            false,
        ),
    ];
    for (name, got, want) in bools {
        assert_eq!(got, want, "{name}");
    }
    assert_eq!(o.log_level, LogLevel::Info);
    assert_eq!(o.queue_scan_dirty_percent, 0.25);
    assert!(o.nsqlookupd_tcp_addresses.is_empty());
    assert!(o.auth_http_addresses.is_empty());
    assert!(o.e2e_processing_latency_percentiles.is_empty());
    assert!(o.enable_experiment.is_empty());
    assert!(o.config_file.is_empty());
    assert!(!o.verbose);
    assert!(!o.worker_id);
    assert_eq!(o.tls_required, TLS_NOT_REQUIRED);
    assert!(!o.broadcast_address.is_empty());
    assert!((0..1024).contains(&o.node_id));
}

#[test]
fn percentiles_are_sorted_descending_across_occurrences() {
    let opts = run(&["--e2e-processing-latency-percentile=0.5,0.99"]);
    assert_eq!(opts.e2e_processing_latency_percentiles, [0.99, 0.5]);
    let opts = run(&[
        "--e2e-processing-latency-percentile=0.5",
        "-e2e-processing-latency-percentile",
        "0.95,1.0,0.75",
        "--e2e-processing-latency-percentile",
        "0.99",
    ]);
    assert_eq!(
        opts.e2e_processing_latency_percentiles,
        [1.0, 0.99, 0.95, 0.75, 0.5]
    );
}

#[test]
fn percentile_validation() {
    assert_eq!(
        err(&["--e2e-processing-latency-percentile=0.5,1.5"]),
        "invalid E2E processing latency percentile: 1.5"
    );
    assert_eq!(
        err(&["--e2e-processing-latency-percentile=0"]),
        "invalid E2E processing latency percentile: 0"
    );
    assert_eq!(
        err(&["--e2e-processing-latency-percentile=-0.5"]),
        "invalid E2E processing latency percentile: -0.5"
    );
    assert_eq!(
        err(&["--e2e-processing-latency-percentile=NaN"]),
        "invalid E2E processing latency percentile: NaN"
    );
    assert_eq!(
        err(&["--e2e-processing-latency-percentile=0.5,abc"]),
        "Could not parse: abc"
    );
    assert_eq!(
        err(&["--e2e-processing-latency-percentile=0.5,"]),
        "Could not parse: "
    );
    assert_eq!(
        run(&["--e2e-processing-latency-percentile=1"]).e2e_processing_latency_percentiles,
        [1.0]
    );
}

#[test]
fn node_id_validation() {
    assert_eq!(run(&["--node-id=0"]).node_id, 0);
    assert_eq!(run(&["--node-id=1023"]).node_id, 1023);
    assert_eq!(err(&["--node-id=1024"]), "--node-id must be [0,1024)");
    assert_eq!(err(&["--node-id", "-1"]), "--node-id must be [0,1024)");
}

#[test]
fn golden_instance_flags_reproduce_golden_config_bodies() {
    let opts = run(&[
        "--tcp-address=127.0.0.1:54636",
        "--http-address=127.0.0.1:54637",
        "--broadcast-address=127.0.0.1",
        "--node-id=1",
        "--data-path=/tmp/nsqd-data-7t2h1ajv",
        "--e2e-processing-latency-percentile=0.5,0.99",
    ]);
    let body = |name: &str| match opts.config_value(name) {
        Some(crate::options::ConfigValue::Text(s)) => s,
        Some(crate::options::ConfigValue::Json(v)) => serde_json::to_string(&v).unwrap(),
        None => "<none>".to_owned(),
    };
    for (name, want) in [
        ("nsqlookupd_tcp_addresses", "[]"),
        ("log_level", "2"),
        ("mem_queue_size", "10000"),
        ("msg_timeout", "60000000000"),
        ("max_req_timeout", "3600000000000"),
        ("e2e_processing_latency_percentiles", "[0.99,0.5]"),
        ("broadcast_address", "127.0.0.1"),
        ("tls_min_version", "769"),
        ("tls_required", "0"),
        ("data_path", "/tmp/nsqd-data-7t2h1ajv"),
        ("id", "1"),
        ("node_id", "<none>"),
        ("statsd_prefix", "nsq.127_0_0_1_54637."),
        ("deflate", "true"),
        ("max_deflate_level", "6"),
        ("enable_experiment", "[]"),
        ("bogus_option", "<none>"),
    ] {
        assert_eq!(body(name), want, "{name}");
    }
}

#[test]
fn version_line_starts_like_go() {
    let line = version_line();
    assert!(line.starts_with("nsqd v1.3.0 "), "{line}");
    assert!(line.contains(env!("CARGO_PKG_VERSION")), "{line}");
}

#[test]
fn help_lists_every_flag_with_its_default_in_go_layout() {
    let text = help_text();
    assert!(text.starts_with("Usage of nsqd:\n"));
    for spec in FLAGS {
        assert!(
            text.contains(&format!("\n  -{}", spec.name)),
            "-{} missing",
            spec.name
        );
    }
    assert!(text.contains(
        "  -msg-timeout duration\n    \thow long a delivered message may go unacknowledged \
         before it is requeued (default 1m0s)\n"
    ));
    assert!(text.contains("  -tcp-address string\n    \t<addr>:<port> the TCP protocol listener binds to (default \"0.0.0.0:4150\")\n"));
    assert!(text.contains("  -mem-queue-size int\n"));
    assert!(text.contains("(default 10000)\n"));
    assert!(text.contains("  -version\n    \tprint the version and exit\n"));
    assert!(text.contains("  -log-level value\n"));
    assert!(text.contains("(default info)\n"));
    // Go marks --tls-required boolean, so it shows no type; --tls-min-version shows its default by name.
    assert!(text.contains("\n  -tls-required\n"));
    assert!(text.contains("\n  -tls-min-version value\n"));
    assert!(text.contains("(default tls1.0)\n"));
    assert!(text.contains("\n  -lookupd-tcp-address value\n"));
    assert!(text.contains("\n  -broadcast-tcp-port int\n"));
    assert!(text.contains("\n  -deflate\n"));
    assert!(text.contains("(default \"[nsqd] \")\n"));
    assert!(text.contains("(default \"nsq.%s\")\n"));
    assert!(text.contains("(default 104857600)\n"));
    // Zero defaults are left out, as Go does.
    let data_path = text
        .lines()
        .skip_while(|l| !l.starts_with("  -data-path"))
        .nth(1)
        .unwrap();
    assert!(!data_path.contains("(default"), "{data_path}");
    // Flags are sorted by name.
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  -"))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), FLAGS.len());
}

/// A config file with `text` in a fresh temporary directory; the directory lives as long as the result.
fn config_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nsqd.cfg");
    std::fs::write(&path, text).unwrap();
    (dir, path.to_str().unwrap().to_owned())
}

/// Parses `flags` after `--config=<a file holding text>`.
fn run_with_config(text: &str, flags: &[&str]) -> Options {
    let (_dir, path) = config_file(text);
    let config = format!("--config={path}");
    let mut list = vec![config.as_str()];
    list.extend_from_slice(flags);
    run(&list)
}

/// The error of `--config=<a file holding text>`, with the temporary path replaced by `nsqd.cfg`.
fn config_err(text: &str) -> String {
    let (_dir, path) = config_file(text);
    err(&[&format!("--config={path}")]).replace(&path, "nsqd.cfg")
}

#[test]
fn config_precedence_for_an_integer() {
    let file = "mem_queue_size = 5\n";
    assert_eq!(run_with_config(file, &[]).mem_queue_size, 5);
    assert_eq!(
        run_with_config(file, &["--mem-queue-size=7"]).mem_queue_size,
        7
    );
    // The command line wins even when it repeats the default.
    assert_eq!(
        run_with_config(file, &["-mem-queue-size", "10000"]).mem_queue_size,
        10_000
    );
    assert_eq!(run_with_config("", &[]).mem_queue_size, 10_000);
    // A string is read as the flag reads it.
    assert_eq!(
        run_with_config("mem_queue_size = \"0x10\"\n", &[]).mem_queue_size,
        16
    );
    // The flag may come before --config; order on the command line does not matter.
    let (_dir, path) = config_file(file);
    let opts = run(&["--mem-queue-size=9", &format!("--config={path}")]);
    assert_eq!(opts.mem_queue_size, 9);
}

#[test]
fn config_precedence_for_a_duration() {
    let file = "msg_timeout = \"90s\"\n";
    assert_eq!(
        run_with_config(file, &[]).msg_timeout,
        Duration::from_secs(90)
    );
    assert_eq!(
        run_with_config(file, &["-msg-timeout", "2m"]).msg_timeout,
        Duration::from_secs(120)
    );
    assert_eq!(
        run_with_config("", &[]).msg_timeout,
        Duration::from_secs(60)
    );
    // go-options reads an integer duration as milliseconds.
    assert_eq!(
        run_with_config("msg_timeout = 1500\n", &[]).msg_timeout,
        Duration::from_millis(1500)
    );
}

#[test]
fn config_precedence_for_a_bool() {
    let file = "snappy = false\nstatsd_exclude_ephemeral = \"true\"\n";
    let opts = run_with_config(file, &[]);
    assert!(!opts.snappy);
    assert!(opts.statsd_exclude_ephemeral);
    // `--snappy` alone means true, and it wins over the file although true is also the default.
    assert!(run_with_config(file, &["--snappy"]).snappy);
    assert!(!run_with_config(file, &["--statsd-exclude-ephemeral=false"]).statsd_exclude_ephemeral);
    assert!(run_with_config("", &[]).snappy);
}

#[test]
fn config_precedence_for_a_repeatable_list() {
    let file = "nsqlookupd_tcp_addresses = [\"a:4160\", \"b:4160\"]\n";
    assert_eq!(
        run_with_config(file, &[]).nsqlookupd_tcp_addresses,
        ["a:4160", "b:4160"]
    );
    // Any occurrence on the command line replaces the file's whole list.
    assert_eq!(
        run_with_config(
            file,
            &[
                "--lookupd-tcp-address=c:4160",
                "--lookupd-tcp-address=d:4160"
            ]
        )
        .nsqlookupd_tcp_addresses,
        ["c:4160", "d:4160"]
    );
    assert!(run_with_config("", &[]).nsqlookupd_tcp_addresses.is_empty());
    // One string is split at commas, as go-options does.
    assert_eq!(
        run_with_config("nsqlookupd_tcp_addresses = \"a:1,b:2\"\n", &[]).nsqlookupd_tcp_addresses,
        ["a:1", "b:2"]
    );
}

#[test]
fn config_keys_renamed_from_their_flags() {
    let file = "id = 7\n\
                auth_http_addresses = [\"127.0.0.1:4181\"]\n\
                e2e_processing_latency_percentiles = [0.5, 1.0, 0.99]\n\
                enable_experiment = [\"topology-aware-consumption\"]\n";
    let opts = run_with_config(file, &[]);
    assert_eq!(opts.node_id, 7);
    assert_eq!(opts.auth_http_addresses, ["127.0.0.1:4181"]);
    assert_eq!(opts.e2e_processing_latency_percentiles, [1.0, 0.99, 0.5]);
    assert_eq!(opts.enable_experiment, ["topology-aware-consumption"]);
    let opts = run_with_config(
        file,
        &[
            "--node-id=8",
            "--auth-http-address=h:1",
            "--e2e-processing-latency-percentile=0.9",
            "--enable-experiment=x",
        ],
    );
    assert_eq!(opts.node_id, 8);
    assert_eq!(opts.auth_http_addresses, ["h:1"]);
    assert_eq!(opts.e2e_processing_latency_percentiles, [0.9]);
    assert_eq!(opts.enable_experiment, ["x"]);
    // The flag-derived spellings of the renamed keys are not keys.
    for key in [
        "node_id = 1",
        "lookupd_tcp_address = [\"a:1\"]",
        "auth_http_address = [\"a:1\"]",
        "e2e_processing_latency_percentile = [0.5]",
    ] {
        let name = key.split(' ').next().unwrap();
        assert_eq!(
            config_err(key),
            format!("failed to load config file nsqd.cfg - unknown key \"{name}\"")
        );
    }
}

#[test]
fn config_special_keys_take_their_string_forms() {
    let tls = "tls_cert = \"c\"\ntls_key = \"k\"\n";
    for (value, want) in [
        ("false", TLS_NOT_REQUIRED),
        ("\"false\"", TLS_NOT_REQUIRED),
        ("true", TLS_REQUIRED),
        ("\"TCP-HTTPS\"", TLS_REQUIRED_EXCEPT_HTTP),
    ] {
        let opts = run_with_config(&format!("{tls}tls_required = {value}\n"), &[]);
        assert_eq!(opts.tls_required, want, "{value}");
    }
    assert_eq!(
        config_err("tls_required = \"maybe\"\n"),
        "failed to load config file nsqd.cfg - invalid value \"maybe\" for key \"tls_required\": \
         strconv.ParseBool: parsing \"maybe\": invalid syntax"
    );
    // An empty tls_min_version keeps the default, as in Go's shipped example file.
    assert_eq!(
        run_with_config("tls_min_version = \"\"\n", &[]).tls_min_version,
        0x0301
    );
    assert_eq!(
        run_with_config("tls_min_version = \"TLS1.2\"\n", &[]).tls_min_version,
        0x0303
    );
    assert!(config_err("tls_min_version = \"ssl3.0\"\n").contains("key \"tls_min_version\""));
    assert_eq!(
        run_with_config("log_level = \"DEBUG\"\n", &[]).log_level,
        LogLevel::Debug
    );
    // Go formats the value and parses the text as a level name, so a number is refused.
    assert_eq!(
        config_err("log_level = 2\n"),
        "failed to load config file nsqd.cfg - invalid value 2 for key \"log_level\": \
         invalid log level '2' (debug, info, warn, error, fatal)"
    );
}

#[test]
fn config_values_get_the_start_up_checks() {
    // --tls-client-auth-policy from a file still forces tls_required.
    let opts = run_with_config(
        "tls_cert = \"c\"\ntls_key = \"k\"\ntls_client_auth_policy = \"require\"\n",
        &[],
    );
    assert_eq!(opts.tls_required, TLS_REQUIRED);
    assert_eq!(
        config_err("max_deflate_level = 10\n"),
        "--max-deflate-level must be [1,9]"
    );
    assert_eq!(
        config_err("e2e_processing_latency_percentiles = [100.0]\n"),
        "invalid E2E processing latency percentile: 100"
    );
    // The statsd prefix is rewritten from the merged options.
    let opts = run_with_config(
        "statsd_prefix = \"app.%s\"\nbroadcast_address = \"h.local\"\n",
        &["--http-address=0.0.0.0:9151"],
    );
    assert_eq!(opts.statsd_prefix_with_host(), "app.h_local_9151.");
}

#[test]
fn config_errors_name_the_key_or_the_problem() {
    assert_eq!(
        config_err("max_foo = 1\n"),
        "failed to load config file nsqd.cfg - unknown key \"max_foo\""
    );
    assert_eq!(
        config_err("mem_queue_size = \"abc\"\n"),
        "failed to load config file nsqd.cfg - invalid value \"abc\" for key \"mem_queue_size\": \
         parse error"
    );
    assert_eq!(
        config_err("msg_timeout = \"45\"\n"),
        "failed to load config file nsqd.cfg - invalid value \"45\" for key \"msg_timeout\": \
         parse error"
    );
    assert_eq!(
        config_err("broadcast_tcp_port = 70000\n"),
        "failed to load config file nsqd.cfg - invalid value 70000 for key \"broadcast_tcp_port\": \
         a port must be in [0,65535]"
    );
    assert_eq!(
        config_err("tcp_address = 4150\n"),
        "failed to load config file nsqd.cfg - invalid value 4150 for key \"tcp_address\": \
         expected a string"
    );
    // Keys for flags that are actions, not options, are not keys.
    for key in ["config", "version"] {
        assert!(
            config_err(&format!("{key} = \"x\"\n")).ends_with(&format!("unknown key \"{key}\"")),
            "{key}"
        );
    }
    let syntax = config_err("mem_queue_size = = 1\n");
    assert!(
        syntax.starts_with("failed to load config file nsqd.cfg - invalid TOML: "),
        "{syntax}"
    );
    let missing = err(&["--config=/nonexistent/nsqd.cfg"]);
    assert!(
        missing.starts_with("failed to load config file /nonexistent/nsqd.cfg - cannot read it: "),
        "{missing}"
    );
    assert!(matches!(
        parse_args(args(&["--config=/nonexistent/nsqd.cfg"])),
        Err(CliError::Config(_))
    ));
    // Flags are parsed before the file is read: a bad flag is reported first, and --version and --help win.
    assert_eq!(
        err(&["--config=/nonexistent/nsqd.cfg", "--nope"]),
        "flag provided but not defined: -nope"
    );
    assert!(matches!(
        parse_args(args(&["--config=/nonexistent/nsqd.cfg", "--version"])),
        Ok(CliAction::PrintVersion)
    ));
    assert!(matches!(
        parse_args(args(&["--config=/nonexistent/nsqd.cfg", "-h"])),
        Ok(CliAction::PrintHelp(_))
    ));
    // An empty --config means no file, as in Go.
    assert_eq!(run(&["--config="]).mem_queue_size, 10_000);
}

/// The path of a file under the workspace's `docs/`.
fn docs_file(name: &str) -> String {
    format!("{}/../../docs/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn docs_example_config_loads_with_every_key() {
    let path = docs_file("nsqd.cfg.example");
    let opts = run(&[&format!("--config={path}")]);
    let defaults = Options::default();
    assert_eq!(opts.nsqlookupd_tcp_addresses, ["127.0.0.1:4160"]);
    assert_eq!(opts.e2e_processing_latency_percentiles, [1.0, 0.99, 0.95]);
    assert_eq!(opts.max_output_buffer_timeout, Duration::from_secs(30));
    assert_eq!(opts.output_buffer_timeout, Duration::from_millis(250));
    assert_eq!(opts.tls_min_version, 0x0301);
    assert_eq!(opts.log_prefix, "[nsqd] ");
    // Everything else in it is Go's default.
    for name in [
        "id",
        "log_level",
        "tcp_address",
        "http_address",
        "https_address",
        "broadcast_address",
        "mem_queue_size",
        "max_bytes_per_file",
        "sync_every",
        "sync_timeout",
        "msg_timeout",
        "max_msg_timeout",
        "max_msg_size",
        "max_body_size",
        "max_req_timeout",
        "max_heartbeat_interval",
        "max_rdy_count",
        "max_output_buffer_size",
        "min_output_buffer_timeout",
        "statsd_prefix",
        "statsd_interval",
        "statsd_mem_stats",
        "statsd_udp_packet_size",
        "e2e_processing_latency_window_time",
        "tls_required",
        "deflate",
        "max_deflate_level",
        "snappy",
        "auth_http_request_method",
        "http_client_connect_timeout",
        "http_client_request_timeout",
    ] {
        assert_eq!(
            opts.config_value(name),
            defaults.config_value(name),
            "{name}"
        );
    }
    // Every key appears, set or commented out.
    let text = std::fs::read_to_string(&path).unwrap();
    for flag in FLAGS {
        let Some(key) = flag.config_key() else {
            continue;
        };
        if matches!(key.as_str(), "verbose" | "worker_id") {
            continue;
        }
        assert!(
            text.contains(&format!("\n{key} = ")) || text.contains(&format!("# {key} = ")),
            "{key}"
        );
    }
}

#[test]
fn the_shape_of_gos_shipped_example_loads() {
    // The keys and values of Go's contrib/nsqd.cfg.example that differ from our docs example: the deprecated
    // `verbose`, an empty tls_min_version, 1s for max_output_buffer_timeout, and its max_msg_size.
    let opts = run_with_config(
        "verbose = false\n\
         max_output_buffer_timeout = \"1s\"\n\
         max_msg_size = 1024768\n\
         max_body_size = 5123840\n\
         tls_required = false\n\
         tls_min_version = \"\"\n\
         tls_cert = \"\"\n\
         tls_key = \"\"\n\
         statsd_prefix = \"nsq.%s\"\n\
         nsqlookupd_tcp_addresses = [\n    \"127.0.0.1:4160\"\n]\n",
        &[],
    );
    assert!(!opts.verbose);
    assert_eq!(opts.max_output_buffer_timeout, Duration::from_secs(1));
    assert_eq!(opts.max_msg_size, 1_024_768);
    assert_eq!(opts.max_body_size, 5_123_840);
    assert_eq!(opts.tls_required, TLS_NOT_REQUIRED);
    assert_eq!(opts.tls_min_version, 0x0301);
    assert_eq!(opts.nsqlookupd_tcp_addresses, ["127.0.0.1:4160"]);
}
