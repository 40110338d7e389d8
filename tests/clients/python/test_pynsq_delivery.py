"""pynsq 0.9.1 Reader and Writer against our nsqd: delivery, REQ and timeouts.

These are the paths a real Python consumer exercises every day, so a drop-in
nsqd has to satisfy them byte for byte as pynsq understands the protocol.
"""

import collections
import time

import nsq
import pytest

from harness import close_writer, run_scenario, wait_until

TOTAL = 10_000
BATCH = 100
# nsqd may hold a message in the client's output buffer for up to
# output_buffer_timeout (250 ms, pynsq's value) before it reaches the client,
# so a 1 s server-side wait can look up to 250 ms shorter from here.
EARLIEST_1S_GAP = 1.0 - 0.25 - 0.05


def make_writer(nsqd):
    return nsq.Writer([nsqd.tcp_address], reconnect_interval=1.0)


def make_reader(nsqd, topic, channel, handler, **kwargs):
    kwargs.setdefault("max_in_flight", 1)
    return nsq.Reader(
        topic=topic,
        channel=channel,
        message_handler=handler,
        nsqd_tcp_addresses=[nsqd.tcp_address],
        **kwargs,
    )


async def wait_connected(client, what):
    await wait_until(lambda: client.conns, 10, f"{what} to connect")


async def wait_channel_drained(nsqd, topic, channel, timeout=20):
    """Waits until the channel has nothing queued, in flight or deferred."""

    def drained():
        stats = nsqd.channel_stats(topic, channel)
        return (
            stats is not None
            and stats["depth"] == 0
            and stats["in_flight_count"] == 0
            and stats["deferred_count"] == 0
        )

    await wait_until(drained, timeout, f"{topic}/{channel} to drain", interval=0.05)
    return nsqd.channel_stats(topic, channel)


class PubTracker:
    """Counts Writer callbacks so a scenario can wait for every OK."""

    def __init__(self):
        self.ok = 0
        self.errors = []

    def callback(self, conn, data):
        if isinstance(data, Exception):
            self.errors.append(data)
        else:
            assert data == b"OK", data
            self.ok += 1


def test_writer_reader_ten_thousand_messages_each_once(nsqd):
    """10,000 messages by PUB and MPUB arrive exactly once each and are FINed."""
    topic, channel = "bulk", "consumer"
    bodies = [f"msg-{i:05d}".encode() for i in range(TOTAL)]
    seen = collections.Counter()

    def handler(message):
        seen[message.body] += 1
        return True

    async def scenario():
        reader = make_reader(nsqd, topic, channel, handler, max_in_flight=200)
        writer = make_writer(nsqd)
        await wait_connected(reader, "reader")
        await wait_connected(writer, "writer")

        tracker = PubTracker()
        transactions = 0
        # Alternate: one batch as single PUBs, the next as one MPUB.
        for start in range(0, TOTAL, BATCH):
            batch = bodies[start : start + BATCH]
            if (start // BATCH) % 2 == 0:
                for body in batch:
                    writer.pub(topic, body, callback=tracker.callback)
                    transactions += 1
            else:
                writer.mpub(topic, batch, callback=tracker.callback)
                transactions += 1
        await wait_until(
            lambda: tracker.errors or tracker.ok == transactions, 30, "publish OKs"
        )
        assert tracker.errors == []

        await wait_until(lambda: len(seen) == TOTAL, 30, "all messages consumed")
        stats = await wait_channel_drained(nsqd, topic, channel)
        reader.close()
        close_writer(writer)
        return stats

    stats = run_scenario(scenario)
    assert set(seen) == set(bodies)
    duplicates = {body: n for body, n in seen.items() if n != 1}
    assert duplicates == {}
    assert stats["message_count"] == TOTAL
    assert stats["requeue_count"] == 0
    assert stats["timeout_count"] == 0


def test_requeue_redelivers_with_growing_attempts(nsqd):
    """REQ with no delay and with a 1 s delay both come back with attempts 2."""
    topic, channel = "requeue", "c"
    deliveries = collections.defaultdict(list)

    def handler(message):
        body = message.body
        deliveries[body].append((message.attempts, time.monotonic()))
        if message.attempts == 1:
            delay = 1 if body == b"later" else 0
            message.requeue(delay=delay, backoff=False)
            return None
        return True

    async def scenario():
        reader = make_reader(nsqd, topic, channel, handler, max_in_flight=5)
        writer = make_writer(nsqd)
        await wait_connected(reader, "reader")
        await wait_connected(writer, "writer")
        tracker = PubTracker()
        writer.pub(topic, b"now", callback=tracker.callback)
        writer.pub(topic, b"later", callback=tracker.callback)
        await wait_until(lambda: tracker.errors or tracker.ok == 2, 10, "publish OKs")
        assert tracker.errors == []
        await wait_until(
            lambda: all(len(deliveries[b]) >= 2 for b in (b"now", b"later")),
            20,
            "both redeliveries",
        )
        stats = await wait_channel_drained(nsqd, topic, channel)
        reader.close()
        close_writer(writer)
        return stats

    stats = run_scenario(scenario)
    for body in (b"now", b"later"):
        attempts = [a for a, _ in deliveries[body]]
        assert attempts == [1, 2], (body, attempts)
    first, second = (t for _, t in deliveries[b"later"])
    gap = second - first
    assert gap >= EARLIEST_1S_GAP, f"REQ 1000 ms came back after {gap:.2f}s"
    assert stats["requeue_count"] == 2
    assert stats["message_count"] == 2


def _timeout_scenario(nsqd, reader_kwargs):
    topic, channel = "timeouts", "c"
    deliveries = []
    held = []

    def handler(message):
        deliveries.append((message.attempts, time.monotonic()))
        if message.attempts == 1:
            # Take ownership and never answer, so only msg-timeout can free it.
            message.enable_async()
            held.append(message)
            return None
        return True

    async def scenario():
        reader = make_reader(nsqd, topic, channel, handler, max_in_flight=5, **reader_kwargs)
        writer = make_writer(nsqd)
        await wait_connected(reader, "reader")
        await wait_connected(writer, "writer")
        tracker = PubTracker()
        writer.pub(topic, b"slow", callback=tracker.callback)
        await wait_until(lambda: tracker.errors or tracker.ok == 1, 10, "publish OK")
        assert tracker.errors == []
        await wait_until(lambda: len(deliveries) >= 2, 15, "redelivery after timeout")
        stats = await wait_channel_drained(nsqd, topic, channel)
        reader.close()
        close_writer(writer)
        return stats

    stats = run_scenario(scenario)
    assert [a for a, _ in deliveries] == [1, 2]
    gap = deliveries[1][1] - deliveries[0][1]
    assert EARLIEST_1S_GAP <= gap <= 10, f"redelivered after {gap:.2f}s, expected about 1s"
    assert stats["timeout_count"] == 1


@pytest.mark.parametrize("how", ["flag", "identify"])
def test_unanswered_message_times_out_and_returns(nsqd_factory, how):
    """A message never FINed comes back with attempts 2 after about 1 s."""
    if how == "flag":
        daemon = nsqd_factory("--msg-timeout=1s")
        _timeout_scenario(daemon, {})
    else:
        daemon = nsqd_factory()
        _timeout_scenario(daemon, {"msg_timeout": 1})
