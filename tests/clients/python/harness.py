"""Starts our nsqd and nsqlookupd binaries for the client suites and talks to them.

The suites drive real daemon processes with real client libraries, so this
module owns the parts every test needs: finding the binaries, picking free
loopback ports, waiting until a daemon answers, stopping, killing or freezing
it, plain HTTP and HTTPS calls, raw protocol frames (plain or upgraded to TLS),
the test certificates, and running a pynsq scenario on a fresh event loop with
a hard deadline.
"""

import asyncio
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import nsq

REPO_ROOT = Path(__file__).resolve().parents[3]
# Test-only certificates made by tests/certs/generate.sh (see its README).
CERTS_DIR = REPO_ROOT / "tests" / "certs"

FRAME_RESPONSE = 0
FRAME_ERROR = 1
FRAME_MESSAGE = 2


def _binary(name, env_var):
    """Returns the binary to test: $env_var, else release, else debug."""
    configured = os.environ.get(env_var)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise RuntimeError(f"{env_var}={configured} does not exist")
        return path
    for profile in ("release", "debug"):
        path = REPO_ROOT / "target" / profile / name
        if path.is_file():
            return path
    raise RuntimeError(
        f"no {name} binary: build it with `cargo build --release -p {name}` or set {env_var}"
    )


def nsqd_binary():
    """Returns the nsqd binary to test: $NSQD_BIN, else release, else debug."""
    return _binary("nsqd", "NSQD_BIN")


def nsqlookupd_binary():
    """Returns the nsqlookupd binary: $NSQLOOKUPD_BIN, else release, else debug."""
    return _binary("nsqlookupd", "NSQLOOKUPD_BIN")


def free_port():
    """Asks the kernel for a free loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count):
    """Asks the kernel for count different free loopback ports.

    All sockets stay bound until every port is chosen, so no two are equal.
    """
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def cert_path(name):
    """The path of one test certificate or key file, e.g. cert_path("ca.pem")."""
    path = CERTS_DIR / name
    if not path.is_file():
        raise RuntimeError(f"missing test certificate {path}: run tests/certs/generate.sh")
    return str(path)


def server_tls_args(*extra):
    """nsqd flags that give it the test server certificate, plus extra flags."""
    return (f"--tls-cert={cert_path('server.pem')}", f"--tls-key={cert_path('server.key')}", *extra)


def client_tls_context(cert=None, minimum=None, maximum=None):
    """A client-side ssl context that verifies nsqd against the test CA.

    cert names a client key pair in tests/certs ("client" or "rogue") to
    present; minimum and maximum bound the TLS version (ssl.TLSVersion values).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cert_path("ca.pem"))
    if cert is not None:
        context.load_cert_chain(cert_path(f"{cert}.pem"), cert_path(f"{cert}.key"))
    if minimum is not None:
        context.minimum_version = minimum
    if maximum is not None:
        context.maximum_version = maximum
    return context


class NsqdExited(RuntimeError):
    """A daemon quit during startup, for example because a port was taken."""


class Daemon:
    """One daemon process on two free loopback ports (TCP and HTTP).

    Subclasses name the binary and build the command line; this class starts
    the process with its output in a log file, waits until both ports answer,
    and stops, kills, freezes or thaws it.
    """

    name = "daemon"

    def __init__(self, data_dir, extra_args=()):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = self.data_dir / f"{self.name}.log"
        self.tcp_port = None
        self.http_port = None

    def _choose_ports(self):
        """Picks the free ports the next start listens on."""
        self.tcp_port, self.http_port = free_ports(2)

    def binary(self):
        raise NotImplementedError

    def args(self):
        """The command line after the binary, built from the chosen ports."""
        raise NotImplementedError

    @property
    def tcp_address(self):
        return f"127.0.0.1:{self.tcp_port}"

    @property
    def http_address(self):
        return f"127.0.0.1:{self.http_port}"

    @property
    def http_url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def start(self):
        """Starts the daemon, retrying on fresh ports if it quits during startup.

        A daemon that stays up but never answers is not retried: that is a
        bug to report, not a port race.
        """
        last_error = None
        for _ in range(3):
            self._choose_ports()
            try:
                self._spawn_and_wait()
                return self
            except NsqdExited as err:
                last_error = err
                self.stop()
            except RuntimeError:
                self.stop()
                raise
        raise RuntimeError(f"{self.name} did not start: {last_error}")

    def _spawn_and_wait(self):
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [str(self.binary()), *self.args()],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise NsqdExited(
                    f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}"
                )
            if self._answers():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer within 10s: {self.log_tail()}")

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.5):
                pass
            with urllib.request.urlopen(self.http_url + "/ping", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def log_tail(self, limit=4000):
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "<no log>"

    def stop(self):
        """Stops the daemon with SIGTERM, then SIGKILL if it lingers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # A frozen process would hold SIGTERM until thawed, so thaw it first.
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def kill(self):
        """Kills the daemon with SIGKILL, so it gets no chance to say goodbye."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def freeze(self):
        """Suspends the process (SIGSTOP): its sockets stay open but it goes silent."""
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self):
        """Resumes a frozen process (SIGCONT)."""
        self.proc.send_signal(signal.SIGCONT)

    def http(self, method, path, body=None, timeout=10):
        return http_request(method, self.http_url + path, body=body, timeout=timeout)


