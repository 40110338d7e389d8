'use strict'
// nsqjs 0.13.0 Readers that find our nsqd only through our nsqlookupd. Two
// lookupds run with several nsqd registered with both; a Reader given only the
// lookupd HTTP addresses must find every nsqd (including one started later),
// receive every message exactly once, and carry on when an nsqd dies.

const {test} = require('node:test')
const assert = require('node:assert/strict')
const nsq = require('nsqjs')

const {Nsqd, Nsqlookupd, producerKey, waitUntil} = require('../harness')

const TOPIC = 'discovery_js'
const TEST_TIMEOUT_MS = 60000
// The shortest poll nsqjs accepts; it keeps discovery quick.
const POLL_INTERVAL_S = 1
// Errors a Reader may report while it notices that an nsqd has gone away.
const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE'])

// Two nsqlookupd and any number of nsqd registered with both.
class Cluster {
  constructor() {
    this.lookupds = []
    this.nsqds = []
  }

  async start() {
    for (let i = 0; i < 2; i++) {
      const lookupd = new Nsqlookupd()
      this.lookupds.push(lookupd)
      await lookupd.start()
    }
    return this
  }

  async addNsqd() {
    const flags = this.lookupds.map((l) => `--lookupd-tcp-address=${l.tcpAddress}`)
    const nsqd = new Nsqd(flags)
    this.nsqds.push(nsqd)
    return nsqd.start()
  }

  async stop() {
    for (const daemon of [...this.nsqds, ...this.lookupds]) await daemon.stop()
  }

  logs() {
    return [...this.lookupds, ...this.nsqds]
      .map((d) => `--- ${d.name} ${d.tcpAddress} log ---\n${d.log.slice(-2000)}`)
      .join('\n')
  }

  // What each lookupd lists as producers of the topic.
  listings() {
    return Promise.all(this.lookupds.map((l) => l.producers(TOPIC)))
  }

  // Waits until every lookupd lists exactly these nsqd as producers of the topic.
  async waitListed(nsqds, timeoutMs = 10000) {
    const want = nsqds.map(producerKey).sort()
    let last = []
    try {
      await waitUntil(
        async () => {
          last = await this.listings()
          return last.every((seen) => JSON.stringify(seen) === JSON.stringify(want))
        },
        timeoutMs,
        `lookupds to list ${JSON.stringify(want)}`,
        100
      )
    } catch (err) {
      err.message += `; /lookup?topic=${TOPIC} gave ${JSON.stringify(last)}`
      throw err
    }
  }

  // Waits until every lookupd lists the nsqd in /nodes, i.e. it has IDENTIFYed.
  async waitKnown(nsqd, timeoutMs = 10000) {
    await waitUntil(
      async () => {
        for (const lookupd of this.lookupds) {
          const res = await lookupd.http('GET', '/nodes')
          assert.equal(res.status, 200, res.body)
          const ports = JSON.parse(res.body).producers.map((p) => p.tcp_port)
          if (!ports.includes(nsqd.tcpPort)) return false
        }
        return true
      },
      timeoutMs,
      `nsqd ${nsqd.tcpAddress} in /nodes`,
      50
    )
  }
}

// Runs fn with a fresh cluster, adds the daemon logs to any failure, and
// always stops every daemon afterwards.
async function withCluster(fn) {
  const cluster = new Cluster()
  try {
    await cluster.start()
    return await fn(cluster)
  } catch (err) {
    err.message += `\n${cluster.logs()}`
    throw err
  } finally {
    await cluster.stop()
  }
}

// A lookupd-only nsqjs Reader that FINs everything and counts bodies.
class Consumer {
  constructor(cluster, channel) {
    this.channel = channel
    this.seen = new Map()
    this.errors = []
    this.ports = new Set()
    this.reader = new nsq.Reader(TOPIC, channel, {
      lookupdHTTPAddresses: cluster.lookupds.map((l) => l.httpAddress),
      lookupdPollInterval: POLL_INTERVAL_S,
      maxInFlight: 30,
    })
    this.reader.on('error', (err) => this.errors.push(err))
    this.reader.on('nsqd_connected', (host, port) => this.ports.add(port))
    this.reader.on('nsqd_closed', (host, port) => this.ports.delete(port))
    this.reader.on('message', (msg) => {
      const body = msg.body.toString()
      this.seen.set(body, (this.seen.get(body) || 0) + 1)
      msg.finish()
    })
    this.reader.connect()
  }

