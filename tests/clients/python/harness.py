"""Starts our nsqd and nsqlookupd binaries for the client suites and talks to them.

The suites drive real daemon processes with real client libraries, so this
module owns the parts every test needs: finding the binaries, picking free
loopback ports, waiting until a daemon answers, stopping, killing or freezing
it, plain HTTP calls, raw protocol frames, and running a pynsq scenario on a
fresh event loop with a hard deadline.
"""

import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]

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
            self.tcp_port = free_port()
            self.http_port = free_port()
            while self.http_port == self.tcp_port:
                self.http_port = free_port()
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
    """One running nsqd process on loopback ports with its own data dir."""

    name = "nsqd"

    def binary(self):
        return nsqd_binary()

    def args(self):
        return [
            f"--tcp-address=127.0.0.1:{self.tcp_port}",
            f"--http-address=127.0.0.1:{self.http_port}",
            "--broadcast-address=127.0.0.1",
            f"--data-path={self.data_dir}",
            # NSQD_EXTRA_ARGS runs the whole suite under other settings (scripts/test
            # repeats it with --mem-queue-size=0); a test's own flags come last and win.
            *os.environ.get("NSQD_EXTRA_ARGS", "").split(),
            *self.extra_args,
        ]

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


def http_request(method, url, body=None, timeout=10):
    """Sends one HTTP request; 4xx and 5xx answers are returned, not raised."""
    data = body
    if isinstance(body, str):
        data = body.encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        try:
            return err.code, err.headers, err.read()
        finally:
            err.close()


def mpub_binary_body(messages):
    """Encodes messages in the binary MPUB body format: count, then size+bytes."""
    parts = [struct.pack(">i", len(messages))]
    for msg in messages:
        parts.append(struct.pack(">i", len(msg)))
        parts.append(msg)
    return b"".join(parts)


class RawConn:
    """A bare TCP connection speaking protocol V2 by hand."""

    def __init__(self, nsqd, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", nsqd.tcp_port), timeout=timeout)
        self.sock.settimeout(timeout)

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
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

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
