//! The client of the external auth servers (`--auth-http-address`), Go's `internal/auth`: when a TCP client
//! sends `AUTH <secret>`, nsqd asks an auth server which topics and channels that secret may publish to or
//! subscribe to, and caches the answer until its TTL runs out.
//!
//! A query carries `remote_ip`, `tls`, `secret` and `common_name`, either as the query string of
//! `GET http://<addr>/auth` (Go's `url.Values.Encode`: keys sorted, `QueryEscape`d) or, with
//! `--auth-http-request-method=post`, as a JSON object of one-string arrays posted to the same URL. An
//! address holding `://` is used as the whole URL instead. The servers are tried in turn from a random one
//! until one gives a valid answer.
//!
//! An answer is checked once, when it arrives: every permission must be `subscribe` or `publish`, every
//! topic and channel pattern must compile, and the TTL must be positive. The patterns are compiled then and
//! kept, so [`AuthState::is_allowed`] does no parsing. Go's RE2 and Rust's `regex` share a syntax; their
//! Unicode-versus-ASCII differences (`\d`, `\w`, `\s`, `\b`) cannot show on NSQ names, which are ASCII.

use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use tokio::time::Instant;

use crate::http_client::{query_escape, HttpClient, HttpError};
use crate::Options;

#[cfg(test)]
mod tests;

/// What nsqd tells the auth server about a client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthRequest<'a> {
    /// The client's IP address, without port.
    pub(crate) remote_ip: &'a str,
    /// Whether the connection was upgraded to TLS.
    pub(crate) tls: bool,
    /// The `AUTH` body.
    pub(crate) secret: &'a str,
    /// The common name of the client's TLS certificate, or empty.
    pub(crate) common_name: &'a str,
}

/// One server's answer, validated, with its patterns compiled.
#[derive(Debug)]
pub(crate) struct AuthState {
    /// Who the secret belongs to, echoed to the client in the AUTH response.
    pub(crate) identity: String,
    /// Where to learn more about the identity, echoed to the client.
    pub(crate) identity_url: String,
    authorizations: Vec<Authorization>,
    /// When the answer must be asked for again (`now + ttl` when it arrived).
    expires: Instant,
}

/// A connection's way to the auth servers; built once at start-up and shared by every connection.
#[derive(Debug)]
pub(crate) struct AuthClient {
    endpoints: Vec<Endpoint>,
    post: bool,
    http: HttpClient,
}

/// No auth server gave a valid answer. Shown to the client only as `E_AUTH_FAILED AUTH failed`; each
/// server's own failure is logged as it happens and kept here.
#[derive(Debug, thiserror::Error)]
#[error("Unable to access auth server")]
pub(crate) struct AuthError {
    /// Each address tried, in order, with why it failed.
    pub(crate) failures: Vec<(String, QueryError)>,
}

/// Why one auth server's answer was not used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QueryError {
    /// The request failed or the status was not 200.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The body is not the expected JSON.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// A permission other than `subscribe` and `publish`.
    #[error("unknown permission {0}")]
    UnknownPermission(String),
    /// A topic pattern that does not compile.
    #[error("unable to compile topic {pattern:?} {source}")]
    TopicRegex {
        /// The pattern as received.
        pattern: String,
        /// The compiler's complaint.
        #[source]
        source: regex::Error,
    },
    /// A channel pattern that does not compile.
    #[error("unable to compile channel {pattern:?} {source}")]
    ChannelRegex {
        /// The pattern as received.
        pattern: String,
        /// The compiler's complaint.
        #[source]
        source: regex::Error,
    },
    /// A TTL of zero or less.
    #[error("invalid TTL {0} (must be >0)")]
    InvalidTtl(i64),
}