  // Waits until the Reader is connected to exactly these nsqd.
  async waitConnected(nsqds, timeoutMs = 10000) {
    const want = nsqds.map((n) => n.tcpPort).sort()
    const have = () => [...this.ports].sort()
    try {
      await waitUntil(
        () => JSON.stringify(have()) === JSON.stringify(want),
        timeoutMs,
        `${this.channel} reader to connect to nsqd ports ${want}`,
        50
      )
    } catch (err) {
      err.message += ` (connected: ${have()})`
      throw err
    }
  }

  async waitReceived(bodies, timeoutMs = 20000) {
    const missing = () => bodies.filter((b) => !this.seen.has(b))
    try {
      await waitUntil(() => missing().length === 0, timeoutMs, 'messages', 20)
    } catch (err) {
      const left = missing()
      throw new Error(
        `${this.channel} reader still misses ${left.length} of ${bodies.length} messages` +
          ` after ${timeoutMs}ms, e.g. ${left.slice(0, 3)}`
      )
    }
  }

  duplicates() {
    return [...this.seen].filter(([, n]) => n !== 1)
  }

  close() {
    this.reader.close()
  }
}

// Publishes count messages with one HTTP /mpub and returns their bodies.
async function publish(nsqd, prefix, count) {
  const bodies = []
  for (let i = 0; i < count; i++) bodies.push(`${prefix}-${String(i).padStart(4, '0')}`)
  const res = await nsqd.http('POST', `/mpub?topic=${TOPIC}`, bodies.join('\n'))
  assert.deepEqual([res.status, res.body], [200, 'OK'])
  return bodies
}

async function createTopic(nsqd) {
  const res = await nsqd.http('POST', `/topic/create?topic=${TOPIC}`)
  assert.equal(res.status, 200, res.body)
}

function assertClean(stats, messageCount) {
  assert.equal(stats.message_count, messageCount, JSON.stringify(stats))
  assert.equal(stats.requeue_count, 0, JSON.stringify(stats))
  assert.equal(stats.timeout_count, 0, JSON.stringify(stats))
}

function assertExactlyOnce(consumer, bodies) {
  assert.deepEqual(consumer.duplicates(), [], consumer.channel)
  assert.deepEqual([...consumer.seen.keys()].sort(), [...bodies].sort(), consumer.channel)
}

test(
  'Reader consumes from two nsqd found through two lookupds',
  {timeout: TEST_TIMEOUT_MS},
  () =>
    withCluster(async (cluster) => {
      const nsqds = [await cluster.addNsqd(), await cluster.addNsqd()]
      for (const nsqd of nsqds) await createTopic(nsqd)
      await cluster.waitListed(nsqds)

      const consumer = new Consumer(cluster, 'c')
      try {
        await consumer.waitConnected(nsqds)
        // SUB creates the channel on each nsqd, which must REGISTER it too.
        await waitUntil(
          async () => {
            const answers = await Promise.all(cluster.lookupds.map((l) => l.lookup(TOPIC)))
            return answers.every((a) => JSON.stringify(a.channels) === '["c"]')
          },
          10000,
          'channel c to be registered with both lookupds',
          100
        )
        const bodies = [
          ...(await publish(nsqds[0], 'first', 150)),
          ...(await publish(nsqds[1], 'second', 150)),
        ]
        await consumer.waitReceived(bodies)
        for (const nsqd of nsqds) assertClean(await nsqd.waitDrained(TOPIC, 'c'), 150)
        assertExactlyOnce(consumer, bodies)
        assert.deepEqual(consumer.errors, [])
      } finally {
        consumer.close()
      }
    })
)

