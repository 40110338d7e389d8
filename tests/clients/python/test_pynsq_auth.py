"""AUTH between pynsq, our nsqd and a test auth server.

nsqd with --auth-http-address asks an HTTP auth server about each client's
secret and enforces the answer on every PUB and SUB, re-asking once the
answer's ttl runs out. pynsq sends AUTH after IDENTIFY when nsqd says
auth_required. These tests run the whole chain: what pynsq sees, what nsqd
asked the auth server, and the exact error frames nsqd sends a raw client.
"""

import asyncio
import json
import socket
import threading
import time

import pytest

from authserver import AuthServer, grant
from harness import (
    FRAME_ERROR,
    FRAME_RESPONSE,
    NsqdPool,
    RawConn,
    assert_each_once,
    cert_path,
    command,
    error_text,
    pynsq_roundtrip,
    recording_writer,
    run_scenario,
    sample_bodies,
    server_tls_args,
    wait_ready,
    wait_refused,
    wait_until,
)


@pytest.fixture
def pool(tmp_path):
    started = NsqdPool(tmp_path, "auth")
    yield started
    started.stop_all()


@pytest.fixture
def auth():
    server = AuthServer().start()
    yield server
    server.stop()


def auth_args(auth_server, *extra):
    return (f"--auth-http-address={auth_server.address}", *extra)


def test_allowed_secret_publishes_and_consumes(pool, auth):
    """An allowed pynsq Writer and Reader move every message; /stats shows the identity."""
    auth.allow("s3cret", "alice", topic="^auth_.*$", identity_url="https://auth.test/u/alice")
    nsqd = pool.start(*auth_args(auth))
    topic = "auth_allowed"
    bodies = sample_bodies(topic, 300)

    result = run_scenario(lambda: pynsq_roundtrip(nsqd, topic, bodies, auth_secret="s3cret"))

    assert_each_once(result.seen, bodies)
    expected_answer = {
        "identity": "alice",
        "identity_url": "https://auth.test/u/alice",
        "permission_count": 1,
    }
    assert result.writer.auth_responses == [expected_answer]
    assert result.reader.auth_responses == [expected_answer]
    for answer in result.writer.identify_responses + result.reader.identify_responses:
        assert answer["auth_required"] is True, answer
    for role in ("producer", "consumer"):
        client = result.client(role)
        assert client["authed"] is True, client
        assert client["auth_identity"] == "alice", client
        assert client["auth_identity_url"] == "https://auth.test/u/alice", client

    # One GET per connection, with the fields Go nsqd sends.
    requests = auth.requests("s3cret")
    assert len(requests) == 2, requests
    for request in requests:
        assert request["method"] == "GET"
        assert request["path"].startswith("/auth?"), request
        assert request["fields"] == {
            "common_name": [""],
            "remote_ip": ["127.0.0.1"],
            "secret": ["s3cret"],
            "tls": ["false"],
        }
        assert request["headers"].get("Accept") == "application/vnd.nsq; version=1.0"


def test_denied_secret_is_refused_with_e_auth_failed(pool, auth):
    """An auth server 403 closes pynsq's connection with E_AUTH_FAILED; nothing gets in."""
    auth.deny("wrong")
    nsqd = pool.start(*auth_args(auth))

    async def scenario():
        writer = recording_writer(nsqd, auth_secret="wrong")
        return await wait_refused(writer, "writer")

    errors = run_scenario(scenario)
    assert "E_AUTH_FAILED AUTH failed" in errors, errors
    assert len(auth.requests("wrong")) == 1


def test_expired_ttl_makes_nsqd_ask_again(pool, auth):
    """After ttl seconds the next PUB re-queries the auth server and obeys the new answer."""
    auth.allow("short", "bob", ttl=1)
    nsqd = pool.start(*auth_args(auth))

    async def publish(writer, body):
        answers = []
        writer.pub("ttl_topic", body, callback=lambda conn, data: answers.append(data))
        await wait_until(lambda: answers, 10, "publish answer")
        return answers[0]

    async def scenario():
        writer = recording_writer(nsqd, auth_secret="short")
        await wait_ready(writer, "writer")
        assert await publish(writer, b"first") == b"OK"
        assert len(auth.requests("short")) == 1

        # Still allowed: past the ttl the PUB succeeds after a second query.
        # The ttl only runs out with time, so here a sleep is the test.
        await asyncio.sleep(1.3)
        assert await publish(writer, b"second") == b"OK"
        assert len(auth.requests("short")) == 2

        # Now denied: once the cached answer expires the next PUB fails.
        auth.deny("short")
        assert await publish(writer, b"third") == b"OK", "the cached grant still holds"
        await asyncio.sleep(1.3)
        answer = await publish(writer, b"fourth")
        await wait_until(lambda: not writer.conns, 5, "nsqd to close the connection")
        return answer

    answer = run_scenario(scenario)
    assert error_text(answer) in (
        "E_AUTH_FAILED AUTH failed",
        'E_UNAUTHORIZED AUTH failed for PUB on "ttl_topic" ""',
    ), answer
    assert len(auth.requests("short")) == 3
    assert nsqd.stats("ttl_topic")["topics"][0]["message_count"] == 3


