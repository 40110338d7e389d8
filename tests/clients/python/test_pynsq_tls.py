"""TLS between real clients and our nsqd: the upgrade, client certificates,
--tls-required, --tls-min-version and the HTTPS listener.

pynsq upgrades its connection in place after IDENTIFY (tls_v1) with Python's
ssl module, so these tests check that nsqd's TLS is what a stock OpenSSL client
expects. Refusals are checked with a raw V2 connection too, because only a
raw socket shows exactly where and how the server says no.
"""

import json
import socket
import ssl

import pytest

from harness import (
    FRAME_ERROR,
    FRAME_RESPONSE,
    NsqdPool,
    RawConn,
    assert_each_once,
    cert_path,
    client_tls_context,
    command,
    error_text,
    http_request,
    https_request,
    pynsq_roundtrip,
    recording_writer,
    run_scenario,
    sample_bodies,
    server_tls_args,
    wait_ready,
    wait_refused,
    wait_until,
)

# pynsq's own defaults cap it at TLS 1.2 (ssl.PROTOCOL_TLSv1_2); these verify
# nsqd against the test CA.
PYNSQ_TLS12 = {"ca_certs": cert_path("ca.pem")}
PYNSQ_TLS13 = {"ca_certs": cert_path("ca.pem"), "ssl_version": ssl.PROTOCOL_TLS_CLIENT}
VERIFY_CLIENTS = (
    "--tls-client-auth-policy=require-verify",
    f"--tls-root-ca-file={cert_path('ca.pem')}",
)


def pynsq_cert(name, base=PYNSQ_TLS12):
    """pynsq tls_options that present the client key pair name from tests/certs."""
    return {**base, "certfile": cert_path(f"{name}.pem"), "keyfile": cert_path(f"{name}.key")}


@pytest.fixture
def pool(tmp_path):
    started = NsqdPool(tmp_path, "tls")
    yield started
    started.stop_all()


def tls_identify(nsqd, context):
    """Connects, asks for TLS in IDENTIFY and runs the handshake; returns the conn."""
    conn = RawConn(nsqd)
    conn.send(b"  V2")
    body = {"client_id": "raw-tls", "feature_negotiation": True, "tls_v1": True}
    conn.send(command("IDENTIFY", body=json.dumps(body).encode()))
    frame_type, data = conn.read_frame()
    assert frame_type == FRAME_RESPONSE, data
    assert json.loads(data)["tls_v1"] is True, data
    conn.start_tls(context)
    return conn


def tls_publish(nsqd, context, topic):
    """Upgrades a raw connection to TLS and publishes one message through it."""
    conn = tls_identify(nsqd, context)
    assert conn.read_frame() == (FRAME_RESPONSE, b"OK")
    conn.send(command("PUB", topic, body=b"over tls"))
    assert conn.read_frame() == (FRAME_RESPONSE, b"OK")
    version = conn.sock.version()
    conn.close()
    return version


def expect_tls_refused(nsqd, context):
    """The TLS upgrade must fail: in the handshake, or (TLS 1.3 client
    certificates) at the first read, and promptly rather than by a timeout.
    """
    try:
        conn = tls_identify(nsqd, context)
        frame = conn.read_frame()
    except TimeoutError:
        pytest.fail("nsqd neither finished nor refused the TLS upgrade within 5s")
    except (ssl.SSLError, OSError, EOFError):
        return
    pytest.fail(f"nsqd accepted the TLS upgrade and answered {frame!r}")


def expect_fatal(conn, text):
    assert conn.read_frame() == (FRAME_ERROR, text)
    assert conn.is_closed_by_server(), f"connection stayed open after {text!r}"
    conn.close()


def test_tls_roundtrip_and_client_stats(pool):
    """pynsq over TLS: every message once, and /stats shows TLS and the IDENTIFY fields."""
    nsqd = pool.start(*server_tls_args())
    topic = "tls_roundtrip"
    bodies = sample_bodies(topic, 600)

    result = run_scenario(
        lambda: pynsq_roundtrip(
            nsqd,
            topic,
            bodies,
            tls_v1=True,
            tls_options=PYNSQ_TLS12,
            reader_kwargs={"msg_timeout": 7},
            writer_kwargs={"sample_rate": 37},
        )
    )

    assert_each_once(result.seen, bodies)
    hostname = socket.gethostname()
    for role in ("producer", "consumer"):
        client = result.client(role)
        assert client["tls"] is True, client
        assert client["tls_version"] == "TLS1.2", client
        assert isinstance(client["tls_cipher_suite"], str) and client["tls_cipher_suite"], client
        assert client["snappy"] is False and client["deflate"] is False, client
        assert client["user_agent"] == "pynsq/0.9.1", client
        assert client["hostname"] == hostname, client
        assert client["client_id"] == hostname.split(".")[0], client
    assert result.client("producer")["sample_rate"] == 37
    assert result.client("consumer")["sample_rate"] == 0
    # The Reader's msg_timeout (7 s) is applied, and the Writer keeps the default.
    assert [a["msg_timeout"] for a in result.reader.identify_responses] == [7000]
    assert [a["msg_timeout"] for a in result.writer.identify_responses] == [60000]
    for answer in result.reader.identify_responses + result.writer.identify_responses:
        assert answer["tls_v1"] is True, answer