impl AuthClient {
    /// The client for `opts`, or `None` when no `--auth-http-address` is set. Fails, like Go's
    /// `buildClientTLSConfig`, when `--tls-root-ca-file` is set but unreadable or holds no certificate;
    /// the message is Go's start-up error text.
    pub(crate) fn from_options(opts: &Options) -> Result<Option<Self>, String> {
        let roots = if opts.tls_root_ca_file.is_empty() {
            None
        } else {
            Some(
                load_root_ca(&opts.tls_root_ca_file)
                    .map_err(|e| format!("failed to build client TLS config - {e}"))?,
            )
        };
        if opts.auth_http_addresses.is_empty() {
            return Ok(None);
        }
        let endpoints: Vec<Endpoint> = opts
            .auth_http_addresses
            .iter()
            .map(|address| Endpoint::new(address))
            .collect();
        // The system roots are read only when an https server is configured.
        let wants_tls = endpoints.iter().any(|e| {
            e.url
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        });
        let tls = if roots.is_some() || wants_tls {
            let roots = roots.unwrap_or_else(system_roots);
            Some(client_tls_config(roots, opts.tls_min_version)?)
        } else {
            None
        };
        Ok(Some(Self {
            endpoints,
            post: opts.auth_http_request_method == "post",
            http: HttpClient {
                connect_timeout: opts.http_client_connect_timeout,
                request_timeout: opts.http_client_request_timeout,
                // Go reads the whole answer; nsqd's body limit keeps a broken server from filling memory.
                max_body_size: usize::try_from(opts.max_body_size.max(0)).unwrap_or(usize::MAX),
                tls,
            },
        }))
    }

    /// Asks the servers, from a random one and then each in turn, until one answers validly (Go's
    /// `QueryAnyAuthd`).
    pub(crate) async fn query(&self, req: &AuthRequest<'_>) -> Result<AuthState, AuthError> {
        let start = rand::random::<usize>() % self.endpoints.len();
        self.query_from(start, req).await
    }

    /// [`Self::query`] starting at the server with index `start`.
    async fn query_from(
        &self,
        start: usize,
        req: &AuthRequest<'_>,
    ) -> Result<AuthState, AuthError> {
        let n = self.endpoints.len();
        let mut failures = Vec::new();
        for i in 0..n {
            let endpoint = &self.endpoints[(start + i) % n];
            match self.query_one(endpoint, req).await {
                Ok(state) => return Ok(state),
                Err(err) => {
                    tracing::warn!("Error: failed auth against {} {err}", endpoint.address);
                    failures.push((endpoint.address.clone(), err));
                }
            }
        }
        Err(AuthError { failures })
    }

    /// One server (Go's `QueryAuthd`).
    async fn query_one(
        &self,
        endpoint: &Endpoint,
        req: &AuthRequest<'_>,
    ) -> Result<AuthState, QueryError> {
        let fields = req.fields();
        let body = if self.post {
            self.http
                .post_v1_json(&endpoint.url, post_body(&fields).as_bytes())
                .await?
        } else {
            let url = format!("{}?{}", endpoint.url, encode_query(&fields));
            self.http.get_v1(&url).await?
        };
        AuthState::from_reply(&body)
    }
}

impl AuthState {
    /// Whether the TTL has run out, so the next PUB or SUB must ask again.
    pub(crate) fn is_expired(&self) -> bool {
        self.expires <= Instant::now()
    }

    /// Whether any authorization lets the client publish to `topic` (when `channel` is empty) or subscribe
    /// to `topic`/`channel`. As in Go, a publish also needs a channel pattern that matches "".
    pub(crate) fn is_allowed(&self, topic: &str, channel: &str) -> bool {
        self.authorizations
            .iter()
            .any(|a| a.is_allowed(topic, channel))
    }

    /// The number of authorizations, reported to the client as `permission_count`.
    pub(crate) fn permission_count(&self) -> usize {
        self.authorizations.len()
    }

    /// Whether the server granted anything at all; an AUTH without is refused.
    pub(crate) fn has_authorizations(&self) -> bool {
        !self.authorizations.is_empty()
    }

    /// Parses and validates a 200 answer's body; the TTL counts from now.
    fn from_reply(body: &[u8]) -> Result<Self, QueryError> {
        let reply: Reply = serde_json::from_slice(body)?;
        let authorizations = reply
            .authorizations
            .unwrap_or_default()
            .into_iter()
            .map(Authorization::compile)
            .collect::<Result<Vec<_>, _>>()?;
        let ttl = reply.ttl.unwrap_or(0);
        let Some(secs) = u64::try_from(ttl).ok().filter(|&s| s > 0) else {
            return Err(QueryError::InvalidTtl(ttl));
        };
        let now = Instant::now();
        // A TTL too long for the clock lasts about a century instead.
        let expires = now
            .checked_add(Duration::from_secs(secs))
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
        Ok(Self {
            identity: reply.identity.unwrap_or_default(),
            identity_url: reply.identity_url.unwrap_or_default(),
            authorizations,
            expires,
        })
    }
}

