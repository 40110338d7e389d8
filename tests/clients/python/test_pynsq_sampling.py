"""pynsq's sample_rate and descriptive IDENTIFY fields against our nsqd.

A Reader that asks for sample_rate N gets about N% of its channel's messages;
the rest are dropped for that channel, as Go nsqd drops them. The fields the
client sent in IDENTIFY (client_id, hostname, user_agent, sample_rate) show up
in /stats for that client.
"""

import nsq

from harness import mpub_binary_body, run_scenario, wait_until

TOTAL = 2000


def test_sample_rate_delivers_about_that_share_and_drops_the_rest(nsqd):
    topic, channel = "sampled", "half"
    # The channel must exist before the messages arrive, so none stay queued at the topic.
    status, _, _ = nsqd.http("POST", f"/topic/create?topic={topic}")
    assert status == 200
    status, _, _ = nsqd.http("POST", f"/channel/create?topic={topic}&channel={channel}")
    assert status == 200
    bodies = [f"s-{i:05d}".encode() for i in range(TOTAL)]
    for start in range(0, TOTAL, 500):
        status, _, body = nsqd.http(
            "POST",
            f"/mpub?topic={topic}&binary=true",
            mpub_binary_body(bodies[start : start + 500]),
        )
        assert status == 200, body

    received = []

    def handler(message):
        received.append(message.body)
        return True

    async def scenario():
        reader = nsq.Reader(
            topic=topic,
            channel=channel,
            message_handler=handler,
            nsqd_tcp_addresses=[nsqd.tcp_address],
            max_in_flight=100,
            sample_rate=50,
            hostname="sample-host",
            user_agent="sampling-test/1.0",
        )

        def drained():
            stats = nsqd.channel_stats(topic, channel)
            return (
                stats is not None
                and stats["depth"] == 0
                and stats["in_flight_count"] == 0
                and stats["client_count"] == 1
            )

        await wait_until(drained, 20, "the sampled channel to drain", interval=0.05)
        client = nsqd.channel_stats(topic, channel)["clients"][0]
        reader.close()
        return client

    client = run_scenario(scenario)
    # Go keeps a message when rand.Int31n(100) <= 50, so 51% on average; with 2000
    # messages the count stays within about 5 standard deviations (~22 each) of 1020.
    assert 900 <= len(received) <= 1140, len(received)
    assert len(set(received)) == len(received), "a sampled message came twice"
    assert client["sample_rate"] == 50
    # pynsq sends its hostname's first label as client_id.
    assert client["client_id"] == "sample-host"
    assert client["hostname"] == "sample-host"
    assert client["user_agent"] == "sampling-test/1.0"
    assert client["finish_count"] == len(received)
