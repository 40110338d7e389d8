"""Hostile or broken TCP clients get the right fatal error and do no harm.

A shared nsqd must reject garbage with Go nsqd's exact error frames, close that
one connection, and keep serving the well-behaved clients beside it.
"""

import collections

import nsq

from harness import (
    FRAME_ERROR,
    FRAME_RESPONSE,
    RawConn,
    close_writer,
    command,
    run_scenario,
    wait_until,
)

IDENTIFY_BODY = b'{"client_id":"bad-input-test","hostname":"bad-input-host","user_agent":"raw/1.0"}'


def expect_fatal(conn, text):
    """Reads one error frame with exactly text, then expects the server to close."""
    frame_type, data = conn.read_frame()
    assert (frame_type, data) == (FRAME_ERROR, text)
    assert conn.is_closed_by_server(), f"connection stayed open after {text!r}"
    conn.close()


def identified(nsqd):
    conn = RawConn(nsqd)
    conn.send(b"  V2")
    conn.send(command("IDENTIFY", body=IDENTIFY_BODY))
    assert conn.read_frame() == (FRAME_RESPONSE, b"OK")
    return conn


def test_bad_clients_are_closed_and_good_clients_keep_working(nsqd_factory):
    nsqd = nsqd_factory("--max-msg-size=100")
    topic, channel = "survivor", "c"
    seen = collections.Counter()

    def handler(message):
        seen[message.body] += 1
        return True

    def abuse():
        # A wrong protocol magic.
        conn = RawConn(nsqd)
        conn.send(b"  V3")
        expect_fatal(conn, b"E_BAD_PROTOCOL")

        # HTTP spoken to the TCP port is a wrong magic too.
        conn = RawConn(nsqd)
        conn.send(b"GET / HTTP/1.1\r\n\r\n")
        expect_fatal(conn, b"E_BAD_PROTOCOL")

        # An unknown command, with and without IDENTIFY first.
        conn = identified(nsqd)
        conn.send(b"FOO bar\n")
        expect_fatal(conn, b"E_INVALID invalid command FOO")
        conn = RawConn(nsqd)
        conn.send(b"  V2FOO\n")
        expect_fatal(conn, b"E_INVALID invalid command FOO")

        # Binary garbage as a command line.
        conn = RawConn(nsqd)
        conn.send(b"  V2\x01\x02garbage\n")
        frame_type, data = conn.read_frame()
        assert frame_type == FRAME_ERROR
        assert data.startswith(b"E_INVALID invalid command "), data
        assert conn.is_closed_by_server()
        conn.close()

        # A body one byte over --max-msg-size.
        conn = identified(nsqd)
        conn.send(command("PUB", "survivor_big", body=b"a" * 101))
        expect_fatal(conn, b"E_BAD_MESSAGE PUB message too big 101 > 100")

        # A body exactly at the limit is fine.
        conn = identified(nsqd)
        conn.send(command("PUB", "survivor_big", body=b"a" * 100))
        assert conn.read_frame() == (FRAME_RESPONSE, b"OK")
        conn.close()

    async def scenario():
        reader = nsq.Reader(
            topic=topic,
            channel=channel,
            message_handler=handler,
            nsqd_tcp_addresses=[nsqd.tcp_address],
            max_in_flight=10,
        )
        writer = nsq.Writer([nsqd.tcp_address], reconnect_interval=1.0)
        await wait_until(lambda: reader.conns and writer.conns, 10, "clients to connect")
        results = []

        def on_pub(conn, data):
            results.append(data)

        writer.pub(topic, b"before", callback=on_pub)
        await wait_until(lambda: seen[b"before"] == 1, 10, "message before abuse")

        # The raw sockets block, which is fine: they have short timeouts and
        # nsqd must answer them without help from this loop.
        abuse()

        writer.pub(topic, b"after-1", callback=on_pub)
        writer.mpub(topic, [b"after-2", b"after-3"], callback=on_pub)
        await wait_until(lambda: len(results) == 3, 10, "publish answers")
        await wait_until(
            lambda: all(seen[b] == 1 for b in (b"after-1", b"after-2", b"after-3")),
            10,
            "messages after abuse",
        )
        still_connected = bool(reader.conns) and bool(writer.conns)
        reader.close()
        close_writer(writer)
        return results, still_connected

    results, still_connected = run_scenario(scenario)
    assert results == [b"OK", b"OK", b"OK"]
    assert still_connected
    assert sorted(seen.elements()) == [b"after-1", b"after-2", b"after-3", b"before"]