impl AuthRequest<'_> {
    /// The request fields, sorted by name as Go's `url.Values` encodes them.
    fn fields(&self) -> [(&'static str, &str); 4] {
        [
            ("common_name", self.common_name),
            ("remote_ip", self.remote_ip),
            ("secret", self.secret),
            ("tls", if self.tls { "true" } else { "false" }),
        ]
    }
}

/// One configured auth server.
#[derive(Debug)]
struct Endpoint {
    /// The flag value, for logs.
    address: String,
    /// The URL asked: the address itself when it holds `://`, else `http://<address>/auth`.
    url: String,
}

impl Endpoint {
    fn new(address: &str) -> Self {
        let url = if address.contains("://") {
            address.to_owned()
        } else {
            format!("http://{address}/auth")
        };
        Self {
            address: address.to_owned(),
            url,
        }
    }
}

/// One grant, its patterns compiled.
#[derive(Debug)]
struct Authorization {
    topic: Regex,
    channels: Vec<Regex>,
    publish: bool,
    subscribe: bool,
}

impl Authorization {
    /// Validates a grant in Go's order: permissions, then the topic, then each channel pattern.
    fn compile(raw: ReplyAuthorization) -> Result<Self, QueryError> {
        let (mut publish, mut subscribe) = (false, false);
        for permission in raw.permissions.unwrap_or_default() {
            match permission.as_str() {
                "publish" => publish = true,
                "subscribe" => subscribe = true,
                _ => return Err(QueryError::UnknownPermission(permission)),
            }
        }
        let pattern = raw.topic.unwrap_or_default();
        let topic = Regex::new(&pattern).map_err(|source| QueryError::TopicRegex {
            pattern: pattern.clone(),
            source,
        })?;
        let channels = raw
            .channels
            .unwrap_or_default()
            .into_iter()
            .map(|pattern| {
                Regex::new(&pattern).map_err(|source| QueryError::ChannelRegex { pattern, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            topic,
            channels,
            publish,
            subscribe,
        })
    }

    /// Go's `Authorization.IsAllowed`: unanchored matches, like `MatchString`.
    fn is_allowed(&self, topic: &str, channel: &str) -> bool {
        let permitted = if channel.is_empty() {
            self.publish
        } else {
            self.subscribe
        };
        permitted && self.topic.is_match(topic) && self.channels.iter().any(|c| c.is_match(channel))
    }
}

/// The auth server's answer as sent. Absent and `null` fields are zero values, as in Go.
#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    ttl: Option<i64>,
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    identity_url: Option<String>,
    #[serde(default)]
    authorizations: Option<Vec<ReplyAuthorization>>,
}

/// One grant as sent.
#[derive(Deserialize)]
struct ReplyAuthorization {
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
}

/// Go's `url.Values.Encode` for fields already sorted by name.
fn encode_query(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Go's `json.Marshal` of a `url.Values` holding one value per sorted key: `{"k":["v"],…}`.
fn post_body(fields: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_go_json_string(&mut out, k);
        out.push_str(":[");
        push_go_json_string(&mut out, v);
        out.push(']');
    }
    out.push('}');
    out
}

/// A JSON string as Go 1.19's `encoding/json` writes it: HTML-safe (`<`, `>`, `&` escaped), U+2028 and
/// U+2029 escaped, and control characters other than `\n`, `\r`, `\t` as `\u00XX`.
fn push_go_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The certificates of `--tls-root-ca-file`, with Go's error texts.
fn load_root_ca(path: &str) -> Result<rustls::RootCertStore, String> {
    let pem = std::fs::read(path).map_err(|e| format!("open {path}: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()).flatten() {
        // Like Go's AppendCertsFromPEM, a certificate that does not parse is skipped.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err("failed to append certificates from Certificate Authority file".to_owned());
    }
    Ok(roots)
}

/// The operating system's trusted roots; whatever cannot be read is left out (https then fails per query).
fn system_roots() -> rustls::RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for err in &found.errors {
        tracing::warn!("failed to load a system root certificate - {err}");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (_added, _skipped) = roots.add_parsable_certificates(found.certs);
    roots
}

/// A rustls client configuration honouring `--tls-min-version` (rustls offers only TLS 1.2 and 1.3, so any
/// lower minimum means 1.2).
fn client_tls_config(
    roots: rustls::RootCertStore,
    min_version: u16,
) -> Result<Arc<rustls::ClientConfig>, String> {
    const TLS13: u16 = 0x0304;
    let versions: &[&rustls::SupportedProtocolVersion] = if min_version >= TLS13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .map_err(|e| format!("failed to build client TLS config - {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}