class Nsqd(Daemon):
    """One running nsqd process on loopback ports with its own data dir.

    With https=True it also gets an --https-address on a free port (the test
    passes the certificate flags, see server_tls_args): readiness is then
    checked with GET /ping over HTTPS, verified against tests/certs/ca.pem,
    and http() and stats() go over HTTPS too, presenting the client key pair
    https_cert ("client", say) when nsqd asks for one. Either way a plain-HTTP
    /ping answered 403 TLS_REQUIRED (--tls-required=true) counts as up.
    """

    name = "nsqd"

    def __init__(self, data_dir, extra_args=(), https=False, https_cert=None):
        super().__init__(data_dir, extra_args)
        self.https = https
        self.https_cert = https_cert
        self.https_port = None

    def _listens_https(self):
        """True when nsqd opens an HTTPS listener: asked for, or given a certificate.

        nsqd with --tls-cert listens on --https-address (default 0.0.0.0:4152)
        even when the test never uses it, so it always gets a free port here.
        """
        return self.https or any(a.startswith("--tls-cert") for a in self.extra_args)

    def _choose_ports(self):
        if self._listens_https():
            self.tcp_port, self.http_port, self.https_port = free_ports(3)
        else:
            super()._choose_ports()

    @property
    def https_url(self):
        return f"https://127.0.0.1:{self.https_port}"

    def binary(self):
        return nsqd_binary()

    def args(self):
        https = [f"--https-address=127.0.0.1:{self.https_port}"] if self._listens_https() else []
        return [
            f"--tcp-address=127.0.0.1:{self.tcp_port}",
            f"--http-address=127.0.0.1:{self.http_port}",
            *https,
            "--broadcast-address=127.0.0.1",
            f"--data-path={self.data_dir}",
            # NSQD_EXTRA_ARGS runs the whole suite under other settings (scripts/test
            # repeats it with --mem-queue-size=0); a test's own flags come last and win.
            *os.environ.get("NSQD_EXTRA_ARGS", "").split(),
            *self.extra_args,
        ]

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.5):
                pass
            if self.https:
                status, _, _ = https_request(
                    "GET", self.https_url + "/ping", timeout=1, context=self._https_context()
                )
                return status == 200
            status, _, body = http_request("GET", self.http_url + "/ping", timeout=1)
            return status == 200 or tls_required_port(status, body) is not None
        except OSError:
            return False

    def http(self, method, path, body=None, timeout=10):
        """One API request, over HTTPS when this nsqd has an HTTPS listener."""
        if self.https:
            return https_request(
                method,
                self.https_url + path,
                body=body,
                timeout=timeout,
                context=self._https_context(),
            )
        return super().http(method, path, body=body, timeout=timeout)

    def _https_context(self):
        return client_tls_context(cert=self.https_cert)

    def clients(self):
        """Every client entry in /stats, each tagged with "_role": "consumer"
        (listed under a channel) or "producer" (in the producers list).
        """
        stats = self.stats()
        found = []
        for topic in stats.get("topics") or []:
            for channel in topic["channels"]:
                for client in channel.get("clients") or []:
                    found.append({**client, "_role": "consumer"})
        for client in stats.get("producers") or []:
            found.append({**client, "_role": "producer"})
        return found

    def stats(self, topic=None):
        """Returns /stats as JSON, optionally filtered to one topic."""
        query = "/stats?format=json&include_mem=false"
        if topic is not None:
            query += f"&topic={topic}"
        status, _, body = self.http("GET", query)
        assert status == 200, body
        return json.loads(body)

    def channel_stats(self, topic, channel):
        """Returns one channel's stats object, or None if it does not exist."""
        for t in self.stats(topic).get("topics") or []:
            if t["topic_name"] != topic:
                continue
            for c in t["channels"]:
                if c["channel_name"] == channel:
                    return c
        return None


