"""curl-style checks of nsqd's HTTP API: statuses, bodies, headers and JSON shapes.

Tools such as nsqadmin, go-nsq's lookup code and shell scripts depend on these
exact answers, so they are checked here the way a plain HTTP caller sees them.
The expected values come from the Go nsqd captures in shared/golden/http.
"""

import json

import pytest

V1_HEADER = "nsq; version=1.0"

INFO_KEYS = [
    "version",
    "broadcast_address",
    "hostname",
    "http_port",
    "tcp_port",
    "start_time",
    "max_heartbeat_interval",
    "max_output_buffer_size",
    "max_output_buffer_timeout",
    "max_deflate_level",
    "topology_zone",
    "topology_region",
]

TOPIC_KEYS = {
    "topic_name",
    "channels",
    "depth",
    "backend_depth",
    "message_count",
    "message_bytes",
    "paused",
    "e2e_processing_latency",
}

CHANNEL_KEYS = {
    "channel_name",
    "depth",
    "backend_depth",
    "in_flight_count",
    "deferred_count",
    "message_count",
    "requeue_count",
    "timeout_count",
    "client_count",
    "clients",
    "paused",
    "e2e_processing_latency",
}


def expect_json_error(result, status, message):
    code, headers, body = result
    assert code == status, body
    assert json.loads(body) == {"message": message}
    assert headers["X-Nsq-Content-Type"] == V1_HEADER


def expect_empty_ok(result):
    code, headers, body = result
    assert (code, body) == (200, b"")
    assert headers["X-Nsq-Content-Type"] == V1_HEADER


def test_ping(nsqd):
    code, headers, body = nsqd.http("GET", "/ping")
    assert (code, body) == (200, b"OK")
    assert headers["Content-Type"].startswith("text/plain")


def test_info_shape(nsqd):
    code, headers, body = nsqd.http("GET", "/info")
    assert code == 200
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["X-Nsq-Content-Type"] == V1_HEADER
    info = json.loads(body)
    assert list(info) == INFO_KEYS
    assert info["version"] == "1.3.0"
    assert info["broadcast_address"] == "127.0.0.1"
    assert info["tcp_port"] == nsqd.tcp_port
    assert info["http_port"] == nsqd.http_port
    assert isinstance(info["start_time"], int) and info["start_time"] > 1_600_000_000
    # Durations are reported as integer nanoseconds.
    assert info["max_heartbeat_interval"] == 60_000_000_000
    assert info["max_output_buffer_size"] == 65536
    assert info["max_output_buffer_timeout"] == 30_000_000_000
    assert info["max_deflate_level"] == 6


def test_stats_json_shape_after_publish(nsqd):
    expect_empty_ok(nsqd.http("POST", "/topic/create?topic=shape"))
    expect_empty_ok(nsqd.http("POST", "/channel/create?topic=shape&channel=ch"))
    bodies = [b"one", b"two!", b"three"]
    for body in bodies:
        assert nsqd.http("POST", "/pub?topic=shape", body)[0] == 200

    code, headers, raw = nsqd.http("GET", "/stats?format=json")
    assert code == 200
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["X-Nsq-Content-Type"] == V1_HEADER
    stats = json.loads(raw)
    assert list(stats) == ["version", "health", "start_time", "topics", "memory", "producers"]
    assert stats["version"] == "1.3.0"
    assert stats["health"] == "OK"
    # HTTP publishers are not TCP producers.
    assert stats["producers"] is None

    (topic,) = [t for t in stats["topics"] if t["topic_name"] == "shape"]
    assert set(topic) == TOPIC_KEYS
    assert topic["message_count"] == 3
    assert topic["message_bytes"] == sum(len(b) for b in bodies)
    assert topic["paused"] is False
    assert "count" in topic["e2e_processing_latency"]

    (channel,) = topic["channels"]
    assert CHANNEL_KEYS <= set(channel)
    assert channel["channel_name"] == "ch"
    assert channel["depth"] == 3
    assert channel["message_count"] == 3
    assert channel["in_flight_count"] == 0
    assert channel["clients"] == []

    code, _, raw = nsqd.http("GET", "/stats?format=json&include_mem=false&include_clients=false")
    assert code == 200
    trimmed = json.loads(raw)
    assert "memory" not in trimmed
    assert trimmed["topics"][0]["channels"][0]["clients"] is None

    # A topic filter that matches nothing gives null, not [].
    code, _, raw = nsqd.http("GET", "/stats?format=json&topic=nosuch")
    assert code == 200
    assert json.loads(raw)["topics"] is None


def test_stats_text_format(nsqd):
    nsqd.http("POST", "/pub?topic=texty", b"x")
    code, headers, body = nsqd.http("GET", "/stats")
    assert code == 200
    assert headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    assert text.startswith("nsqd v1.3.0")
    assert "Health: OK" in text
    assert "texty" in text


