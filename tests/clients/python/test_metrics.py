"""GET /metrics on nsqd and nsqlookupd, read by Prometheus's own Python parser.

Go NSQ has no /metrics (nsqio/nsq#732); ours is described in docs/prometheus.md.
These tests run a known workload against real daemons, parse the exposition
with prometheus_client's text parser (so a malformed line fails here as it
would fail a Prometheus scrape) and check the values against the workload and
against /stats, /topics, /channels and /nodes, which read the same state.
"""

import json
import time

from prometheus_client.parser import text_string_to_metric_families

from harness import FRAME_MESSAGE, FRAME_RESPONSE, RawConn, command, mpub_binary_body

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TOPIC = "metrics_topic"
BODIES = [f"metrics-body-{i:02d}".encode() for i in range(10)]


def scrape(daemon):
    """Fetches /metrics and returns ({(sample name, labels): value}, {family: type})."""
    status, headers, body = daemon.http("GET", "/metrics")
    assert status == 200, body
    assert headers["Content-Type"] == CONTENT_TYPE
    values = {}
    types = {}
    for family in text_string_to_metric_families(body.decode()):
        assert family.name not in types, f"family {family.name} appears twice"
        types[family.name] = family.type
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in values, f"duplicate sample {key}"
            values[key] = sample.value
    return values, types


def value(values, name, **labels):
    """One sample's value; fails when the sample is missing."""
    key = (name, frozenset(labels.items()))
    assert key in values, f"no sample {name}{labels}"
    return values[key]


def connect_v2(nsqd):
    conn = RawConn(nsqd)
    conn.send(b"  V2")
    return conn


def expect_ok(conn):
    frame_type, data = conn.read_frame()
    assert (frame_type, data) == (FRAME_RESPONSE, b"OK"), (frame_type, data)


def post(daemon, path):
    status, _, body = daemon.http("POST", path)
    assert status == 200, (path, status, body)


