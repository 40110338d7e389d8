//! The auth client against local servers that answer like the golden captures' test auth server.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// The golden auth server's answer for each secret (`auth_server_responses_by_secret`).
fn golden_reply(secret: &str) -> (&'static str, &'static str) {
    match secret {
        "good" => (
            "200 OK",
            r#"{"ttl":3600,"identity":"golden-user","identity_url":"https://auth.example/u/golden","authorizations":[{"topic":"auth_.*","channels":[".*"],"permissions":["subscribe","publish"]}]}"#,
        ),
        "pubonly" => (
            "200 OK",
            r#"{"ttl":3600,"identity":"publisher","identity_url":"","authorizations":[{"topic":"auth_pub","channels":[".*"],"permissions":["publish"]}]}"#,
        ),
        "pubnochan" => (
            "200 OK",
            r#"{"ttl":3600,"identity":"publisher2","identity_url":"","authorizations":[{"topic":"auth_pub","channels":["^ch$"],"permissions":["publish"]}]}"#,
        ),
        "empty" => (
            "200 OK",
            r#"{"ttl":3600,"identity":"nobody","identity_url":"","authorizations":[]}"#,
        ),
        "zerottl" => (
            "200 OK",
            r#"{"ttl":0,"identity":"x","authorizations":[{"topic":".*","channels":[".*"],"permissions":["publish"]}]}"#,
        ),
        "badperm" => (
            "200 OK",
            r#"{"ttl":60,"identity":"x","authorizations":[{"topic":".*","channels":[".*"],"permissions":["admin"]}]}"#,
        ),
        "badregex" => (
            "200 OK",
            r#"{"ttl":60,"identity":"x","authorizations":[{"topic":"auth_(","channels":[".*"],"permissions":["publish"]}]}"#,
        ),
        "badchannel" => (
            "200 OK",
            r#"{"ttl":60,"identity":"x","authorizations":[{"topic":".*","channels":["[z-a]"],"permissions":["publish"]}]}"#,
        ),
        "notjson" => ("200 OK", "<html>hello</html>"),
        _ => ("403 Forbidden", r#"{"message":"FORBIDDEN"}"#),
    }
}

/// How a test server behaves.
#[derive(Clone, Copy)]
enum Mode {
    /// Answers like the golden auth server.
    Golden,
    /// Answers every request with a 500.
    Fails,
    /// Accepts connections and never answers.
    Silent,
}

/// A local auth server recording every request it receives, byte for byte.
struct AuthServer {
    addr: String,
    received: Arc<Mutex<Vec<String>>>,
}

impl AuthServer {
    async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(answer(stream, mode, log.clone()));
            }
        });
        Self { addr, received }
    }

    fn received(&self) -> Vec<String> {
        self.received.lock().clone()
    }
}