def test_auth_server_down_refuses_promptly(pool, auth):
    """With the auth server gone, AUTH fails with E_AUTH_FAILED instead of hanging."""
    auth.allow("s3cret", "alice")
    nsqd = pool.start(*auth_args(auth))
    auth.stop()

    async def scenario():
        writer = recording_writer(nsqd, auth_secret="s3cret")
        started = time.monotonic()
        errors = await wait_refused(writer, "writer", timeout=10)
        return errors, time.monotonic() - started

    errors, took = run_scenario(scenario)
    assert "E_AUTH_FAILED AUTH failed" in errors, errors
    assert took < 8, f"refusal took {took:.1f}s"


def test_hung_auth_server_times_out(pool, auth):
    """An auth server that never answers fails AUTH after --http-client-request-timeout."""
    auth.allow("s3cret", "alice")
    nsqd = pool.start(*auth_args(auth, "--http-client-request-timeout=1s"))
    auth.hang()
    try:
        conn = RawConn(nsqd, timeout=8)
        conn.send(b"  V2")
        started = time.monotonic()
        conn.send(command("AUTH", body=b"s3cret"))
        assert conn.read_frame() == (FRAME_ERROR, b"E_AUTH_FAILED AUTH failed")
        took = time.monotonic() - started
        assert conn.is_closed_by_server()
        conn.close()
    finally:
        auth.release()
    assert 0.8 <= took < 5, f"AUTH failed after {took:.1f}s"
    # nsqd keeps serving other clients meanwhile.
    status, _, body = nsqd.http("GET", "/ping")
    assert (status, body) == (200, b"OK")


def test_post_method_sends_json_string_arrays(pool, auth):
    """--auth-http-request-method=post: the same fields as a JSON object of string arrays."""
    auth.allow("posted", "carol")
    nsqd = pool.start(*auth_args(auth, "--auth-http-request-method=post"))
    topic = "auth_post"
    bodies = sample_bodies(topic, 50)

    result = run_scenario(lambda: pynsq_roundtrip(nsqd, topic, bodies, auth_secret="posted"))

    assert_each_once(result.seen, bodies)
    requests = auth.requests("posted")
    assert len(requests) == 2, requests
    for request in requests:
        assert request["method"] == "POST"
        assert request["path"] == "/auth"
        assert request["headers"].get("Content-Type") == "application/json"
        assert request["headers"].get("Accept") == "application/vnd.nsq; version=1.0"
        assert json.loads(request["body"]) == {
            "common_name": [""],
            "remote_ip": ["127.0.0.1"],
            "secret": ["posted"],
            "tls": ["false"],
        }


def test_tls_client_certificate_name_reaches_the_auth_server(pool, auth):
    """Over TLS with a verified client certificate, nsqd sends tls=true and its CN."""
    auth.allow("tls-secret", "dave", topic="^auth_tls$")
    nsqd = pool.start(
        *server_tls_args(
            "--tls-client-auth-policy=require-verify",
            f"--tls-root-ca-file={cert_path('ca.pem')}",
            *auth_args(auth),
        ),
        https=True,
        https_cert="client",
    )
    topic = "auth_tls"
    bodies = sample_bodies(topic, 50)
    options = {
        "ca_certs": cert_path("ca.pem"),
        "certfile": cert_path("client.pem"),
        "keyfile": cert_path("client.key"),
    }

    result = run_scenario(
        lambda: pynsq_roundtrip(
            nsqd, topic, bodies, tls_v1=True, tls_options=options, auth_secret="tls-secret"
        )
    )

    assert_each_once(result.seen, bodies)
    requests = auth.requests("tls-secret")
    assert len(requests) == 2, requests
    for request in requests:
        assert request["fields"]["tls"] == ["true"], request
        assert request["fields"]["common_name"] == ["test-client"], request
    for client in result.clients:
        assert client["tls"] is True and client["authed"] is True, client


def test_multiple_auth_servers_skip_one_that_is_down(pool, auth):
    """With two --auth-http-address and one down, AUTH still succeeds every time."""
    auth.allow("s3cret", "erin", topic="^auth_multi$")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    nsqd = pool.start(f"--auth-http-address={dead}", *auth_args(auth))

    for _ in range(4):
        conn = RawConn(nsqd)
        conn.send(b"  V2")
        conn.send(command("AUTH", body=b"s3cret"))
        frame_type, data = conn.read_frame()
        assert frame_type == FRAME_RESPONSE, data
        assert json.loads(data)["identity"] == "erin"
        conn.send(command("PUB", "auth_multi", body=b"x"))
        assert conn.read_frame() == (FRAME_RESPONSE, b"OK")
        conn.close()


