"""pynsq 0.9.1 Readers that find our nsqd only through our nsqlookupd.

Production consumers rarely list nsqd addresses: they ask nsqlookupd. These
tests run two lookupds and several nsqd that register with both, and check that
a Reader given only the lookupd HTTP addresses finds every nsqd (including one
started later), receives every message exactly once, and carries on when an
nsqd dies or hangs.

Tests take lookupd_factory before nsqd_factory so that teardown, which runs in
reverse, stops the nsqd while their lookupds are still up.
"""

import asyncio
import collections
import json
import time

import nsq

from harness import producer_key, run_scenario, wait_until

TOPIC = "discovery"
# pynsq wants whole seconds; 1 s keeps discovery quick without flooding lookupd.
POLL_INTERVAL = 1
# nsqd PINGs each lookupd every 15 s, so a producer timeout just above that
# keeps healthy nsqd listed while hiding a silent one soon after.
INACTIVE_TIMEOUT = 17


class Cluster:
    """Two nsqlookupd and any number of nsqd registered with both."""

    def __init__(self, nsqd_factory, lookupd_factory, lookupd_args=()):
        self.lookupds = [lookupd_factory(*lookupd_args) for _ in range(2)]
        self._nsqd_factory = nsqd_factory
        self.nsqds = []

    def add_nsqd(self):
        flags = [f"--lookupd-tcp-address={lookupd.tcp_address}" for lookupd in self.lookupds]
        daemon = self._nsqd_factory(*flags)
        self.nsqds.append(daemon)
        return daemon

    def lookupd_http_addresses(self):
        # A fresh list each time: pynsq shuffles the one it is given in place.
        return [lookupd.http_address for lookupd in self.lookupds]

    def listings(self, topic):
        """What each lookupd lists as producers of topic, one set per lookupd."""
        return [lookupd.producers(topic) for lookupd in self.lookupds]

    async def wait_listed(self, topic, nsqds, timeout=10):
        """Waits until every lookupd lists exactly nsqds as producers of topic."""
        want = {producer_key(daemon) for daemon in nsqds}
        last = []

        def listed():
            last[:] = self.listings(topic)
            return all(seen == want for seen in last)

        try:
            await wait_until(listed, timeout, f"lookupds to list {sorted(want)}", interval=0.1)
        except AssertionError as err:
            raise AssertionError(f"{err}; /lookup?topic={topic} gave {last}") from None

    async def wait_known(self, daemon, timeout=10):
        """Waits until every lookupd lists nsqd in /nodes, i.e. it has IDENTIFYed."""

        def known():
            for lookupd in self.lookupds:
                status, _, body = lookupd.http("GET", "/nodes")
                assert status == 200, body
                ports = {p["tcp_port"] for p in json.loads(body)["producers"]}
                if daemon.tcp_port not in ports:
                    return False
            return True

        await wait_until(known, timeout, f"nsqd {daemon.tcp_address} in /nodes", interval=0.05)


class Consumer:
    """A lookupd-only pynsq Reader that FINs everything and counts bodies."""

    def __init__(self, cluster, channel, max_in_flight=30):
        self.channel = channel
        self.seen = collections.Counter()
        self.reader = nsq.Reader(
            topic=TOPIC,
            channel=channel,
            message_handler=self._handle,
            lookupd_http_addresses=cluster.lookupd_http_addresses(),
            lookupd_poll_interval=POLL_INTERVAL,
            max_in_flight=max_in_flight,
        )

    def _handle(self, message):
        self.seen[message.body] += 1
        return True

    def connected_ports(self):
        return {conn.port for conn in self.reader.conns.values()}

    async def wait_connected(self, nsqds, timeout=10):
        """Waits until the Reader is connected to exactly these nsqd."""
        want = {daemon.tcp_port for daemon in nsqds}
        await wait_until(
            lambda: self.connected_ports() == want,
            timeout,
            f"{self.channel} reader to connect to nsqd ports {sorted(want)}"
            f" (connected: {sorted(self.connected_ports())})",
            interval=0.05,
        )

    async def wait_received(self, bodies, timeout=20):
        wanted = set(bodies)
        try:
            await wait_until(lambda: wanted <= set(self.seen), timeout, "messages", interval=0.02)
        except AssertionError:
            missing = sorted(wanted - set(self.seen))
            raise AssertionError(
                f"{self.channel} reader still misses {len(missing)} of {len(wanted)}"
                f" messages after {timeout}s, e.g. {missing[:3]}"
            ) from None

    def duplicates(self):
        return {body: n for body, n in self.seen.items() if n != 1}

    def close(self):
        self.reader.close()