def test_tls13_client_negotiates_tls13(pool):
    """A pynsq client that allows TLS 1.3 gets it, also with snappy inside, per /stats."""
    nsqd = pool.start(*server_tls_args())
    topic = "tls13_stats"
    # Small bodies only: see SMALL_ONLY in test_pynsq_compression.py.
    bodies = sample_bodies(topic, 100, big=False)

    result = run_scenario(
        lambda: pynsq_roundtrip(
            nsqd, topic, bodies, tls_v1=True, tls_options=PYNSQ_TLS13, snappy=True
        )
    )

    assert_each_once(result.seen, bodies)
    assert len(result.clients) == 2, result.clients
    for client in result.clients:
        assert client["tls"] is True, client
        assert client["tls_version"] == "TLS1.3", client
        assert client["snappy"] is True, client
        assert client["tls_cipher_suite"], client


def test_tls_requested_without_certificate_stays_plain(pool):
    """An nsqd without a certificate answers tls_v1=false and pynsq carries on in plain TCP."""
    nsqd = pool.start()
    topic = "tls_not_configured"
    bodies = sample_bodies(topic, 50)

    result = run_scenario(
        lambda: pynsq_roundtrip(nsqd, topic, bodies, tls_v1=True, tls_options=PYNSQ_TLS12)
    )

    assert_each_once(result.seen, bodies)
    for client in result.clients:
        assert client["tls"] is False, client
        assert client["tls_version"] == "", client


def test_require_verify_accepts_a_ca_signed_client_certificate(pool):
    nsqd = pool.start(*server_tls_args(*VERIFY_CLIENTS), https=True, https_cert="client")
    topic = "verified_client"
    bodies = sample_bodies(topic, 50)

    result = run_scenario(
        lambda: pynsq_roundtrip(
            nsqd, topic, bodies, tls_v1=True, tls_options=pynsq_cert("client")
        )
    )

    assert_each_once(result.seen, bodies)
    for client in result.clients:
        assert client["tls"] is True, client


@pytest.mark.parametrize("cert", ["rogue", "none"])
def test_require_verify_refuses_pynsq_without_a_trusted_certificate(pool, cert):
    """pynsq with a self-signed certificate, or none, never gets a usable connection."""
    nsqd = pool.start(*server_tls_args(*VERIFY_CLIENTS), https=True, https_cert="client")
    options = pynsq_cert("rogue") if cert == "rogue" else PYNSQ_TLS12

    async def scenario():
        writer = recording_writer(nsqd, tls_v1=True, tls_options=options)
        return await wait_refused(writer, "writer")

    errors = run_scenario(scenario)
    assert any("TLS" in e or "SSL" in e or "closed" in e.lower() for e in errors), errors


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
@pytest.mark.parametrize("cert", ["rogue", "none"])
def test_require_verify_refuses_raw_tls_without_a_trusted_certificate(pool, cert, version):
    nsqd = pool.start(*server_tls_args(*VERIFY_CLIENTS))
    tls_version = getattr(ssl.TLSVersion, version)
    context = client_tls_context(
        cert=None if cert == "none" else cert, minimum=tls_version, maximum=tls_version
    )
    expect_tls_refused(nsqd, context)
    # A trusted client still gets through afterwards.
    trusted = client_tls_context(cert="client", minimum=tls_version, maximum=tls_version)
    tls_publish(nsqd, trusted, "after_refusal")


def test_require_accepts_any_client_certificate_but_not_none(pool):
    """--tls-client-auth-policy=require wants a certificate but does not verify it."""
    nsqd = pool.start(
        *server_tls_args("--tls-client-auth-policy=require"), https=True, https_cert="rogue"
    )
    topic = "any_cert"
    bodies = sample_bodies(topic, 50)

    result = run_scenario(
        lambda: pynsq_roundtrip(nsqd, topic, bodies, tls_v1=True, tls_options=pynsq_cert("rogue"))
    )
    assert_each_once(result.seen, bodies)

    expect_tls_refused(nsqd, client_tls_context())


def test_tls_required_refuses_plain_tcp_commands(pool):
    """Before TLS, every command but IDENTIFY is a fatal E_INVALID."""
    nsqd = pool.start(*server_tls_args("--tls-required=true"), https=True)

    conn = RawConn(nsqd)
    conn.send(b"  V2")
    conn.send(command("PUB", "plain", body=b"x"))
    expect_fatal(conn, b"E_INVALID cannot PUB in current state (TLS required)")

    # IDENTIFY is allowed, but without tls_v1 the connection is still plain.
    conn = RawConn(nsqd)
    conn.send(b"  V2")
    conn.send(command("IDENTIFY", body=b'{"client_id":"plain"}'))
    assert conn.read_frame() == (FRAME_RESPONSE, b"OK")
    conn.send(command("SUB", "plain", "c"))
    expect_fatal(conn, b"E_INVALID cannot SUB in current state (TLS required)")

    # pynsq without TLS gets through IDENTIFY, and its first PUB is refused.
    async def scenario():
        writer = recording_writer(nsqd)
        await wait_ready(writer, "plain writer")
        answers = []
        writer.pub("plain", b"x", callback=lambda conn, data: answers.append(data))
        await wait_until(lambda: answers, 10, "publish answer")
        return answers

    (answer,) = run_scenario(scenario)
    assert error_text(answer) == "E_INVALID cannot PUB in current state (TLS required)"

    # After the upgrade the same commands work.
    assert tls_publish(nsqd, client_tls_context(), "upgraded") in ("TLSv1.2", "TLSv1.3")
    stats = nsqd.stats("upgraded")
    assert stats["topics"][0]["message_count"] == 1