class Nsqlookupd(Daemon):
    """One running nsqlookupd process on loopback ports.

    The data dir only holds its log: nsqlookupd keeps everything in memory.
    """

    name = "nsqlookupd"

    def binary(self):
        return nsqlookupd_binary()

    def args(self):
        return [
            f"--tcp-address=127.0.0.1:{self.tcp_port}",
            f"--http-address=127.0.0.1:{self.http_port}",
            "--broadcast-address=127.0.0.1",
            *self.extra_args,
        ]

    def lookup(self, topic):
        """Returns the /lookup answer for topic as JSON, or None on 404."""
        status, _, body = self.http(
            "GET",
            f"/lookup?topic={topic}",
            timeout=5,
        )
        if status == 404:
            return None
        assert status == 200, (status, body)
        return json.loads(body)

    def producers(self, topic):
        """The set of (broadcast_address, tcp_port, http_port) listed for topic."""
        answer = self.lookup(topic)
        if answer is None:
            return set()
        return {
            (p["broadcast_address"], p["tcp_port"], p["http_port"])
            for p in answer["producers"]
        }


def producer_key(nsqd):
    """How nsqlookupd should list nsqd: (broadcast_address, tcp_port, http_port)."""
    return ("127.0.0.1", nsqd.tcp_port, nsqd.http_port)


def http_request(method, url, body=None, timeout=10, context=None):
    """Sends one HTTP request; 4xx and 5xx answers are returned, not raised."""
    data = body
    if isinstance(body, str):
        data = body.encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        try:
            return err.code, err.headers, err.read()
        finally:
            err.close()


def https_request(method, url, body=None, timeout=10, context=None):
    """Sends one HTTPS request, by default verifying the server against the test CA."""
    if context is None:
        context = client_tls_context()
    return http_request(method, url, body=body, timeout=timeout, context=context)


def tls_required_port(status, body):
    """The https_port of a 403 TLS_REQUIRED answer, or None for any other answer."""
    if status != 403:
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict) or answer.get("message") != "TLS_REQUIRED":
        return None
    return answer.get("https_port")


def mpub_binary_body(messages):
    """Encodes messages in the binary MPUB body format: count, then size+bytes."""
    parts = [struct.pack(">i", len(messages))]
    for msg in messages:
        parts.append(struct.pack(">i", len(msg)))
        parts.append(msg)
    return b"".join(parts)


class RawConn:
    """A bare TCP connection speaking protocol V2 by hand, optionally over TLS."""

    def __init__(self, nsqd, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", nsqd.tcp_port), timeout=timeout)
        self.sock.settimeout(timeout)

    def start_tls(self, context, server_hostname="127.0.0.1"):
        """Runs the TLS handshake on the open connection (after IDENTIFY tls_v1).

        Handshake failures raise ssl.SSLError or OSError; with TLS 1.3 a
        refused client certificate only shows at the first read.
        """
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)

    def send(self, data):
        self.sock.sendall(data)

    def _recv_exact(self, size):
        chunks = []
        while size > 0:
            chunk = self.sock.recv(size)
            if not chunk:
                raise EOFError("connection closed before a full frame arrived")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def read_frame(self):
        """Reads one server frame and returns (frame_type, data)."""
        (size,) = struct.unpack(">i", self._recv_exact(4))
        payload = self._recv_exact(size)
        (frame_type,) = struct.unpack(">i", payload[:4])
        return frame_type, payload[4:]

    def is_closed_by_server(self):
        """True once the server has closed the connection (EOF or reset)."""
        try:
            return self.sock.recv(1) == b""
        except socket.timeout:
            return False
        except (ConnectionResetError, ssl.SSLError):
            # A reset, or a TLS alert sent as the server hung up.
            return True

    def close(self):
        self.sock.close()