def publish(nsqd, prefix, count):
    """Publishes count messages with one HTTP /mpub and returns their bodies."""
    bodies = [f"{prefix}-{i:04d}".encode() for i in range(count)]
    status, _, answer = nsqd.http("POST", f"/mpub?topic={TOPIC}", b"\n".join(bodies))
    assert (status, answer) == (200, b"OK"), (status, answer)
    return bodies


def create_topic(nsqd):
    status, _, answer = nsqd.http("POST", f"/topic/create?topic={TOPIC}")
    assert status == 200, (status, answer)


async def wait_channel_drained(nsqd, channel, timeout=20):
    """Waits until the channel has nothing queued, in flight or deferred."""

    def drained():
        stats = nsqd.channel_stats(TOPIC, channel)
        return (
            stats is not None
            and stats["depth"] == 0
            and stats["in_flight_count"] == 0
            and stats["deferred_count"] == 0
        )

    await wait_until(drained, timeout, f"{nsqd.tcp_address} {channel} to drain", interval=0.05)
    return nsqd.channel_stats(TOPIC, channel)


def assert_clean(stats, message_count):
    assert stats["message_count"] == message_count, stats
    assert stats["requeue_count"] == 0, stats
    assert stats["timeout_count"] == 0, stats


def test_reader_consumes_from_two_nsqd_found_through_two_lookupds(lookupd_factory, nsqd_factory):
    """Both nsqd register with both lookupds; the Reader takes every message once."""
    cluster = Cluster(nsqd_factory, lookupd_factory)
    nsqds = [cluster.add_nsqd(), cluster.add_nsqd()]

    async def scenario():
        for daemon in nsqds:
            create_topic(daemon)
        await cluster.wait_listed(TOPIC, nsqds)
        consumer = Consumer(cluster, "c")
        try:
            await consumer.wait_connected(nsqds)
            # SUB creates the channel on each nsqd, which must REGISTER it too.
            await wait_until(
                lambda: all(
                    lookupd.lookup(TOPIC)["channels"] == ["c"] for lookupd in cluster.lookupds
                ),
                10,
                "channel c to be registered with both lookupds",
                interval=0.1,
            )
            bodies = publish(nsqds[0], "first", 150) + publish(nsqds[1], "second", 150)
            await consumer.wait_received(bodies)
            stats = [await wait_channel_drained(daemon, "c") for daemon in nsqds]
        finally:
            consumer.close()
        return consumer, bodies, stats

    consumer, bodies, stats = run_scenario(scenario)
    assert set(consumer.seen) == set(bodies)
    assert consumer.duplicates() == {}
    for per_nsqd in stats:
        assert_clean(per_nsqd, 150)


def test_nsqd_started_later_is_discovered_by_every_channel(lookupd_factory, nsqd_factory):
    """A third nsqd whose topic appears on its first publish is found and drained.

    Two Readers on different channels watch the topic. The late nsqd gets its
    first messages before any Reader connects to it, so both channels receive
    them only if nsqd pre-creates the channels lookupd knows when the topic is
    born (nsqd's `/channels` query).
    """
    cluster = Cluster(nsqd_factory, lookupd_factory)
    early = [cluster.add_nsqd(), cluster.add_nsqd()]

    async def scenario():
        for daemon in early:
            create_topic(daemon)
        await cluster.wait_listed(TOPIC, early)
        consumers = [Consumer(cluster, "c1"), Consumer(cluster, "c2")]
        try:
            for consumer in consumers:
                await consumer.wait_connected(early)
            bodies = publish(early[0], "early0", 50) + publish(early[1], "early1", 50)
            for consumer in consumers:
                await consumer.wait_received(bodies)

            late = cluster.add_nsqd()
            # Publish only once the late nsqd has IDENTIFYed with the lookupds,
            # so it can ask them which channels the topic has.
            await cluster.wait_known(late)
            backlog = publish(late, "late-backlog", 50)
            for channel in ("c1", "c2"):
                assert late.channel_stats(TOPIC, channel) is not None, (
                    f"the late nsqd did not pre-create channel {channel} from lookupd"
                )
            await cluster.wait_listed(TOPIC, early + [late])
            for consumer in consumers:
                await consumer.wait_connected(early + [late])
            bodies += backlog
            bodies += publish(late, "late-live", 50)
            bodies += publish(early[0], "early0-again", 20)
            for consumer in consumers:
                await consumer.wait_received(bodies)
            stats = {
                (daemon.tcp_port, channel): await wait_channel_drained(daemon, channel)
                for daemon in early + [late]
                for channel in ("c1", "c2")
            }
        finally:
            for consumer in consumers:
                consumer.close()
        return consumers, bodies, stats, late

    consumers, bodies, stats, late = run_scenario(scenario)
    for consumer in consumers:
        assert set(consumer.seen) == set(bodies), consumer.channel
        assert consumer.duplicates() == {}, consumer.channel
    for channel in ("c1", "c2"):
        assert_clean(stats[(late.tcp_port, channel)], 100)


