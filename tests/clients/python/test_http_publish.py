"""Messages published over HTTP (/pub, /mpub text and binary) reach a pynsq Reader.

Producers in many shops are plain HTTP callers, so the HTTP publish paths must
feed the same queues the TCP consumers read.
"""

import collections

import nsq

from harness import mpub_binary_body, run_scenario, wait_until


def test_http_pub_and_mpub_then_consume(nsqd):
    topic, channel = "http_in", "reader"
    single = [f"single-{i}".encode() for i in range(5)]
    text_lines = [f"text-{i}".encode() for i in range(20)]
    # Binary MPUB may carry newlines and arbitrary bytes inside a message.
    binary = [f"bin-{i}\nline two\x00\xff".encode("latin-1") for i in range(20)]

    for body in single:
        status, headers, answer = nsqd.http("POST", f"/pub?topic={topic}", body)
        assert (status, answer) == (200, b"OK")
        assert headers["X-Nsq-Content-Type"] == "nsq; version=1.0"

    # Empty lines in a text MPUB body are dropped, so they must not show up.
    text_body = b"\n".join(text_lines[:10]) + b"\n\n" + b"\n".join(text_lines[10:]) + b"\n"
    status, _, answer = nsqd.http("POST", f"/mpub?topic={topic}", text_body)
    assert (status, answer) == (200, b"OK")

    status, _, answer = nsqd.http(
        "POST", f"/mpub?topic={topic}&binary=true", mpub_binary_body(binary)
    )
    assert (status, answer) == (200, b"OK")

    expected = single + text_lines + binary
    topic_stats = nsqd.stats(topic)["topics"][0]
    assert topic_stats["message_count"] == len(expected)

    seen = collections.Counter()

    def handler(message):
        seen[message.body] += 1
        return True

    async def scenario():
        # The channel is created only now: messages published before any
        # channel existed wait on the topic and go to the first channel.
        reader = nsq.Reader(
            topic=topic,
            channel=channel,
            message_handler=handler,
            nsqd_tcp_addresses=[nsqd.tcp_address],
            max_in_flight=10,
        )
        await wait_until(lambda: sum(seen.values()) >= len(expected), 20, "all messages")

        def drained():
            stats = nsqd.channel_stats(topic, channel)
            return stats and stats["depth"] == 0 and stats["in_flight_count"] == 0

        await wait_until(drained, 20, "channel drained", interval=0.05)
        reader.close()

    run_scenario(scenario)
    assert sorted(seen.elements()) == sorted(expected)