test(
  'nsqd started later is discovered and every channel gets its first messages',
  {timeout: TEST_TIMEOUT_MS},
  () =>
    withCluster(async (cluster) => {
      // Two Readers on different channels watch the topic. The late nsqd gets
      // its first messages before any Reader connects to it, so both channels
      // receive them only if nsqd pre-creates the channels lookupd knows when
      // the topic is born (nsqd's /channels query).
      const early = [await cluster.addNsqd(), await cluster.addNsqd()]
      for (const nsqd of early) await createTopic(nsqd)
      await cluster.waitListed(early)

      const consumers = [new Consumer(cluster, 'c1'), new Consumer(cluster, 'c2')]
      try {
        for (const consumer of consumers) await consumer.waitConnected(early)
        const bodies = [
          ...(await publish(early[0], 'early0', 50)),
          ...(await publish(early[1], 'early1', 50)),
        ]
        for (const consumer of consumers) await consumer.waitReceived(bodies)

        const late = await cluster.addNsqd()
        // Publish only once the late nsqd has IDENTIFYed with the lookupds, so
        // it can ask them which channels the topic has.
        await cluster.waitKnown(late)
        bodies.push(...(await publish(late, 'late-backlog', 50)))
        for (const channel of ['c1', 'c2']) {
          assert.notEqual(
            await late.channelStats(TOPIC, channel),
            null,
            `the late nsqd did not pre-create channel ${channel} from lookupd`
          )
        }
        await cluster.waitListed([...early, late])
        for (const consumer of consumers) await consumer.waitConnected([...early, late])
        bodies.push(...(await publish(late, 'late-live', 50)))
        bodies.push(...(await publish(early[0], 'early0-again', 20)))
        for (const consumer of consumers) await consumer.waitReceived(bodies)

        for (const channel of ['c1', 'c2']) {
          for (const nsqd of early) await nsqd.waitDrained(TOPIC, channel)
          assertClean(await late.waitDrained(TOPIC, channel), 100)
        }
        for (const consumer of consumers) {
          assertExactlyOnce(consumer, bodies)
          assert.deepEqual(consumer.errors, [], consumer.channel)
        }
      } finally {
        for (const consumer of consumers) consumer.close()
      }
    })
)

test(
  'Reader carries on after an nsqd is killed, which leaves /lookup at once',
  {timeout: TEST_TIMEOUT_MS},
  () =>
    withCluster(async (cluster) => {
      const nsqds = []
      for (let i = 0; i < 3; i++) nsqds.push(await cluster.addNsqd())
      const victim = nsqds[2]
      const survivors = nsqds.slice(0, 2)
      for (const nsqd of nsqds) await createTopic(nsqd)
      await cluster.waitListed(nsqds)

      const consumer = new Consumer(cluster, 'c')
      try {
        await consumer.waitConnected(nsqds)
        const bodies = []
        for (const [index, nsqd] of nsqds.entries()) {
          bodies.push(...(await publish(nsqd, `before-${index}`, 40)))
        }
        await consumer.waitReceived(bodies)
        await victim.waitDrained(TOPIC, 'c')
        assert.deepEqual(consumer.errors, [])

        await victim.kill()
        // The lookupd connection closes with the process, which drops its
        // registrations without waiting for any timeout.
        await cluster.waitListed(survivors, 5000)
        await consumer.waitConnected(survivors)
        for (const [index, nsqd] of survivors.entries()) {
          bodies.push(...(await publish(nsqd, `after-${index}`, 60)))
        }
        await consumer.waitReceived(bodies)
        for (const nsqd of survivors) assertClean(await nsqd.waitDrained(TOPIC, 'c'), 100)
        assertExactlyOnce(consumer, bodies)
        // Losing the victim may surface as a socket error, nothing else may.
        const unexpected = consumer.errors.filter((e) => !CONNECTION_ERRORS.has(e.code))
        assert.deepEqual(unexpected, [])
      } finally {
        consumer.close()
      }
    })
)