def command(name, *params, body=None):
    """Encodes one V2 command line with an optional size-prefixed body."""
    line = b" ".join([name.encode()] + [p.encode() if isinstance(p, str) else p for p in params])
    out = line + b"\n"
    if body is not None:
        out += struct.pack(">i", len(body)) + body
    return out


def run_scenario(scenario, timeout=45):
    """Runs an async scenario on a new event loop and fails it after timeout s.

    pynsq objects bind to tornado's current IOLoop when built, so scenarios
    must create their Readers and Writers inside the coroutine.
    """

    async def bounded():
        return await asyncio.wait_for(scenario(), timeout)

    return asyncio.run(bounded())


async def wait_until(predicate, timeout, what, interval=0.01):
    """Polls predicate until it is truthy, failing after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def close_writer(writer):
    """Closes a pynsq Writer's connections (Writer has no close method)."""
    for conn in list(writer.conns.values()):
        conn.close()


class NsqdPool:
    """Starts nsqd processes under one directory and stops them all at the end.

    Data dirs are named nsqd-<label>-N, so conftest's failure hook (which
    attaches tmp_path/nsqd-*/nsqd.log) shows their logs too.
    """

    def __init__(self, base_dir, label):
        self.base_dir = Path(base_dir)
        self.label = label
        self.started = []

    def start(self, *extra_args, https=False, https_cert=None):
        daemon = Nsqd(
            self.base_dir / f"nsqd-{self.label}-{len(self.started)}",
            extra_args,
            https=https,
            https_cert=https_cert,
        )
        self.started.append(daemon)
        return daemon.start()

    def stop_all(self):
        for daemon in self.started:
            daemon.stop()


def error_text(error):
    """The text of a pynsq connection error: the nsqd error frame, or the error's str."""
    if error.args and isinstance(error.args[0], bytes):
        return error.args[0].decode("utf-8", "replace")
    return str(error)


class _Recording:
    """Mixin for pynsq Writer and Reader that keeps what their connections report.

    errors gets every connection error (nsqd error frames, TLS failures,
    closed connections), identify_responses every IDENTIFY answer and
    auth_responses every AUTH answer.
    """

    def _start_recording(self):
        self.errors = []
        self.identify_responses = []
        self.auth_responses = []

    def error_texts(self):
        return [error_text(e) for e in self.errors]

    def _on_connection_error(self, conn, error, **kwargs):
        self.errors.append(error)
        super()._on_connection_error(conn, error, **kwargs)

    def _on_connection_identify_response(self, conn, data, **kwargs):
        self.identify_responses.append(data)
        super()._on_connection_identify_response(conn, data, **kwargs)

    def _on_connection_auth_response(self, conn, data, **kwargs):
        self.auth_responses.append(data)
        super()._on_connection_auth_response(conn, data, **kwargs)


class RecordingWriter(_Recording, nsq.Writer):
    def __init__(self, *args, **kwargs):
        self._start_recording()
        super().__init__(*args, **kwargs)


class RecordingReader(_Recording, nsq.Reader):
    def __init__(self, *args, **kwargs):
        self._start_recording()
        super().__init__(*args, **kwargs)


def recording_writer(nsqd, **kwargs):
    """A pynsq Writer for nsqd that records errors and answers (see _Recording).

    It waits a minute before reconnecting, so a refused connection stays refused
    for the rest of a test. Must be called inside a scenario's event loop.
    """
    kwargs.setdefault("reconnect_interval", 60.0)
    return RecordingWriter([nsqd.tcp_address], **kwargs)


def recording_reader(nsqd, topic, channel, handler, **kwargs):
    """A pynsq Reader for nsqd that records errors and answers (see _Recording).

    Must be called inside a scenario's event loop.
    """
    kwargs.setdefault("max_in_flight", 100)
    return RecordingReader(
        topic=topic,
        channel=channel,
        message_handler=handler,
        nsqd_tcp_addresses=[nsqd.tcp_address],
        **kwargs,
    )