def test_reader_carries_on_after_an_nsqd_is_killed(lookupd_factory, nsqd_factory):
    """A SIGKILLed nsqd leaves /lookup at once and the Reader keeps the others."""
    cluster = Cluster(nsqd_factory, lookupd_factory)
    nsqds = [cluster.add_nsqd() for _ in range(3)]
    victim, survivors = nsqds[2], nsqds[:2]

    async def scenario():
        for daemon in nsqds:
            create_topic(daemon)
        await cluster.wait_listed(TOPIC, nsqds)
        consumer = Consumer(cluster, "c")
        try:
            await consumer.wait_connected(nsqds)
            bodies = []
            for index, daemon in enumerate(nsqds):
                bodies += publish(daemon, f"before-{index}", 40)
            await consumer.wait_received(bodies)
            await wait_channel_drained(victim, "c")

            victim.kill()
            # The lookupd connection closes with the process, which drops its
            # registrations without waiting for any timeout.
            await cluster.wait_listed(TOPIC, survivors, timeout=5)
            await consumer.wait_connected(survivors)
            for index, daemon in enumerate(survivors):
                bodies += publish(daemon, f"after-{index}", 60)
            await consumer.wait_received(bodies)
            stats = [await wait_channel_drained(daemon, "c") for daemon in survivors]
        finally:
            consumer.close()
        return consumer, bodies, stats

    consumer, bodies, stats = run_scenario(scenario)
    assert set(consumer.seen) == set(bodies)
    assert consumer.duplicates() == {}
    for per_nsqd in stats:
        assert_clean(per_nsqd, 100)


def test_hung_nsqd_leaves_lookup_while_the_reader_carries_on(lookupd_factory, nsqd_factory):
    """A frozen nsqd stops PINGing, so lookupd hides it after the producer timeout.

    The lookupds run with --inactive-producer-timeout just above nsqd's 15 s
    PING period: the healthy nsqd must stay listed all along (its PINGs keep it
    fresh) while the frozen one must drop out. Meanwhile the Reader keeps
    consuming from the healthy nsqd, and after SIGCONT from the thawed one.
    """
    cluster = Cluster(
        nsqd_factory, lookupd_factory, (f"--inactive-producer-timeout={INACTIVE_TIMEOUT}s",)
    )
    healthy, frozen = cluster.add_nsqd(), cluster.add_nsqd()

    async def scenario():
        for daemon in (healthy, frozen):
            create_topic(daemon)
        await cluster.wait_listed(TOPIC, [healthy, frozen])
        consumer = Consumer(cluster, "c")
        try:
            await consumer.wait_connected([healthy, frozen])
            bodies = publish(healthy, "before-healthy", 30) + publish(frozen, "before-frozen", 30)
            await consumer.wait_received(bodies)
            await wait_channel_drained(frozen, "c")

            frozen.freeze()
            frozen_at = time.monotonic()
            bodies += publish(healthy, "during", 30)
            await consumer.wait_received(bodies)

            deadline = frozen_at + INACTIVE_TIMEOUT + 5
            while True:
                listings = cluster.listings(TOPIC)
                for seen in listings:
                    assert producer_key(healthy) in seen, (
                        f"healthy nsqd dropped from /lookup {time.monotonic() - frozen_at:.1f}s"
                        f" after the other froze: {listings}"
                    )
                if all(producer_key(frozen) not in seen for seen in listings):
                    break
                assert time.monotonic() < deadline, (
                    f"frozen nsqd still listed {INACTIVE_TIMEOUT + 5}s after SIGSTOP: {listings}"
                )
                await asyncio.sleep(0.25)

            frozen.thaw()
            bodies += publish(frozen, "after-thaw", 30) + publish(healthy, "after", 30)
            await consumer.wait_received(bodies)
            stats = [await wait_channel_drained(daemon, "c") for daemon in (healthy, frozen)]
        finally:
            frozen.thaw()
            consumer.close()
        return consumer, bodies, stats

    consumer, bodies, stats = run_scenario(scenario, timeout=50)
    assert set(consumer.seen) == set(bodies)
    assert consumer.duplicates() == {}
    assert_clean(stats[0], 90)
    assert_clean(stats[1], 60)
