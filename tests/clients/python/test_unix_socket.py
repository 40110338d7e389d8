"""nsqd and nsqlookupd listening on unix domain sockets (Go's #1434, v1.3.0).

An address flag that does not split into host:port is a socket path. pynsq
dials host:port only, so these tests speak the protocols over raw AF_UNIX
sockets: publish and consume through nsqd's socket, read /info and /stats
through its HTTP socket (ports are reported as -1), register with a lookupd
whose listeners are sockets, and check that the socket files are removed at
exit and that Go's log layout names them.
"""

import http.client
import json
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from harness import nsqd_binary, nsqlookupd_binary

FRAME_RESPONSE = 0
FRAME_ERROR = 1
FRAME_MESSAGE = 2

# Go's log.Ldate|log.Ltime|log.Lmicroseconds after the prefix, then the level.
LOG_LINE = r"^{prefix} \d{{4}}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{{6}} INFO: {message}$"


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection to a unix socket path."""

    def __init__(self, path, timeout=5):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = str(path)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def http_call(path, method, target, body=None):
    conn = UnixHTTPConnection(path)
    try:
        conn.request(method, target, body=body)
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


class Daemon:
    """A daemon process started with the given flags; stderr is kept for the log checks."""

    def __init__(self, binary, args, tmp_path, name):
        self.log_path = tmp_path / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(binary), *args], stdout=subprocess.DEVNULL, stderr=self.log
        )

    def wait_for_socket(self, path, deadline=10.0):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited early: {self.stderr()}")
            if path.exists():
                try:
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                        s.connect(str(path))
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise AssertionError(f"{path} never accepted a connection: {self.stderr()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
        return self.proc.returncode

    def stderr(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def daemons():
    started = []
    yield started
    for d in started:
        d.stop()


def start(daemons, binary, args, tmp_path, name):
    d = Daemon(binary, args, tmp_path, name)
    daemons.append(d)
    return d


class V2Conn:
    """A raw nsqd V2 client over a unix socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(str(path))
        self.sock.sendall(b"  V2")

    def send(self, line, body=None):
        data = line + b"\n"
        if body is not None:
            data += struct.pack(">l", len(body)) + body
        self.sock.sendall(data)

    def _read(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise AssertionError("nsqd closed the connection")
            out += chunk
        return out

    def frame(self):
        size = struct.unpack(">l", self._read(4))[0]
        data = self._read(size)
        kind = struct.unpack(">l", data[:4])[0]
        return kind, data[4:]

    def response(self):
        """The next frame that is not a heartbeat."""
        while True:
            kind, data = self.frame()
            if kind == FRAME_RESPONSE and data == b"_heartbeat_":
                self.send(b"NOP")
                continue
            return kind, data

    def close(self):
        self.sock.close()


def start_nsqd(daemons, tmp_path, *extra):
    tcp = tmp_path / "nsqd.sock"
    web = tmp_path / "http.sock"
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    d = start(
        daemons,
        nsqd_binary(),
        [
            f"--tcp-address={tcp}",
            f"--http-address={web}",
            "--https-address=",
            f"--data-path={data}",
            "--broadcast-address=127.0.0.1",
            *extra,
        ],
        tmp_path,
        "nsqd",
    )
    d.wait_for_socket(tcp)
    d.wait_for_socket(web)
    return d, tcp, web


def test_info_reports_unix_ports_as_minus_one(daemons, tmp_path):
    d, tcp, web = start_nsqd(daemons, tmp_path)
    status, body = http_call(web, "GET", "/ping")
    assert (status, body) == (200, b"OK")
    status, body = http_call(web, "GET", "/info")
    assert status == 200
    info = json.loads(body)
    assert info["tcp_port"] == -1
    assert info["http_port"] == -1
    assert d.stop() == 0
    assert not tcp.exists(), "the TCP socket file outlived nsqd"
    assert not web.exists(), "the HTTP socket file outlived nsqd"
    log = d.stderr()
    assert re.search(
        LOG_LINE.format(prefix=r"\[nsqd\]", message=re.escape(f"TCP: listening on {tcp}")),
        log,
        re.M,
    ), log
    assert re.search(
        LOG_LINE.format(prefix=r"\[nsqd\]", message=re.escape(f"HTTP: listening on {web}")),
        log,
        re.M,
    ), log


def test_publish_and_consume_over_a_unix_socket(daemons, tmp_path):
    _, tcp, web = start_nsqd(daemons, tmp_path)
    producer = V2Conn(tcp)
    producer.send(b"PUB unix_topic", b"over a socket")
    assert producer.response() == (FRAME_RESPONSE, b"OK")
    producer.send(b"MPUB unix_topic", struct.pack(">l", 2) + b"".join(
        struct.pack(">l", len(m)) + m for m in (b"second", b"third")
    ))
    assert producer.response() == (FRAME_RESPONSE, b"OK")

    consumer = V2Conn(tcp)
    identify = json.dumps({"feature_negotiation": True, "tls_v1": True}).encode()
    consumer.send(b"IDENTIFY", identify)
    kind, data = consumer.response()
    assert kind == FRAME_RESPONSE
    # No TLS over a unix socket: the client is told so and stays in plain text.
    assert json.loads(data)["tls_v1"] is False
    consumer.send(b"SUB unix_topic ch")
    assert consumer.response() == (FRAME_RESPONSE, b"OK")
    consumer.send(b"RDY 10")
    bodies = []
    for _ in range(3):
        kind, data = consumer.response()
        assert kind == FRAME_MESSAGE, data
        msg_id = data[10:26]
        bodies.append(data[26:])
        consumer.send(b"FIN " + msg_id)
    assert bodies == [b"over a socket", b"second", b"third"]

    status, body = http_call(web, "GET", "/stats?format=json&topic=unix_topic")
    assert status == 200
    stats = json.loads(body)
    topic = stats["topics"][0]
    assert topic["message_count"] == 3
    clients = topic["channels"][0]["clients"]
    assert len(clients) == 1
    # Go prints an unnamed unix peer as "@" on Linux.
    assert clients[0]["remote_address"] == "@"
    producer.close()
    consumer.close()


def test_a_path_in_use_is_not_taken_over(daemons, tmp_path):
    # Like Go's net.Listen("unix", ...), a path that already exists makes the bind fail.
    tcp = tmp_path / "nsqd.sock"
    tcp.write_bytes(b"")
    d = start(
        daemons,
        nsqd_binary(),
        [f"--tcp-address={tcp}", "--http-address=", f"--data-path={tmp_path}"],
        tmp_path,
        "nsqd",
    )
    assert d.proc.wait(timeout=10) == 1
    assert "address already in use" in d.stderr().lower() or "exists" in d.stderr().lower()


def v1_request(sock, data):
    sock.sendall(data)
    size = struct.unpack(">l", _recv_exact(sock, 4))[0]
    return _recv_exact(sock, size)


def _recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise AssertionError("lookupd closed the connection")
        out += chunk
    return out


def test_lookupd_over_unix_sockets(daemons, tmp_path):
    tcp = tmp_path / "lookupd.sock"
    web = tmp_path / "lookupd-http.sock"
    d = start(
        daemons,
        nsqlookupd_binary(),
        [f"--tcp-address={tcp}", f"--http-address={web}", "--broadcast-address=lk"],
        tmp_path,
        "lookupd",
    )
    d.wait_for_socket(tcp)
    d.wait_for_socket(web)

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(tcp))
        s.sendall(b"  V1")
        body = json.dumps(
            {
                "broadcast_address": "10.0.0.9",
                "tcp_port": 4150,
                "http_port": 4151,
                "version": "1.3.0",
                "hostname": "h",
            }
        ).encode()
        answer = json.loads(v1_request(s, b"IDENTIFY\n" + struct.pack(">l", len(body)) + body))
        assert answer["tcp_port"] == -1
        assert answer["http_port"] == -1
        assert answer["broadcast_address"] == "lk"
        assert v1_request(s, b"REGISTER unix_topic\n") == b"OK"

        status, body = http_call(web, "GET", "/lookup?topic=unix_topic")
        assert status == 200
        producers = json.loads(body)["producers"]
        assert [(p["broadcast_address"], p["tcp_port"]) for p in producers] == [
            ("10.0.0.9", 4150)
        ]
        assert producers[0]["remote_address"] == "@"

    assert d.stop() == 0
    assert not tcp.exists() and not web.exists()
    assert re.search(
        LOG_LINE.format(prefix=r"\[nsqlookupd\]", message=re.escape(f"TCP: listening on {tcp}")),
        d.stderr(),
        re.M,
    ), d.stderr()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nsqd_on_unix_sockets_registers_ports_minus_one(daemons, tmp_path):
    # nsqd dials lookupd over TCP only (as Go's lookup peers do), so lookupd listens on loopback here.
    lookupd_tcp, lookupd_http = free_port(), free_port()
    lk = start(
        daemons,
        nsqlookupd_binary(),
        [f"--tcp-address=127.0.0.1:{lookupd_tcp}", f"--http-address=127.0.0.1:{lookupd_http}"],
        tmp_path,
        "lookupd",
    )
    _, tcp, web = start_nsqd(daemons, tmp_path, f"--lookupd-tcp-address=127.0.0.1:{lookupd_tcp}")
    assert lk.proc.poll() is None
    deadline = time.monotonic() + 10
    producers = []
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", lookupd_http, timeout=5)
            conn.request("GET", "/nodes")
            producers = json.loads(conn.getresponse().read())["producers"]
            conn.close()
        except OSError:
            producers = []
        if producers:
            break
        time.sleep(0.1)
    assert len(producers) == 1, producers
    assert producers[0]["tcp_port"] == -1
    assert producers[0]["http_port"] == -1