def test_topic_and_channel_lifecycle(nsqd):
    # Creating a topic is idempotent and answers 200 with an empty body.
    expect_empty_ok(nsqd.http("POST", "/topic/create?topic=life"))
    expect_empty_ok(nsqd.http("POST", "/topic/create?topic=life"))
    expect_json_error(nsqd.http("POST", "/topic/create"), 400, "MISSING_ARG_TOPIC")
    expect_json_error(nsqd.http("POST", "/topic/create?topic=bad!topic"), 400, "INVALID_TOPIC")

    # Channels need an existing topic.
    expect_empty_ok(nsqd.http("POST", "/channel/create?topic=life&channel=c1"))
    expect_json_error(
        nsqd.http("POST", "/channel/create?topic=nosuchtopic&channel=x"), 404, "TOPIC_NOT_FOUND"
    )
    expect_json_error(nsqd.http("POST", "/channel/create?topic=life"), 400, "MISSING_ARG_CHANNEL")
    expect_json_error(
        nsqd.http("POST", "/channel/create?topic=life&channel=bad!ch"), 400, "INVALID_ARG_CHANNEL"
    )

    for i in range(4):
        assert nsqd.http("POST", "/pub?topic=life", f"m{i}")[0] == 200
    assert nsqd.channel_stats("life", "c1")["depth"] == 4

    # Pause and unpause show up in /stats.
    expect_empty_ok(nsqd.http("POST", "/topic/pause?topic=life"))
    assert nsqd.stats("life")["topics"][0]["paused"] is True
    expect_empty_ok(nsqd.http("POST", "/topic/unpause?topic=life"))
    assert nsqd.stats("life")["topics"][0]["paused"] is False
    expect_json_error(nsqd.http("POST", "/topic/pause?topic=nosuch"), 404, "TOPIC_NOT_FOUND")
    expect_json_error(nsqd.http("POST", "/topic/pause"), 400, "MISSING_ARG_TOPIC")

    expect_empty_ok(nsqd.http("POST", "/channel/pause?topic=life&channel=c1"))
    assert nsqd.channel_stats("life", "c1")["paused"] is True
    expect_empty_ok(nsqd.http("POST", "/channel/unpause?topic=life&channel=c1"))
    assert nsqd.channel_stats("life", "c1")["paused"] is False
    expect_json_error(
        nsqd.http("POST", "/channel/pause?topic=life&channel=nosuch"), 404, "CHANNEL_NOT_FOUND"
    )

    # Emptying drops the queued messages.
    expect_empty_ok(nsqd.http("POST", "/channel/empty?topic=life&channel=c1"))
    assert nsqd.channel_stats("life", "c1")["depth"] == 0
    expect_json_error(
        nsqd.http("POST", "/channel/empty?topic=life&channel=nosuch"), 404, "CHANNEL_NOT_FOUND"
    )
    expect_empty_ok(nsqd.http("POST", "/topic/empty?topic=life"))
    expect_json_error(nsqd.http("POST", "/topic/empty?topic=nosuch"), 404, "TOPIC_NOT_FOUND")
    expect_json_error(nsqd.http("POST", "/topic/empty?topic=bad!t"), 400, "INVALID_TOPIC")

    # Deleting removes them; a second delete is a 404.
    expect_empty_ok(nsqd.http("POST", "/channel/delete?topic=life&channel=c1"))
    assert nsqd.channel_stats("life", "c1") is None
    expect_json_error(
        nsqd.http("POST", "/channel/delete?topic=life&channel=c1"), 404, "CHANNEL_NOT_FOUND"
    )
    expect_empty_ok(nsqd.http("POST", "/topic/delete?topic=life"))
    expect_json_error(nsqd.http("POST", "/topic/delete?topic=life"), 404, "TOPIC_NOT_FOUND")
    assert nsqd.stats("life")["topics"] is None


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/pub", b"x", 400, "MISSING_ARG_TOPIC"),
        ("/pub?topic=bad!topic", b"x", 400, "INVALID_TOPIC"),
        ("/pub?topic=ok", b"", 400, "MSG_EMPTY"),
        ("/pub?topic=ok&defer=-1", b"x", 400, "INVALID_DEFER"),
        ("/pub?topic=ok", b"x" * (1024 * 1024 + 1), 413, "MSG_TOO_BIG"),
        ("/mpub", b"x", 400, "MISSING_ARG_TOPIC"),
        ("/mpub?topic=ok&binary=true", b"\x00\x00\x00\x00", 413, "BAD_BODY"),
    ],
    ids=[
        "pub-missing-topic",
        "pub-invalid-topic",
        "pub-empty",
        "pub-bad-defer",
        "pub-too-big",
        "mpub-missing-topic",
        "mpub-binary-zero",
    ],
)
def test_publish_errors(nsqd, path, body, status, message):
    expect_json_error(nsqd.http("POST", path, body), status, message)


def test_unknown_path_and_wrong_method(nsqd):
    expect_json_error(nsqd.http("GET", "/nosuch"), 404, "NOT_FOUND")
    expect_json_error(nsqd.http("GET", "/pub?topic=x"), 405, "METHOD_NOT_ALLOWED")
    expect_json_error(nsqd.http("POST", "/stats"), 405, "METHOD_NOT_ALLOWED")


def test_pub_answer_headers(nsqd):
    code, headers, body = nsqd.http("POST", "/pub?topic=hdr", b"hello")
    assert (code, body) == (200, b"OK")
    assert headers["X-Nsq-Content-Type"] == V1_HEADER
    assert headers["Content-Type"].startswith("text/plain")
    code, headers, body = nsqd.http("POST", "/mpub?topic=hdr", b"a\nb")
    assert (code, body) == (200, b"OK")
    assert headers["X-Nsq-Content-Type"] == V1_HEADER