async def wait_ready(client, what, timeout=10):
    """Waits until a recording pynsq client has a ready connection.

    Fails at once, with the errors, if a connection error arrives first.
    """
    await wait_until(lambda: client.conns or client.errors, timeout, f"{what} to connect")
    assert not client.errors, f"{what} failed to connect: {client.error_texts()}"


async def wait_refused(client, what, timeout=10):
    """Waits until a recording pynsq client reports an error; returns the error texts.

    The client must never have become ready.
    """
    await wait_until(lambda: client.errors, timeout, f"{what} to be refused")
    assert not client.conns, f"{what} became ready although refused: {client.error_texts()}"
    return client.error_texts()


def sample_bodies(prefix, count, big=True):
    """count distinct message bodies: small, compressible ones plus two large ones.

    The large ones (one compressible, one random) span several snappy chunks
    and deflate blocks, so compressed streams are exercised past one frame.
    big=False leaves them out (all bodies compressible and under 1 KiB).
    """
    small = count - 2 if big else count
    bodies = [f"{prefix}-{i:05d}-{'payload ' * (i % 40)}".encode() for i in range(small)]
    if big:
        bodies.append(f"{prefix}-big-text-".encode() + b"nsq compresses this line well. " * 8000)
        bodies.append(f"{prefix}-big-random-".encode() + os.urandom(200_000))
    return bodies


def assert_each_once(seen, bodies):
    """Checks that seen (body -> deliveries) holds every body exactly once."""
    assert len(seen) == len(bodies)
    assert set(seen) == set(bodies)
    duplicates = {body[:40]: n for body, n in seen.items() if n != 1}
    assert duplicates == {}


class Roundtrip:
    """What one pynsq publish-and-consume run saw (see pynsq_roundtrip)."""

    def __init__(self):
        self.seen = {}
        self.clients = []
        self.writer = None
        self.reader = None

    def client(self, role):
        """The one /stats entry of the writer ("producer") or reader ("consumer")."""
        matches = [c for c in self.clients if c["_role"] == role]
        assert len(matches) == 1, (role, self.clients)
        return matches[0]


async def pynsq_roundtrip(
    nsqd, topic, bodies, channel="c", reader_kwargs=None, writer_kwargs=None, **conn_kwargs
):
    """Publishes bodies with a pynsq Writer and consumes them with a pynsq Reader.

    conn_kwargs (tls_v1, snappy, deflate, auth_secret, ...) go to both
    clients, reader_kwargs and writer_kwargs to one each. Half the bodies go
    as single PUBs, the rest as MPUBs of 50. It waits until every body arrived
    and the channel drained, snapshots the /stats client entries while both
    clients are still connected (see Nsqd.clients), then closes both.
    """
    result = Roundtrip()
    seen = result.seen

    def handler(message):
        seen[message.body] = seen.get(message.body, 0) + 1
        return True

    reader = recording_reader(nsqd, topic, channel, handler, **(reader_kwargs or {}), **conn_kwargs)
    writer = recording_writer(nsqd, **(writer_kwargs or {}), **conn_kwargs)
    result.reader, result.writer = reader, writer
    try:
        await wait_ready(reader, "reader")
        await wait_ready(writer, "writer")

        oks = []

        def callback(conn, data):
            oks.append(data)

        half = len(bodies) // 2
        transactions = 0
        for body in bodies[:half]:
            writer.pub(topic, body, callback=callback)
            transactions += 1
        for start in range(half, len(bodies), 50):
            writer.mpub(topic, bodies[start : start + 50], callback=callback)
            transactions += 1
        await wait_until(lambda: len(oks) == transactions or writer.errors, 30, "publish answers")
        assert writer.error_texts() == []
        assert oks == [b"OK"] * transactions

        await wait_until(
            lambda: len(seen) == len(bodies) or reader.errors, 30, "every message consumed"
        )
        assert reader.error_texts() == []

        def drained():
            stats = nsqd.channel_stats(topic, channel)
            return stats is not None and stats["depth"] == 0 and stats["in_flight_count"] == 0

        await wait_until(drained, 20, f"{topic}/{channel} to drain", interval=0.05)
        result.clients = nsqd.clients()
    finally:
        reader.close()
        close_writer(writer)
    return result