# Raw-socket AUTH errors: (answers to set, commands to send, the fatal error).
# Each command but the last must succeed; the last gets the error and a close.
GOOD = grant("golden-user", topic="auth_.*", identity_url="https://auth.example/u/golden")
RAW_CASES = {
    "denied": (
        {"denied": (403, {"message": "FORBIDDEN"})},
        [("AUTH", "denied")],
        b"E_AUTH_FAILED AUTH failed",
    ),
    "zero_ttl": (
        {"zerottl": (200, grant("x", permissions=("publish",), ttl=0))},
        [("AUTH", "zerottl")],
        b"E_AUTH_FAILED AUTH failed",
    ),
    "bad_permission": (
        {"badperm": (200, grant("x", permissions=("admin",), ttl=60))},
        [("AUTH", "badperm")],
        b"E_AUTH_FAILED AUTH failed",
    ),
    "no_authorizations": (
        {"empty": (200, {**grant("nobody"), "authorizations": []})},
        [("AUTH", "empty")],
        b"E_UNAUTHORIZED AUTH no authorizations found",
    ),
    "pub_other_topic": (
        {"good": (200, GOOD)},
        [("AUTH", "good"), ("PUB", "other")],
        b'E_UNAUTHORIZED AUTH failed for PUB on "other" ""',
    ),
    "sub_without_permission": (
        {"pubonly": (200, grant("publisher", topic="auth_pub", permissions=("publish",)))},
        [("AUTH", "pubonly"), ("PUB", "auth_pub"), ("SUB", "auth_pub ch")],
        b'E_UNAUTHORIZED AUTH failed for SUB on "auth_pub" "ch"',
    ),
    "pub_channel_regex_must_match_empty": (
        {"pubnochan": (200, grant("p2", "auth_pub", channels=("^ch$",), permissions=("publish",)))},
        [("AUTH", "pubnochan"), ("PUB", "auth_pub")],
        b'E_UNAUTHORIZED AUTH failed for PUB on "auth_pub" ""',
    ),
    "pub_before_auth": ({}, [("PUB", "auth_x")], b"E_AUTH_FIRST AUTH required before PUB"),
    "sub_before_auth": ({}, [("SUB", "auth_x ch")], b"E_AUTH_FIRST AUTH required before SUB"),
    "auth_twice": (
        {"good": (200, GOOD)},
        [("AUTH", "good"), ("AUTH", "good")],
        b"E_INVALID AUTH already set",
    ),
}


def _raw_command(name, arg):
    if name == "AUTH":
        return command("AUTH", body=arg.encode())
    if name == "PUB":
        return command("PUB", arg, body=b"x")
    return command(name, *arg.split())


@pytest.mark.parametrize("case", list(RAW_CASES))
def test_raw_auth_errors(pool, auth, case):
    answers, steps, error = RAW_CASES[case]
    for secret, (status, body) in answers.items():
        auth.set_answer(secret, body, status=status)
    nsqd = pool.start(*auth_args(auth))

    conn = RawConn(nsqd)
    conn.send(b"  V2")
    for name, arg in steps[:-1]:
        conn.send(_raw_command(name, arg))
        frame_type, data = conn.read_frame()
        assert frame_type == FRAME_RESPONSE, (name, data)
    conn.send(_raw_command(*steps[-1]))
    assert conn.read_frame() == (FRAME_ERROR, error)
    assert conn.is_closed_by_server(), f"connection stayed open after {error!r}"
    conn.close()


def test_auth_disabled_without_auth_server(pool):
    """AUTH against an nsqd without --auth-http-address is a fatal E_AUTH_DISABLED."""
    nsqd = pool.start()
    conn = RawConn(nsqd)
    conn.send(b"  V2")
    conn.send(command("AUTH", body=b"secret"))
    assert conn.read_frame() == (FRAME_ERROR, b"E_AUTH_DISABLED AUTH disabled")
    assert conn.is_closed_by_server()
    conn.close()


def test_slow_auth_does_not_block_other_clients(pool, auth):
    """While one client's AUTH waits on the auth server, others keep working."""
    auth.allow("s3cret", "alice", topic=".*")
    nsqd = pool.start(*auth_args(auth, "--http-client-request-timeout=5s"))
    auth.hang()
    waiting = RawConn(nsqd, timeout=8)
    waiting.send(b"  V2")
    waiting.send(command("AUTH", body=b"s3cret"))
    try:
        # A second client publishing over HTTP (no auth there) is served at once.
        started = time.monotonic()
        status, _, body = nsqd.http("POST", "/pub?topic=other", body=b"x")
        assert (status, body) == (200, b"OK")
        assert time.monotonic() - started < 2
    finally:
        # Releasing lets the held AUTH through with its grant.
        threading.Timer(0.1, auth.release).start()
    frame_type, data = waiting.read_frame()
    assert frame_type == FRAME_RESPONSE, data
    assert json.loads(data)["identity"] == "alice"
    waiting.close()