/// Reads one request and answers it according to `mode`.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    mode: Mode,
    log: Arc<Mutex<Vec<String>>>,
) {
    if let Mode::Silent = mode {
        tokio::time::sleep(Duration::from_secs(60)).await;
        return;
    }
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read_exact(&mut b).await.is_err() {
            return;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |n| n.trim().parse::<usize>().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    let body = String::from_utf8(body).unwrap();
    let secret = if head.starts_with("POST") {
        let fields: std::collections::HashMap<String, Vec<String>> =
            serde_json::from_str(&body).unwrap();
        fields["secret"][0].clone()
    } else {
        let query = head.split_whitespace().nth(1).unwrap();
        let (_, secret) = query.split_once("secret=").unwrap();
        secret.split('&').next().unwrap().to_owned()
    };
    log.lock().push(format!("{head}{body}"));
    let (status, json) = match mode {
        Mode::Fails => ("500 Internal Server Error", "oops"),
        _ => golden_reply(&secret),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
        json.len()
    );
    stream.write_all(response.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
}

fn options(addrs: &[&str]) -> Options {
    Options {
        auth_http_addresses: addrs.iter().map(|a| (*a).to_owned()).collect(),
        http_client_connect_timeout: Duration::from_secs(1),
        http_client_request_timeout: Duration::from_secs(2),
        ..Options::default()
    }
}

fn client(opts: &Options) -> AuthClient {
    AuthClient::from_options(opts).unwrap().unwrap()
}

fn request(secret: &str) -> AuthRequest<'_> {
    AuthRequest {
        remote_ip: "127.0.0.1",
        tls: false,
        secret,
        common_name: "",
    }
}

/// Queries one server, returning the single server's own error on failure.
async fn ask(server: &AuthServer, secret: &str) -> Result<AuthState, QueryError> {
    let c = client(&options(&[&server.addr]));
    c.query(&request(secret)).await.map_err(|mut e| {
        assert_eq!(e.to_string(), "Unable to access auth server");
        assert_eq!(e.failures.len(), 1);
        e.failures.remove(0).1
    })
}

#[tokio::test]
async fn get_request_matches_the_golden_bytes() {
    let server = AuthServer::start(Mode::Golden).await;
    let state = ask(&server, "good").await.unwrap();
    assert_eq!(state.identity, "golden-user");
    assert_eq!(state.identity_url, "https://auth.example/u/golden");
    assert_eq!(state.permission_count(), 1);
    assert!(state.has_authorizations());
    assert!(!state.is_expired());
    assert_eq!(
        server.received(),
        [format!(
            "GET /auth?common_name=&remote_ip=127.0.0.1&secret=good&tls=false HTTP/1.1\r\n\
             Host: {}\r\nUser-Agent: Go-http-client/1.1\r\n\
             Accept: application/vnd.nsq; version=1.0\r\nAccept-Encoding: gzip\r\n\r\n",
            server.addr
        )]
    );
}

#[tokio::test]
async fn post_request_matches_the_golden_bytes() {
    let server = AuthServer::start(Mode::Golden).await;
    let mut opts = options(&[&server.addr]);
    opts.auth_http_request_method = "post".to_owned();
    let state = client(&opts).query(&request("good")).await.unwrap();
    assert_eq!(state.identity, "golden-user");
    let body =
        r#"{"common_name":[""],"remote_ip":["127.0.0.1"],"secret":["good"],"tls":["false"]}"#;
    assert_eq!(body.len(), 80);
    assert_eq!(
        server.received(),
        [format!(
            "POST /auth HTTP/1.1\r\nHost: {}\r\nUser-Agent: Go-http-client/1.1\r\n\
             Content-Length: 80\r\nAccept: application/vnd.nsq; version=1.0\r\n\
             Content-Type: application/json\r\nAccept-Encoding: gzip\r\n\r\n{body}",
            server.addr
        )]
    );
}

#[test]
fn fields_are_escaped_like_go() {
    let req = AuthRequest {
        remote_ip: "::1",
        tls: true,
        secret: "a b&c=<\"\n\u{2028}é",
        common_name: "CN/x",
    };
    assert_eq!(
        encode_query(&req.fields()),
        "common_name=CN%2Fx&remote_ip=%3A%3A1&secret=a+b%26c%3D%3C%22%0A%E2%80%A8%C3%A9&tls=true"
    );
    assert_eq!(
        post_body(&req.fields()),
        r#"{"common_name":["CN/x"],"remote_ip":["::1"],"secret":["a b\u0026c=\u003c\"\n\u2028é"],"tls":["true"]}"#
    );
    let mut s = String::new();
    push_go_json_string(&mut s, "\u{1}\u{8}\t\\");
    assert_eq!(s, r#""\u0001\u0008\t\\""#);
}

#[tokio::test]
async fn full_urls_are_used_as_given() {
    let server = AuthServer::start(Mode::Golden).await;
    let url = format!("http://{}/custom/path", server.addr);
    let state = client(&options(&[&url]))
        .query(&request("pubonly"))
        .await
        .unwrap();
    assert_eq!(state.identity, "publisher");
    let received = server.received();
    assert!(
        received[0].starts_with("GET /custom/path?common_name=&remote_ip=127.0.0.1&secret=pubonly&tls=false HTTP/1.1\r\n"),
        "{received:?}"
    );
}

#[tokio::test]
async fn golden_secrets_give_go_states_and_errors() {
    let server = AuthServer::start(Mode::Golden).await;

    let pubonly = ask(&server, "pubonly").await.unwrap();
    assert_eq!(
        (pubonly.identity.as_str(), pubonly.identity_url.as_str()),
        ("publisher", "")
    );
    assert!(pubonly.is_allowed("auth_pub", ""));
    assert!(!pubonly.is_allowed("auth_pub", "ch"));

    let pubnochan = ask(&server, "pubnochan").await.unwrap();
    assert_eq!(pubnochan.permission_count(), 1);
    assert!(!pubnochan.is_allowed("auth_pub", ""));

    let empty = ask(&server, "empty").await.unwrap();
    assert_eq!(empty.identity, "nobody");
    assert!(!empty.has_authorizations());
    assert_eq!(empty.permission_count(), 0);
    assert!(!empty.is_allowed("auth_pub", ""));

    let err = ask(&server, "zerottl").await.unwrap_err();
    assert_eq!(err.to_string(), "invalid TTL 0 (must be >0)");
    let err = ask(&server, "badperm").await.unwrap_err();
    assert_eq!(err.to_string(), "unknown permission admin");
    let err = ask(&server, "badregex").await.unwrap_err();
    assert!(
        matches!(err, QueryError::TopicRegex { ref pattern, .. } if pattern == "auth_("),
        "{err}"
    );
    let err = ask(&server, "badchannel").await.unwrap_err();
    assert!(
        matches!(err, QueryError::ChannelRegex { ref pattern, .. } if pattern == "[z-a]"),
        "{err}"
    );
    let err = ask(&server, "notjson").await.unwrap_err();
    assert!(matches!(err, QueryError::Json(_)), "{err}");
    let err = ask(&server, "denied").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"got response 403 Forbidden "{\"message\":\"FORBIDDEN\"}""#
    );
}

#[test]
fn is_allowed_follows_go() {
    let state = AuthState::from_reply(
        br#"{"ttl":10,"authorizations":[
            {"topic":"auth_.*","channels":[".*"],"permissions":["subscribe","publish"]},
            {"topic":"^sub$","channels":["^a$","^b"],"permissions":["subscribe"]}]}"#,
    )
    .unwrap();
    assert_eq!(
        (state.identity.as_str(), state.identity_url.as_str()),
        ("", "")
    );
    assert_eq!(state.permission_count(), 2);
    // Unanchored search: "auth_.*" matches inside a longer name.
    assert!(state.is_allowed("my_auth_topic", ""));
    assert!(state.is_allowed("auth_topic", "ch"));
    assert!(!state.is_allowed("other", ""));
    assert!(!state.is_allowed("other", "ch"));
    // Subscribe-only grant: SUB allowed when a channel pattern matches, PUB never.
    assert!(state.is_allowed("sub", "a"));
    assert!(state.is_allowed("sub", "bee"));
    assert!(!state.is_allowed("sub", "ca"));
    assert!(!state.is_allowed("sub", ""));
    assert!(!state.is_allowed("subx", "a"));
    // A grant without channels allows nothing, and null fields read as empty.
    let none = AuthState::from_reply(
        br#"{"ttl":10,"identity":null,"authorizations":[{"topic":".*","channels":null,"permissions":["publish"]}]}"#,
    )
    .unwrap();
    assert!(!none.is_allowed("t", ""));
    assert!(matches!(
        AuthState::from_reply(br#"{"ttl":-5,"authorizations":[]}"#),
        Err(QueryError::InvalidTtl(-5))
    ));
    assert!(matches!(
        AuthState::from_reply(br#"{"authorizations":[]}"#),
        Err(QueryError::InvalidTtl(0))
    ));
}

#[tokio::test(start_paused = true)]
async fn expires_after_the_ttl() {
    let state = AuthState::from_reply(br#"{"ttl":30,"authorizations":[]}"#).unwrap();
    assert!(!state.is_expired());
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(!state.is_expired());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(state.is_expired());
}

/// An address where nothing listens.
fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[tokio::test]
async fn fails_over_to_the_next_server() {
    let dead = dead_address();
    let failing = AuthServer::start(Mode::Fails).await;
    let good = AuthServer::start(Mode::Golden).await;
    let c = client(&options(&[&dead, &failing.addr, &good.addr]));
    let state = c.query_from(0, &request("good")).await.unwrap();
    assert_eq!(state.identity, "golden-user");
    assert_eq!(failing.received().len(), 1);
    // Starting past the good server wraps around to it.
    let state = c.query_from(1, &request("good")).await.unwrap();
    assert_eq!(state.identity, "golden-user");
    assert_eq!(failing.received().len(), 2);
    assert_eq!(good.received().len(), 2);
    // The random start reaches the good server from anywhere.
    for _ in 0..5 {
        assert!(c.query(&request("good")).await.is_ok());
    }
}

#[tokio::test]
async fn all_servers_failing_is_an_error() {
    let dead = dead_address();
    let failing = AuthServer::start(Mode::Fails).await;
    let c = client(&options(&[&dead, &failing.addr]));
    let err = c.query_from(0, &request("good")).await.unwrap_err();
    assert_eq!(err.to_string(), "Unable to access auth server");
    assert_eq!(err.failures.len(), 2);
    assert_eq!(err.failures[0].0, dead);
    assert!(matches!(
        err.failures[0].1,
        QueryError::Http(HttpError::Dial { .. })
    ));
    assert_eq!(
        err.failures[1].1.to_string(),
        "got response 500 Internal Server Error \"oops\""
    );
}

#[tokio::test]
async fn a_silent_server_times_out_then_the_next_answers() {
    let silent = AuthServer::start(Mode::Silent).await;
    let good = AuthServer::start(Mode::Golden).await;
    let with_timeout = |addrs: &[&str]| {
        let mut opts = options(addrs);
        opts.http_client_request_timeout = Duration::from_millis(200);
        client(&opts)
    };
    let started = std::time::Instant::now();
    let err = with_timeout(&[&silent.addr])
        .query(&request("good"))
        .await
        .unwrap_err();
    assert!(
        matches!(err.failures[0].1, QueryError::Http(HttpError::Timeout(_))),
        "{}",
        err.failures[0].1
    );
    let state = with_timeout(&[&silent.addr, &good.addr])
        .query_from(0, &request("good"))
        .await
        .unwrap();
    assert_eq!(state.identity, "golden-user");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn from_options_without_servers_or_with_a_bad_root_ca() {
    assert!(AuthClient::from_options(&Options::default())
        .unwrap()
        .is_none());
    let mut opts = options(&["127.0.0.1:1"]);
    opts.tls_root_ca_file = "/nonexistent/ca.pem".to_owned();
    let err = AuthClient::from_options(&opts).unwrap_err();
    assert!(
        err.starts_with("failed to build client TLS config - open /nonexistent/ca.pem:"),
        "{err}"
    );
    // An unreadable CA fails start-up even without auth servers, as in Go.
    opts.auth_http_addresses.clear();
    assert!(AuthClient::from_options(&opts).is_err());
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    opts.tls_root_ca_file = junk.to_str().unwrap().to_owned();
    assert_eq!(
        AuthClient::from_options(&opts).unwrap_err(),
        "failed to build client TLS config - failed to append certificates from Certificate Authority file"
    );
}

/// Makes a CA and a server certificate for 127.0.0.1 signed by it, with the openssl command.
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl must be installed for the https test");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=auth-test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// A TLS auth server with the certificate from [`make_certs`].
async fn start_tls_server(dir: &Path) -> (String, Arc<Mutex<Vec<String>>>) {
    let certs =
        rustls_pemfile::certs(&mut std::fs::read(dir.join("server.pem")).unwrap().as_slice())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
    let key =
        rustls_pemfile::private_key(&mut std::fs::read(dir.join("server.key")).unwrap().as_slice())
            .unwrap()
            .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let log = log.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    answer(tls, Mode::Golden, log).await;
                }
            });
        }
    });
    (addr, received)
}

#[tokio::test]
async fn https_servers_are_verified_against_the_root_ca() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (addr, received) = start_tls_server(dir.path()).await;
    let url = format!("https://{addr}/auth");

    let mut opts = options(&[&url]);
    opts.tls_root_ca_file = dir.path().join("ca.pem").to_str().unwrap().to_owned();
    let state = client(&opts).query(&request("good")).await.unwrap();
    assert_eq!(state.identity, "golden-user");
    assert!(received.lock()[0].starts_with(
        "GET /auth?common_name=&remote_ip=127.0.0.1&secret=good&tls=false HTTP/1.1\r\n"
    ));

    // Without the test CA (system roots only) the certificate is not trusted.
    let err = client(&options(&[&url]))
        .query(&request("good"))
        .await
        .unwrap_err();
    assert!(
        matches!(err.failures[0].1, QueryError::Http(HttpError::Tls { .. })),
        "{}",
        err.failures[0].1
    );
    assert_eq!(received.lock().len(), 1);
}