def test_tls_required_plain_http_is_403_and_https_serves(pool):
    nsqd = pool.start(*server_tls_args("--tls-required=true"), https=True)

    for method, path, payload in [
        ("GET", "/ping", None),
        ("GET", "/stats?format=json", None),
        ("POST", "/pub?topic=t", b"x"),
    ]:
        status, _, body = http_request(method, nsqd.http_url + path, body=payload)
        assert status == 403, (path, body)
        assert body == b'{"message": "TLS_REQUIRED", "https_port": %d}' % nsqd.https_port, body

    status, _, body = https_request("GET", nsqd.https_url + "/ping")
    assert (status, body) == (200, b"OK")
    status, _, body = https_request("POST", nsqd.https_url + "/pub?topic=over_https", body=b"hi")
    assert (status, body) == (200, b"OK")
    assert nsqd.stats("over_https")["topics"][0]["message_count"] == 1


def test_tls_required_pynsq_over_tls_works(pool):
    nsqd = pool.start(*server_tls_args("--tls-required=true"), https=True)
    topic = "required_roundtrip"
    bodies = sample_bodies(topic, 200)

    result = run_scenario(
        lambda: pynsq_roundtrip(
            nsqd, topic, bodies, tls_v1=True, tls_options=PYNSQ_TLS12, deflate=True
        )
    )

    assert_each_once(result.seen, bodies)
    for client in result.clients:
        assert client["tls"] is True and client["deflate"] is True, client


def test_tls_required_tcp_https_keeps_plain_http_open(pool):
    """--tls-required=tcp-https: TCP must upgrade, plain HTTP still answers."""
    nsqd = pool.start(*server_tls_args("--tls-required=tcp-https"), https=True)

    status, _, body = http_request("GET", nsqd.http_url + "/ping")
    assert (status, body) == (200, b"OK")

    conn = RawConn(nsqd)
    conn.send(b"  V2")
    conn.send(command("PUB", "plain", body=b"x"))
    expect_fatal(conn, b"E_INVALID cannot PUB in current state (TLS required)")


def test_tls_min_version_13_refuses_tls12_clients(pool):
    nsqd = pool.start(*server_tls_args("--tls-min-version=tls1.3"))

    expect_tls_refused(nsqd, client_tls_context(maximum=ssl.TLSVersion.TLSv1_2))
    assert tls_publish(nsqd, client_tls_context(), "min13") == "TLSv1.3"

    # pynsq's default TLS settings stop at 1.2, so it is refused; allowing 1.3 works.
    async def refused():
        writer = recording_writer(nsqd, tls_v1=True, tls_options=PYNSQ_TLS12)
        return await wait_refused(writer, "TLS 1.2 writer")

    run_scenario(refused)

    async def accepted():
        writer = recording_writer(nsqd, tls_v1=True, tls_options=PYNSQ_TLS13)
        await wait_ready(writer, "TLS 1.3 writer")
        answers = []
        writer.pub("min13", b"pynsq", callback=lambda conn, data: answers.append(data))
        await wait_until(lambda: answers, 10, "publish answer")
        writer_conns = list(writer.conns.values())
        for conn in writer_conns:
            conn.close()
        return answers

    assert run_scenario(accepted) == [b"OK"]


def test_tls_min_version_12_accepts_both(pool):
    nsqd = pool.start(*server_tls_args("--tls-min-version=tls1.2"))
    twelve = client_tls_context(maximum=ssl.TLSVersion.TLSv1_2)
    assert tls_publish(nsqd, twelve, "min12") == "TLSv1.2"
    assert tls_publish(nsqd, client_tls_context(), "min12") == "TLSv1.3"


def test_https_listener_applies_the_client_certificate_policy(pool):
    """The HTTPS API uses the same TLS settings: require-verify wants a trusted cert."""
    nsqd = pool.start(*server_tls_args(*VERIFY_CLIENTS), https=True, https_cert="client")

    trusted = client_tls_context(cert="client")
    status, _, body = https_request("GET", nsqd.https_url + "/ping", context=trusted)
    assert (status, body) == (200, b"OK")
    for cert in (None, "rogue"):
        with pytest.raises(OSError):
            https_request("GET", nsqd.https_url + "/ping", context=client_tls_context(cert=cert))
    # A client auth policy makes TLS required, plain HTTP included (as Go does).
    status, _, body = http_request("GET", nsqd.http_url + "/ping")
    assert status == 403, body