def wait_for(predicate, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def topic_stats(nsqd):
    topics = nsqd.stats()["topics"]
    return {t["topic_name"]: t for t in topics}


def test_nsqd_metrics_follow_the_workload_and_agree_with_stats(nsqd_factory):
    nsqd = nsqd_factory(
        "--e2e-processing-latency-percentile=0.99",
        "--e2e-processing-latency-percentile=0.5",
    )
    post(nsqd, f"/topic/create?topic={TOPIC}")
    post(nsqd, f"/channel/create?topic={TOPIC}&channel=ch_a")
    post(nsqd, f"/channel/create?topic={TOPIC}&channel=ch_b")

    # A producer that stays connected, so it is counted.
    producer = connect_v2(nsqd)
    producer.send(command("MPUB", TOPIC, body=mpub_binary_body(BODIES)))
    expect_ok(producer)

    # A consumer on ch_a takes three messages: one finished, one deferred, one left in flight.
    consumer = connect_v2(nsqd)
    consumer.send(command("SUB", TOPIC, "ch_a"))
    expect_ok(consumer)
    consumer.send(command("RDY", "3"))
    ids = []
    for _ in range(3):
        frame_type, data = consumer.read_frame()
        assert frame_type == FRAME_MESSAGE
        ids.append(data[10:26])
    consumer.send(command("RDY", "0"))
    consumer.send(command("FIN", ids[0]))
    consumer.send(command("REQ", ids[1], "60000"))
    post(nsqd, f"/channel/pause?topic={TOPIC}&channel=ch_b")

    def settled():
        channels = {c["channel_name"]: c for c in topic_stats(nsqd)[TOPIC]["channels"]}
        a = channels["ch_a"]
        return (a["in_flight_count"], a["deferred_count"], a["depth"]) == (1, 1, 7)

    wait_for(settled, "ch_a to hold 1 in flight, 1 deferred and 7 waiting")

    values, types = scrape(nsqd)
    stats = nsqd.stats()

    # The workload, as the metrics report it.
    assert value(values, "nsq_build_info", version="1.3.0") == 1
    assert value(values, "nsq_topics") == 1
    assert value(values, "nsq_producer_clients") == 1
    assert value(values, "nsq_consumer_clients") == 1
    t = {"topic": TOPIC}
    assert value(values, "nsq_topic_messages_total", **t) == len(BODIES)
    assert value(values, "nsq_topic_message_bytes_total", **t) == sum(map(len, BODIES))
    assert value(values, "nsq_topic_depth", **t) == 0
    assert value(values, "nsq_topic_paused", **t) == 0
    assert value(values, "nsq_topic_channels", **t) == 2
    a = {"topic": TOPIC, "channel": "ch_a"}
    b = {"topic": TOPIC, "channel": "ch_b"}
    assert value(values, "nsq_channel_messages_total", **a) == len(BODIES)
    assert value(values, "nsq_channel_depth", **a) == 7
    assert value(values, "nsq_channel_in_flight", **a) == 1
    assert value(values, "nsq_channel_deferred", **a) == 1
    assert value(values, "nsq_channel_requeues_total", **a) == 1
    assert value(values, "nsq_channel_timeouts_total", **a) == 0
    assert value(values, "nsq_channel_clients", **a) == 1
    assert value(values, "nsq_channel_paused", **a) == 0
    assert value(values, "nsq_channel_depth", **b) == len(BODIES)
    assert value(values, "nsq_channel_clients", **b) == 0
    assert value(values, "nsq_channel_paused", **b) == 1

    # Metric types: counters end in _total (the parser names the family without it).
    assert types["nsq_topic_messages"] == "counter"
    assert types["nsq_channel_requeues"] == "counter"
    assert types["nsq_channel_depth"] == "gauge"

    # Every topic and channel figure equals its /stats field.
    (topic,) = stats["topics"]
    for name, field in [
        ("nsq_topic_depth", "depth"),
        ("nsq_topic_backend_depth", "backend_depth"),
        ("nsq_topic_messages_total", "message_count"),
        ("nsq_topic_message_bytes_total", "message_bytes"),
        ("nsq_topic_paused", "paused"),
    ]:
        assert value(values, name, **t) == topic[field], name
    for channel in topic["channels"]:
        labels = {"topic": TOPIC, "channel": channel["channel_name"]}
        for name, field in [
            ("nsq_channel_depth", "depth"),
            ("nsq_channel_backend_depth", "backend_depth"),
            ("nsq_channel_in_flight", "in_flight_count"),
            ("nsq_channel_deferred", "deferred_count"),
            ("nsq_channel_messages_total", "message_count"),
            ("nsq_channel_requeues_total", "requeue_count"),
            ("nsq_channel_timeouts_total", "timeout_count"),
            ("nsq_channel_clients", "client_count"),
            ("nsq_channel_paused", "paused"),
        ]:
            assert value(values, name, **labels) == channel[field], (name, labels)
        e2e = channel["e2e_processing_latency"]
        assert [p["quantile"] for p in e2e["percentiles"]] == [0.99, 0.5]
        for p in e2e["percentiles"]:
            got = value(
                values,
                "nsq_channel_e2e_processing_latency_seconds",
                quantile=str(p["quantile"]),
                **labels,
            )
            assert abs(got - p["value"] / 1e9) < 1e-9, (labels, p)
        assert value(values, "nsq_channel_e2e_processing_latency_samples", **labels) == e2e["count"]
    # ch_a finished one message, so it has a latency to report.
    assert value(values, "nsq_channel_e2e_processing_latency_samples", **a) >= 1
    for p in topic["e2e_processing_latency"]["percentiles"]:
        got = value(
            values,
            "nsq_topic_e2e_processing_latency_seconds",
            quantile=str(p["quantile"]),
            **t,
        )
        assert abs(got - p["value"] / 1e9) < 1e-9, p

    # Process figures.
    assert value(values, "process_start_time_seconds") == stats["start_time"]
    assert value(values, "process_resident_memory_bytes") > 1024 * 1024
    assert value(values, "process_open_fds") >= 4  # stdio, two listeners, two client sockets...

    producer.close()
    consumer.close()


def test_nsqd_metrics_without_topics_or_percentiles(nsqd):
    values, types = scrape(nsqd)
    assert value(values, "nsq_topics") == 0
    assert value(values, "nsq_producer_clients") == 0
    assert value(values, "nsq_consumer_clients") == 0
    assert not any(name.startswith(("nsq_topic_", "nsq_channel_")) for name in types)

    post(nsqd, f"/topic/create?topic={TOPIC}")
    post(nsqd, f"/channel/create?topic={TOPIC}&channel=only")
    values, types = scrape(nsqd)
    assert value(values, "nsq_channel_depth", topic=TOPIC, channel="only") == 0
    # No --e2e-processing-latency-percentile: no latency families at all.
    assert not any("e2e" in name for name in types)


def test_metrics_route_is_get_only(nsqd, lookupd_factory):
    lookupd = lookupd_factory()
    for daemon in (nsqd, lookupd):
        status, headers, _ = daemon.http("POST", "/metrics")
        assert status == 405
        assert headers["Allow"] == "GET, OPTIONS"
        status, headers, _ = daemon.http("OPTIONS", "/metrics")
        assert status == 200
        assert headers["Allow"] == "GET, OPTIONS"


def test_lookupd_metrics_with_one_registered_nsqd(nsqd_factory, lookupd_factory):
    lookupd = lookupd_factory()
    nsqd = nsqd_factory(f"--lookupd-tcp-address={lookupd.tcp_address}")
    post(nsqd, "/topic/create?topic=lk_topic")
    post(nsqd, "/channel/create?topic=lk_topic&channel=c1")
    post(nsqd, "/channel/create?topic=lk_topic&channel=c2")
    # A topic registered on lookupd alone has no producer.
    post(lookupd, "/topic/create?topic=lk_bare")

    def registered():
        answer = lookupd.lookup("lk_topic")
        return answer is not None and len(answer["producers"]) == 1 and len(answer["channels"]) == 2

    wait_for(registered, "nsqd to register lk_topic and two channels with lookupd")

    values, types = scrape(lookupd)
    assert value(values, "nsq_build_info", version="1.3.0") == 1
    assert value(values, "nsq_lookupd_producers") == 1
    assert value(values, "nsq_lookupd_topics") == 2
    assert value(values, "nsq_lookupd_channels") == 2
    assert value(values, "nsq_lookupd_topic_producers", topic="lk_topic") == 1
    assert value(values, "nsq_lookupd_topic_producers", topic="lk_bare") == 0
    assert value(values, "nsq_lookupd_topic_channels", topic="lk_topic") == 2
    assert value(values, "nsq_lookupd_topic_channels", topic="lk_bare") == 0
    assert all(t == "gauge" for t in types.values()), types

    # The same counts as the JSON endpoints.
    _, _, body = lookupd.http("GET", "/topics")
    topics = json.loads(body)["topics"]
    assert value(values, "nsq_lookupd_topics") == len(topics)
    _, _, body = lookupd.http("GET", "/nodes")
    nodes = json.loads(body)["producers"]
    assert value(values, "nsq_lookupd_producers") == len(nodes)
    for name in topics:
        _, _, body = lookupd.http("GET", f"/channels?topic={name}")
        channels = json.loads(body)["channels"]
        assert value(values, "nsq_lookupd_topic_channels", topic=name) == len(channels)

    now = time.time()
    assert now - 600 < value(values, "process_start_time_seconds") <= now + 1
    assert value(values, "process_resident_memory_bytes") > 1024 * 1024
    assert value(values, "process_open_fds") >= 3
