"""Starts our nsqd binary for the client suites and talks to it.

The suites drive a real nsqd process with real client libraries, so this module
owns the parts every test needs: finding the binary, picking free loopback
ports, waiting until the daemon answers, stopping it, plain HTTP calls, raw
protocol frames, and running a pynsq scenario on a fresh event loop with a hard
deadline.
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


def nsqd_binary():
    """Returns the nsqd binary to test: $NSQD_BIN, else release, else debug."""
    configured = os.environ.get("NSQD_BIN")
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise RuntimeError(f"NSQD_BIN={configured} does not exist")
        return path
    for profile in ("release", "debug"):
        path = REPO_ROOT / "target" / profile / "nsqd"
        if path.is_file():
            return path
    raise RuntimeError(
        "no nsqd binary: build it with `cargo build --release -p nsqd` or set NSQD_BIN"
    )


def free_port():
    """Asks the kernel for a free loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NsqdExited(RuntimeError):
    """nsqd quit during startup, for example because a port was taken."""


class Nsqd:
    """One running nsqd process on loopback ports with its own data dir."""

    def __init__(self, data_dir, extra_args=()):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = self.data_dir / "nsqd.log"
        self.tcp_port = None
        self.http_port = None

    @property
    def tcp_address(self):
        return f"127.0.0.1:{self.tcp_port}"

    @property
    def http_url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def start(self):
        """Starts nsqd, retrying on fresh ports if it quits during startup.

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
        raise RuntimeError(f"nsqd did not start: {last_error}")

    def _spawn_and_wait(self):
        args = [
            str(nsqd_binary()),
            f"--tcp-address=127.0.0.1:{self.tcp_port}",
            f"--http-address=127.0.0.1:{self.http_port}",
            "--broadcast-address=127.0.0.1",
            f"--data-path={self.data_dir}",
            # NSQD_EXTRA_ARGS runs the whole suite under other settings (scripts/test
            # repeats it with --mem-queue-size=0); a test's own flags come last and win.
            *os.environ.get("NSQD_EXTRA_ARGS", "").split(),
            *self.extra_args,
        ]
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise NsqdExited(
                    f"nsqd exited with {self.proc.returncode}: {self.log_tail()}"
                )
            if self._answers():
                return
            time.sleep(0.05)
        raise RuntimeError(f"nsqd did not answer within 10s: {self.log_tail()}")

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
        """Stops nsqd with SIGTERM, then SIGKILL if it lingers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def http(self, method, path, body=None, timeout=10):
        return http_request(method, self.http_url + path, body=body, timeout=timeout)

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
