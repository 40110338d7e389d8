//! The reader task of a V2 connection (Go's `protocolV2.IOLoop` and its command handlers).
//!
//! It reads a command line, applies the state checks Go applies before a body is read, then reads the body
//! with the protocol crate's limits, executes the command and queues the reply to the message pump. Replies go
//! through one ordered queue, so every PUB/MPUB/DPUB gets exactly one reply, in order.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nsq_core::{Channel, Consumer};
use nsq_protocol::compress::{Codec, Decoder, Encoder};
use nsq_protocol::encode_frame;
use nsq_protocol::{
    check_auth_params, clamp_req_timeout, decode_body, decode_line, invalid_command, parse_dpub,
    parse_fin, parse_identify, parse_mpub_topic, parse_pub_topic, parse_rdy, parse_req, parse_sub,
    parse_touch, Body, BodyKind, ClientError, ErrorCode, FrameType, IdentifyData, IdentifyResponse,
    Limits, Line, CLOSE_WAIT, OK,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;

use super::client::{Client, STATE_CLOSING, STATE_INIT, STATE_SUBSCRIBED};
use super::exec::{bad_state, wire_error, Failed};
use super::pump::{Outbound, PumpSettings};
use super::transport::{Handover, ReadHalf, Stream, Writer, TLS_HANDSHAKE_TIMEOUT};
use crate::auth::{AuthRequest, AuthState};
use crate::context::Context;
use crate::options::TLS_NOT_REQUIRED;

/// Go's default `bufio` size for client connections, used for the output buffer default too.
pub(crate) const DEFAULT_BUFFER_SIZE: usize = 16 * 1024;

/// Read buffer headroom kept before each read, so bodies split off as `Bytes` leave room for the next read.
const READ_RESERVE: usize = 64 * 1024;

/// Most plaintext one decompression step adds to the read buffer; bodies larger than this take several steps,
/// and a decompression bomb never gets further than the body size limits allow.
const DECODE_STEP: usize = 64 * 1024;

/// The connection went away (EOF, read deadline, I/O error, or the client was closed).
#[derive(Debug)]
pub(crate) struct Closed;

enum ExecError {
    Client(ClientError),
    Closed,
}

impl From<ClientError> for ExecError {
    fn from(e: ClientError) -> Self {
        Self::Client(e)
    }
}

impl From<Closed> for ExecError {
    fn from(_: Closed) -> Self {
        Self::Closed
    }
}

type ExecResult = Result<Option<Bytes>, ExecError>;

/// Per-connection settings that IDENTIFY changes (Go keeps them on `clientV2`).
#[derive(Debug, Clone, Copy)]
struct Settings {
    heartbeat_interval: Duration,
    output_buffer_size: i64,
    output_buffer_timeout: Duration,
    msg_timeout: Duration,
    sample_rate: i32,
}

impl Settings {
    fn pump(&self) -> PumpSettings {
        PumpSettings {
            heartbeat_interval: self.heartbeat_interval,
            output_buffer_size: usize::try_from(self.output_buffer_size).unwrap_or(1).max(1),
            output_buffer_timeout: self.output_buffer_timeout,
            msg_timeout: self.msg_timeout,
            sample_rate: self.sample_rate,
            since: tokio::time::Instant::now(),
        }
    }
}

/// The reader half of a connection and everything the command handlers need.
pub(crate) struct Conn {
    ctx: Arc<Context>,
    client: Arc<Client>,
    /// `None` only while an upgrade has the whole stream.
    reader: Option<ReadHalf>,
    /// Plaintext commands and bodies.
    buf: BytesMut,
    /// Compressed bytes not yet decoded, once snappy or deflate is on.
    raw: BytesMut,
    decoder: Option<Decoder>,
    /// The last decode produced a whole [`DECODE_STEP`].
    decoder_full: bool,
    /// The connection was upgraded to TLS (kept here so the per-command TLS policy check takes no lock).
    tls: bool,
    tx: mpsc::Sender<Outbound>,
    settings: Settings,
    channel: Option<Arc<Channel>>,
    /// The AUTH secret and what the auth server granted for it (Go's `AuthSecret` and `AuthState`).
    auth_secret: String,
    auth_state: Option<AuthState>,
    limits: Limits,
    /// FIN, REQ, RDY or CLS changed readiness since the pump was last woken. The wake is sent when the reader
    /// has consumed every buffered command, so commands that arrived together (`FIN` then `RDY 1`) all apply
    /// before the pump looks, as with Go, whose pump goroutine runs after its reader has handled the segment.
    /// It also turns a burst of pipelined FINs into one wake-up.
    wake_pending: bool,
}

impl Conn {
    /// The initial settings every client starts with (Go's `newClientV2`).
    pub(crate) fn initial_pump_settings(ctx: &Context) -> PumpSettings {
        Self::default_settings(ctx).pump()
    }

    fn default_settings(ctx: &Context) -> Settings {
        Settings {
            heartbeat_interval: ctx.opts.client_timeout / 2,
            output_buffer_size: DEFAULT_BUFFER_SIZE as i64,
            output_buffer_timeout: ctx.opts.output_buffer_timeout,
            msg_timeout: ctx.opts.msg_timeout,
            sample_rate: 0,
        }
    }

    pub(crate) fn new(
        ctx: Arc<Context>,
        client: Arc<Client>,
        reader: ReadHalf,
        buf: BytesMut,
        tx: mpsc::Sender<Outbound>,
    ) -> Self {
        let limits = Limits {
            max_msg_size: ctx.opts.max_msg_size,
            max_body_size: ctx.opts.max_body_size,
        };
        let settings = Self::default_settings(&ctx);
        Self {
            ctx,
            client,
            reader: Some(reader),
            buf,
            raw: BytesMut::new(),
            decoder: None,
            decoder_full: false,
            tls: false,
            tx,
            settings,
            channel: None,
            auth_secret: String::new(),
            auth_state: None,
            limits,
            wake_pending: false,
        }
    }

    /// Go's `IOLoop`: runs commands until the client goes away or a fatal error is sent.
    pub(crate) async fn io_loop(&mut self) {
        loop {
            let line = match self.read_line().await {
                Ok(line) => line,
                Err(Closed) => break,
            };
            match self.exec(line).await {
                Ok(Some(reply)) => {
                    if self
                        .send(Outbound::Frame(FrameType::Response, reply))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(None) => {}
                Err(ExecError::Closed) => break,
                Err(ExecError::Client(err)) => {
                    tracing::debug!(client = self.client.id, error = %err, "client error");
                    let fatal = err.is_fatal();
                    if self
                        .send(Outbound::Frame(FrameType::Error, err.to_bytes()))
                        .await
                        .is_err()
                        || fatal
                    {
                        break;
                    }
                }
            }
        }
    }

    /// The channel this connection subscribed to, if any.
    pub(crate) fn channel(&self) -> Option<&Arc<Channel>> {
        self.channel.as_ref()
    }

    async fn send(&self, out: Outbound) -> Result<(), Closed> {
        self.tx.send(out).await.map_err(|_| Closed)
    }

    /// Makes more plaintext available in `buf`: decodes what is already read when compression is on, else
    /// reads from the socket, bounded by the read deadline (2x heartbeat; none when heartbeats are off).
    async fn fill(&mut self) -> Result<(), Closed> {
        if std::mem::take(&mut self.wake_pending) {
            self.client.wake.notify_one();
        }
        if self.buf.capacity() - self.buf.len() < READ_RESERVE / 4 {
            self.buf.reserve(READ_RESERVE);
        }
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return read_deadline(
                    self.reader.as_mut(),
                    &mut self.buf,
                    self.settings.heartbeat_interval,
                    &self.client,
                )
                .await;
            };
            // A call that filled its whole step may have left plaintext inside the decoder, so it is asked
            // again even when no compressed bytes are waiting.
            if !self.raw.is_empty() || self.decoder_full {
                // A stream that does not decode ends the connection, as Go's failing reader does.
                let added = decoder
                    .decode(&mut self.raw, &mut self.buf, DECODE_STEP)
                    .map_err(|e| {
                        tracing::debug!(client = self.client.id, error = %e, "bad compressed stream");
                        Closed
                    })?;
                self.decoder_full = added == DECODE_STEP;
                if added > 0 {
                    return Ok(());
                }
            }
            if self.raw.capacity() - self.raw.len() < READ_RESERVE / 4 {
                self.raw.reserve(READ_RESERVE);
            }
            read_deadline(
                self.reader.as_mut(),
                &mut self.raw,
                self.settings.heartbeat_interval,
                &self.client,
            )
            .await?;
        }
    }

    async fn read_line(&mut self) -> Result<Line, Closed> {
        loop {
            match decode_line(&mut self.buf) {
                Ok(Some(line)) => return Ok(line),
                Ok(None) => self.fill().await?,
                // Go's bufio.ReadSlice fails and the connection is closed without an error frame.
                Err(_) => return Err(Closed),
            }
        }
    }

    async fn read_body(&mut self, kind: BodyKind) -> Result<Body, ExecError> {
        loop {
            if let Some(body) = decode_body(&mut self.buf, kind, &self.limits)? {
                return Ok(body);
            }
            self.fill().await?;
        }
    }

    async fn read_single_body(&mut self, kind: BodyKind) -> Result<Bytes, ExecError> {
        match self.read_body(kind).await? {
            Body::Single(b) => Ok(b),
            Body::Multi(_) => Err(ExecError::Closed),
        }
    }

    async fn exec(&mut self, line: Line) -> ExecResult {
        let params = &line.params;
        if &line.name[..] != b"IDENTIFY" {
            self.enforce_tls_policy(&line.name)?;
        }
        match &line.name[..] {
            b"IDENTIFY" => self.identify().await,
            b"FIN" => self.fin(params),
            b"RDY" => self.rdy(params),
            b"REQ" => self.req(params),
            b"PUB" => self.publish(params).await,
            b"MPUB" => self.mpub(params).await,
            b"DPUB" => self.dpub(params).await,
            b"NOP" => Ok(None),
            b"TOUCH" => self.touch(params),
            b"SUB" => self.sub(params).await,
            b"CLS" => self.cls(),
            b"AUTH" => self.auth(params).await,
            name => Err(invalid_command(name).into()),
        }
    }

    async fn identify(&mut self) -> ExecResult {
        if self.client.state() != STATE_INIT {
            return Err(bad_state("IDENTIFY").into());
        }
        let body = self.read_single_body(BodyKind::Identify).await?;
        let data = parse_identify(&body)?;
        {
            let mut meta = self.client.meta.lock();
            meta.client_id.clone_from(&data.client_id);
            meta.hostname.clone_from(&data.hostname);
            meta.user_agent.clone_from(&data.user_agent);
            meta.topology_zone.clone_from(&data.topology_zone);
            meta.topology_region.clone_from(&data.topology_region);
        }
        self.apply_identify(&data)
            .map_err(|e| ClientError::fatal(ErrorCode::BadBody, format!("IDENTIFY {e}")))?;
        self.client
            .sample_rate
            .store(self.settings.sample_rate, Ordering::Relaxed);
        self.send(Outbound::Identify(self.settings.pump())).await?;
        if !data.feature_negotiation {
            return Ok(Some(Bytes::from_static(OK)));
        }
        let opts = &self.ctx.opts;
        // TLS is offered over TCP only: a unix socket client is told `tls_v1: false` and stays in plain text.
        let tls = self.ctx.tls.is_some() && data.tls_v1 && !self.client.is_unix();
        let deflate = opts.deflate && data.deflate;
        let snappy = opts.snappy && data.snappy;
        let mut deflate_level = if deflate && data.deflate_level > 0 {
            data.deflate_level
        } else {
            6
        };
        deflate_level = deflate_level.min(opts.max_deflate_level);
        if deflate && snappy {
            return Err(ClientError::fatal(
                ErrorCode::IdentifyFailed,
                "cannot enable both deflate and snappy compression",
            )
            .into());
        }
        let resp = IdentifyResponse {
            max_rdy_count: opts.max_rdy_count,
            version: crate::NSQ_VERSION.to_owned(),
            max_msg_timeout: millis(opts.max_msg_timeout),
            msg_timeout: millis(self.settings.msg_timeout),
            tls_v1: tls,
            deflate,
            deflate_level,
            max_deflate_level: opts.max_deflate_level,
            snappy,
            sample_rate: i64::from(self.settings.sample_rate),
            auth_required: !opts.auth_http_addresses.is_empty(),
            output_buffer_size: self.settings.output_buffer_size,
            output_buffer_timeout: millis(self.settings.output_buffer_timeout),
            topology_region: opts.topology_region.clone(),
            topology_zone: opts.topology_zone.clone(),
        };
        let codec = if snappy {
            Some(Codec::Snappy)
        } else if deflate {
            Some(Codec::Deflate {
                level: u32::try_from(deflate_level.clamp(1, 9)).unwrap_or(6),
            })
        } else {
            None
        };
        if !tls && codec.is_none() {
            return Ok(Some(resp.to_bytes()));
        }
        self.send(Outbound::Frame(FrameType::Response, resp.to_bytes()))
            .await?;
        self.upgrade(tls, codec).await?;
        Ok(None)
    }

    /// Switches the connection to TLS and/or compression right after the IDENTIFY response, in Go's order
    /// (TLS, then snappy or deflate), each followed by an `OK` frame sent through the new transport.
    ///
    /// The pump writes out the IDENTIFY response and lends its half of the socket; with both halves the reader
    /// runs the handshake, writes the `OK`s, splits the new stream and returns the pump its half together with
    /// the output encoder. A failed handshake ends the connection: nothing useful can be sent to a peer whose
    /// TLS state is unknown (Go tries to send `E_IDENTIFY_FAILED` in plain text, which the client cannot read).
    async fn upgrade(&mut self, tls: bool, codec: Option<Codec>) -> Result<(), ExecError> {
        let (lend_tx, lend_rx) = oneshot::channel();
        let (back_tx, back_rx) = oneshot::channel();
        self.send(Outbound::Handover(Handover {
            lend: lend_tx,
            back: back_rx,
        }))
        .await?;
        let Writer { half, mut encoder } = lend_rx.await.map_err(|_| Closed)?;
        let reader = self.reader.take().ok_or(Closed)?;
        let mut stream = Stream::reunite(reader, half).map_err(|_| Closed)?;
        let write_deadline = if self.settings.heartbeat_interval.is_zero() {
            TLS_HANDSHAKE_TIMEOUT
        } else {
            self.settings.heartbeat_interval
        };
        let mut ok = BytesMut::new();
        encode_frame(&mut ok, FrameType::Response, OK);
        if tls {
            let Some(config) = self.ctx.tls.clone() else {
                return Err(ExecError::Closed);
            };
            if !self.buf.is_empty() {
                // The client sent more than IDENTIFY before reading its answer; those bytes would have to be
                // the TLS handshake, which cannot be replayed into it. Go drops them with its old reader.
                tracing::warn!(
                    client = self.client.id,
                    "IDENTIFY failed: data received before the TLS handshake"
                );
                return Err(ExecError::Closed);
            }
            let (upgraded, info) = stream
                .upgrade_tls(&TlsAcceptor::from(config))
                .await
                .map_err(|e| {
                    tracing::warn!(
                        client = self.client.id,
                        "E_IDENTIFY_FAILED IDENTIFY failed {e}"
                    );
                    Closed
                })?;
            stream = upgraded;
            self.client.meta.lock().tls = Some(info);
            self.tls = true;
            write_with_deadline(&mut stream, &ok, write_deadline).await?;
        }
        if let Some(codec) = codec {
            let mut enc = Encoder::new(codec);
            let mut wire = BytesMut::new();
            enc.encode(&ok, &mut wire);
            write_with_deadline(&mut stream, &wire, write_deadline).await?;
            encoder = Some(enc);
            self.decoder = Some(Decoder::new(codec));
            // Whatever was read past the IDENTIFY body was sent compressed.
            self.raw = self.buf.split();
            let mut meta = self.client.meta.lock();
            match codec {
                Codec::Snappy => meta.snappy = true,
                Codec::Deflate { .. } => meta.deflate = true,
            }
        }
        let (reader, half) = stream.split();
        self.reader = Some(reader);
        back_tx
            .send(Writer { half, encoder })
            .map_err(|_| ExecError::Closed)
    }

    /// Go's `enforceTLSPolicy`: with `--tls-required` (or a client certificate policy), only IDENTIFY is
    /// accepted before the connection is upgraded.
    fn enforce_tls_policy(&self, command: &[u8]) -> Result<(), ClientError> {
        if self.ctx.opts.tls_required != TLS_NOT_REQUIRED && !self.tls {
            return Err(ClientError::fatal(
                ErrorCode::Invalid,
                format!(
                    "cannot {} in current state (TLS required)",
                    String::from_utf8_lossy(command)
                ),
            ));
        }
        Ok(())
    }

    /// Go's `clientV2.Identify` validation, field by field in Go's order.
    fn apply_identify(&mut self, data: &IdentifyData) -> Result<(), String> {
        let opts = Arc::clone(&self.ctx.opts);
        let s = &mut self.settings;
        match data.heartbeat_interval {
            -1 => s.heartbeat_interval = Duration::ZERO,
            0 => {}
            ms if ms >= 1000 && ms <= millis(opts.max_heartbeat_interval) => {
                s.heartbeat_interval = from_ms(ms)
            }
            ms => return Err(format!("heartbeat interval ({ms}) is invalid")),
        }
        match data.output_buffer_timeout {
            -1 => s.output_buffer_timeout = Duration::ZERO,
            0 => {}
            ms if ms >= millis(opts.min_output_buffer_timeout)
                && ms <= millis(opts.max_output_buffer_timeout) =>
            {
                s.output_buffer_timeout = from_ms(ms);
            }
            ms => return Err(format!("output buffer timeout ({ms}) is invalid")),
        }
        match data.output_buffer_size {
            -1 => {
                s.output_buffer_size = 1;
                s.output_buffer_timeout = Duration::ZERO;
            }
            0 => {}
            n if (64..=opts.max_output_buffer_size).contains(&n) => s.output_buffer_size = n,
            n => return Err(format!("output buffer size ({n}) is invalid")),
        }
        match data.sample_rate {
            r @ 0..=99 => s.sample_rate = r as i32,
            r => return Err(format!("sample rate ({r}) is invalid")),
        }
        match data.msg_timeout {
            0 => {}
            ms if ms >= 1000 && ms <= millis(opts.max_msg_timeout) => s.msg_timeout = from_ms(ms),
            ms => return Err(format!("msg timeout ({ms}) is invalid")),
        }
        Ok(())
    }

    /// Go's AUTH: the secret is sent to the auth servers and what they grant is kept for PUB and SUB checks.
    /// Why an auth server failed is logged, never told to the client.
    async fn auth(&mut self, params: &[Bytes]) -> ExecResult {
        if self.client.state() != STATE_INIT {
            return Err(bad_state("AUTH").into());
        }
        check_auth_params(params)?;
        let secret = self.read_single_body(BodyKind::Auth).await?;
        if self.has_authorizations() {
            return Err(ClientError::fatal(ErrorCode::Invalid, "AUTH already set").into());
        }
        if self.ctx.auth.is_none() {
            return Err(ClientError::fatal(ErrorCode::AuthDisabled, "AUTH disabled").into());
        }
        self.auth_secret = String::from_utf8_lossy(&secret).into_owned();
        self.query_auth().await?;
        if !self.has_authorizations() {
            return Err(ClientError::fatal(
                ErrorCode::Unauthorized,
                "AUTH no authorizations found",
            )
            .into());
        }
        let state = self.auth_state.as_ref().ok_or(ExecError::Closed)?;
        let reply = serde_json::json!({
            "identity": state.identity,
            "identity_url": state.identity_url,
            "permission_count": state.permission_count(),
        });
        let body = nsq_protocol::to_go_json(&reply)
            .map_err(|e| ClientError::fatal(ErrorCode::AuthError, format!("AUTH error {e}")))?;
        Ok(Some(Bytes::from(body)))
    }

    fn has_authorizations(&self) -> bool {
        self.auth_state
            .as_ref()
            .is_some_and(AuthState::has_authorizations)
    }

    /// Asks the auth servers about the stored secret (Go's `QueryAuthd`); a failure is `E_AUTH_FAILED`.
    async fn query_auth(&mut self) -> Result<(), ClientError> {
        let failed = || ClientError::fatal(ErrorCode::AuthFailed, "AUTH failed");
        let Some(auth) = self.ctx.auth.as_ref() else {
            return Err(failed());
        };
        let remote_ip = self.client.remote_ip();
        let common_name = self
            .client
            .meta
            .lock()
            .tls
            .as_ref()
            .map(|t| t.common_name.clone())
            .unwrap_or_default();
        let request = AuthRequest {
            remote_ip: &remote_ip,
            tls: self.tls,
            secret: &self.auth_secret,
            common_name: &common_name,
        };
        match auth.query(&request).await {
            Ok(state) => {
                self.client.meta.lock().auth_identity = state
                    .has_authorizations()
                    .then(|| (state.identity.clone(), state.identity_url.clone()));
                self.auth_state = Some(state);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(client = self.client.id, "PROTOCOL(V2): AUTH failed {e}");
                Err(failed())
            }
        }
    }

    /// Go's `CheckAuth`: with auth enabled, `cmd` needs a prior AUTH whose grants (asked again once their
    /// TTL has passed) allow `topic` and `channel` (`""` for publishing).
    async fn check_auth(
        &mut self,
        cmd: &str,
        topic: &str,
        channel: &str,
    ) -> Result<(), ClientError> {
        if self.ctx.auth.is_none() {
            return Ok(());
        }
        if !self.has_authorizations() {
            return Err(ClientError::fatal(
                ErrorCode::AuthFirst,
                format!("AUTH required before {cmd}"),
            ));
        }
        if self.auth_state.as_ref().is_some_and(AuthState::is_expired) {
            self.query_auth().await?;
        }
        if !self
            .auth_state
            .as_ref()
            .is_some_and(|s| s.is_allowed(topic, channel))
        {
            return Err(ClientError::fatal(
                ErrorCode::Unauthorized,
                format!("AUTH failed for {cmd} on {topic:?} {channel:?}"),
            ));
        }
        Ok(())
    }

    async fn sub(&mut self, params: &[Bytes]) -> ExecResult {
        if self.client.state() != STATE_INIT {
            return Err(bad_state("SUB").into());
        }
        if self.settings.heartbeat_interval.is_zero() {
            return Err(ClientError::fatal(
                ErrorCode::Invalid,
                "cannot SUB with heartbeats disabled",
            )
            .into());
        }
        let sub = parse_sub(params)?;
        self.check_auth("SUB", &sub.topic, &sub.channel).await?;
        let consumer: Arc<dyn Consumer> = self.client.clone();
        let mut attempt = 0;
        let channel = loop {
            attempt += 1;
            let topic = self.ctx.get_topic(&sub.topic).await;
            let (channel, _) = topic.get_channel(&sub.channel);
            channel
                .add_client(Arc::clone(&consumer))
                .map_err(|e| wire_error(Failed::Sub, &e))?;
            // An ephemeral channel or topic may have been deleted between lookup and subscription.
            if (channel.is_ephemeral() && channel.is_exiting())
                || (topic.is_ephemeral() && topic.is_exiting())
            {
                self.ctx.topics.remove_consumer(&channel, self.client.id);
                if attempt < 2 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                return Err(ClientError::fatal(
                    ErrorCode::SubFailed,
                    "SUB failed to deleted topic/channel",
                )
                .into());
            }
            break channel;
        };
        self.client.state.store(STATE_SUBSCRIBED, Ordering::Release);
        self.channel = Some(Arc::clone(&channel));
        self.send(Outbound::Subscribed(channel)).await?;
        Ok(Some(Bytes::from_static(OK)))
    }

    fn rdy(&mut self, params: &[Bytes]) -> ExecResult {
        let state = self.client.state();
        if state == STATE_CLOSING {
            // Go ignores RDY changes on a closing connection.
            return Ok(None);
        }
        if state != STATE_SUBSCRIBED {
            return Err(bad_state("RDY").into());
        }
        let count = parse_rdy(params, self.ctx.opts.max_rdy_count)?;
        self.client.ready_count.store(count, Ordering::Release);
        self.wake_pending = true;
        Ok(None)
    }

    fn subscribed_channel(&self, cmd: &str) -> Result<&Arc<Channel>, ClientError> {
        let state = self.client.state();
        match &self.channel {
            Some(c) if state == STATE_SUBSCRIBED || state == STATE_CLOSING => Ok(c),
            _ => Err(bad_state(cmd)),
        }
    }

    fn fin(&mut self, params: &[Bytes]) -> ExecResult {
        let channel = self.subscribed_channel("FIN")?;
        let id = parse_fin(params)?;
        channel
            .finish(self.client.id, &id)
            .map_err(|e| wire_error(Failed::Fin(&id), &e))?;
        self.client.finish_count.fetch_add(1, Ordering::Relaxed);
        self.client.message_done();
        self.wake_pending = true;
        Ok(None)
    }

    fn req(&mut self, params: &[Bytes]) -> ExecResult {
        let channel = self.subscribed_channel("REQ")?;
        let (id, timeout_ms) = parse_req(params)?;
        let max_ms = u64::try_from(self.ctx.opts.max_req_timeout.as_millis()).unwrap_or(u64::MAX);
        let delay = Duration::from_millis(clamp_req_timeout(timeout_ms, max_ms));
        channel
            .requeue(self.client.id, &id, delay)
            .map_err(|e| wire_error(Failed::Req(&id), &e))?;
        self.client.requeue_count.fetch_add(1, Ordering::Relaxed);
        self.client.message_done();
        self.wake_pending = true;
        Ok(None)
    }

    fn touch(&mut self, params: &[Bytes]) -> ExecResult {
        let channel = self.subscribed_channel("TOUCH")?;
        let id = parse_touch(params)?;
        channel
            .touch(self.client.id, &id, self.settings.msg_timeout)
            .map_err(|e| wire_error(Failed::Touch(&id), &e))?;
        Ok(None)
    }

    fn cls(&mut self) -> ExecResult {
        if self.client.state() != STATE_SUBSCRIBED {
            return Err(bad_state("CLS").into());
        }
        self.client.ready_count.store(0, Ordering::Release);
        self.client.state.store(STATE_CLOSING, Ordering::Release);
        self.wake_pending = true;
        Ok(Some(Bytes::from_static(CLOSE_WAIT)))
    }

    async fn publish(&mut self, params: &[Bytes]) -> ExecResult {
        let topic_name = parse_pub_topic("PUB", params)?;
        let body = self.read_single_body(BodyKind::Pub).await?;
        self.check_auth("PUB", &topic_name, "").await?;
        let topic = self.ctx.get_topic(&topic_name).await;
        self.ctx
            .publish(&topic, [body], Duration::ZERO)
            .await
            .map_err(|e| wire_error(Failed::Pub, &e))?;
        self.client.published(&topic_name, 1);
        Ok(Some(Bytes::from_static(OK)))
    }

    async fn mpub(&mut self, params: &[Bytes]) -> ExecResult {
        let topic_name = parse_mpub_topic(params)?;
        self.check_auth("MPUB", &topic_name, "").await?;
        // Go creates the topic before it reads the body, so a bad body still leaves the topic behind.
        let topic = self.ctx.get_topic(&topic_name).await;
        let bodies = match self.read_body(BodyKind::Mpub).await? {
            Body::Multi(b) => b,
            Body::Single(b) => vec![b],
        };
        let n = bodies.len() as u64;
        self.ctx
            .publish(&topic, bodies, Duration::ZERO)
            .await
            .map_err(|e| wire_error(Failed::Mpub, &e))?;
        self.client.published(&topic_name, n);
        Ok(Some(Bytes::from_static(OK)))
    }

    async fn dpub(&mut self, params: &[Bytes]) -> ExecResult {
        let max_ms = u64::try_from(self.ctx.opts.max_req_timeout.as_millis()).unwrap_or(u64::MAX);
        let (topic_name, defer_ms) = parse_dpub(params, max_ms)?;
        let body = self.read_single_body(BodyKind::Dpub).await?;
        self.check_auth("DPUB", &topic_name, "").await?;
        let topic = self.ctx.get_topic(&topic_name).await;
        self.ctx
            .publish(&topic, [body], Duration::from_millis(defer_ms))
            .await
            .map_err(|e| wire_error(Failed::Dpub, &e))?;
        self.client.published(&topic_name, 1);
        Ok(Some(Bytes::from_static(OK)))
    }
}

/// Writes and flushes `bytes` on the whole stream during an upgrade.
async fn write_with_deadline(
    stream: &mut Stream,
    bytes: &[u8],
    deadline: Duration,
) -> Result<(), Closed> {
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match tokio::time::timeout(deadline, write).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(Closed),
    }
}

/// One socket read into `into`, bounded by the read deadline and the client's cancellation.
async fn read_deadline(
    reader: Option<&mut ReadHalf>,
    into: &mut BytesMut,
    heartbeat: Duration,
    client: &Client,
) -> Result<(), Closed> {
    let reader = reader.ok_or(Closed)?;
    let read = reader.read_buf(into);
    let n = tokio::select! {
        () = client.cancel.cancelled() => return Err(Closed),
        r = async {
            if heartbeat.is_zero() { read.await } else {
                tokio::time::timeout(heartbeat * 2, read).await.unwrap_or_else(|_| {
                    Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "read deadline"))
                })
            }
        } => r,
    };
    match n {
        Ok(0) | Err(_) => Err(Closed),
        Ok(_) => Ok(()),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn from_ms(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
