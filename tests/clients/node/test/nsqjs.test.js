'use strict'
// nsqjs 0.13.0 Reader and Writer against our nsqd: bulk delivery, REQ,
// msg-timeout redelivery and HTTP publishing. nsqjs negotiates features with a
// JSON IDENTIFY answer and treats every non-FIN/REQ/TOUCH error as fatal, so
// it checks different server behaviour than pynsq does.

const {test} = require('node:test')
const assert = require('node:assert/strict')
const nsq = require('nsqjs')

const {withNsqd, waitUntil, mpubBinaryBody} = require('../harness')

const TOTAL = 10000
const BATCH = 100
const TEST_TIMEOUT_MS = 60000
// nsqd may hold a message in the client's output buffer for up to the default
// output_buffer_timeout (250 ms) before it reaches the client, so a 1 s
// server-side wait can look up to 250 ms shorter from here.
const EARLIEST_1S_GAP_MS = 1000 - 250 - 50

// Connects a Writer and resolves once it can publish.
function connectWriter(nsqd) {
  const writer = new nsq.Writer('127.0.0.1', nsqd.tcpPort)
  const errors = []
  writer.on('error', (err) => errors.push(err))
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('writer not ready in 10s')), 10000)
    writer.once('ready', () => {
      clearTimeout(timer)
      resolve()
    })
  })
  writer.connect()
  return ready.then(() => ({writer, errors}))
}

function publish(writer, topic, msgs) {
  return new Promise((resolve, reject) => {
    writer.publish(topic, msgs, (err) => (err ? reject(err) : resolve()))
  })
}

// Connects a Reader and resolves once its nsqd connection is up.
function connectReader(nsqd, topic, channel, options, onMessage) {
  const reader = new nsq.Reader(topic, channel, {
    nsqdTCPAddresses: [nsqd.tcpAddress],
    ...options,
  })
  const errors = []
  reader.on('error', (err) => errors.push(err))
  reader.on('message', onMessage)
  const connected = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('reader not connected in 10s')), 10000)
    reader.once('nsqd_connected', () => {
      clearTimeout(timer)
      resolve()
    })
  })
  reader.connect()
  return connected.then(() => ({reader, errors}))
}

test('Writer and Reader move 10,000 messages exactly once', {timeout: TEST_TIMEOUT_MS}, () =>
  withNsqd([], async (nsqd) => {
    const topic = 'bulk_js'
    const channel = 'consumer'
    const bodies = []
    for (let i = 0; i < TOTAL; i++) bodies.push(`msg-${String(i).padStart(5, '0')}`)
    const seen = new Map()

    const {reader, errors: readerErrors} = await connectReader(
      nsqd,
      topic,
      channel,
      {maxInFlight: 200},
      (msg) => {
        const body = msg.body.toString()
        seen.set(body, (seen.get(body) || 0) + 1)
        msg.finish()
      }
    )
    const {writer, errors: writerErrors} = await connectWriter(nsqd)

    // Alternate: one batch as single PUBs, the next as one MPUB.
    const pending = []
    for (let start = 0; start < TOTAL; start += BATCH) {
      const batch = bodies.slice(start, start + BATCH)
      if ((start / BATCH) % 2 === 0) {
        for (const body of batch) pending.push(publish(writer, topic, body))
      } else {
        pending.push(publish(writer, topic, batch))
      }
    }
    await Promise.all(pending)

    await waitUntil(() => seen.size === TOTAL, 30000, 'all messages consumed')
    const stats = await nsqd.waitDrained(topic, channel)
    reader.close()
    writer.close()

    const duplicates = [...seen].filter(([, n]) => n !== 1)
    assert.deepEqual(duplicates, [])
    assert.deepEqual([...seen.keys()].sort(), bodies)
    assert.equal(stats.message_count, TOTAL)
    assert.equal(stats.requeue_count, 0)
    assert.equal(stats.timeout_count, 0)
    assert.deepEqual(readerErrors, [])
    assert.deepEqual(writerErrors, [])
  })
)

test('REQ redelivers with attempts 2, with and without delay', {timeout: TEST_TIMEOUT_MS}, () =>
  withNsqd([], async (nsqd) => {
    const topic = 'requeue_js'
    const channel = 'c'
    const deliveries = {now: [], later: []}

    const {reader, errors} = await connectReader(nsqd, topic, channel, {maxInFlight: 5}, (msg) => {
      const body = msg.body.toString()
      deliveries[body].push({attempts: msg.attempts, at: Date.now()})
      if (msg.attempts === 1) {
        msg.requeue(body === 'later' ? 1000 : 0, false)
      } else {
        msg.finish()
      }
    })
    const {writer} = await connectWriter(nsqd)
    await publish(writer, topic, 'now')
    await publish(writer, topic, 'later')

    await waitUntil(
      () => deliveries.now.length >= 2 && deliveries.later.length >= 2,
      20000,
      'both redeliveries'
    )
    const stats = await nsqd.waitDrained(topic, channel)
    reader.close()
    writer.close()

    assert.deepEqual(
      deliveries.now.map((d) => d.attempts),
      [1, 2]
    )
    assert.deepEqual(
      deliveries.later.map((d) => d.attempts),
      [1, 2]
    )
    const gap = deliveries.later[1].at - deliveries.later[0].at
    assert.ok(gap >= EARLIEST_1S_GAP_MS, `REQ 1000 ms came back after ${gap} ms`)
    assert.equal(stats.requeue_count, 2)
    assert.deepEqual(errors, [])
  })
)

for (const how of ['flag', 'identify']) {
  test(`an unanswered message times out and returns (${how})`, {timeout: TEST_TIMEOUT_MS}, () =>
    withNsqd(how === 'flag' ? ['--msg-timeout=1s'] : [], async (nsqd) => {
      const topic = 'timeouts_js'
      const channel = 'c'
      const deliveries = []
      const options = {maxInFlight: 5}
      if (how === 'identify') options.messageTimeout = 1000

      const {reader, errors} = await connectReader(nsqd, topic, channel, options, (msg) => {
        deliveries.push({attempts: msg.attempts, at: Date.now()})
        // The first delivery is never answered, so only msg-timeout frees it.
        if (msg.attempts > 1) msg.finish()
      })
      const {writer} = await connectWriter(nsqd)
      await publish(writer, topic, 'slow')

      await waitUntil(() => deliveries.length >= 2, 15000, 'redelivery after timeout')
      const stats = await nsqd.waitDrained(topic, channel)
      reader.close()
      writer.close()

      assert.deepEqual(
        deliveries.map((d) => d.attempts),
        [1, 2]
      )
      const gap = deliveries[1].at - deliveries[0].at
      assert.ok(
        gap >= EARLIEST_1S_GAP_MS && gap <= 10000,
        `redelivered after ${gap} ms, expected about 1 s`
      )
      assert.equal(stats.timeout_count, 1)
      assert.deepEqual(errors, [])
    })
  )
}

test('HTTP /pub and /mpub (text and binary) feed an nsqjs Reader', {timeout: TEST_TIMEOUT_MS}, () =>
  withNsqd([], async (nsqd) => {
    const topic = 'http_js'
    const channel = 'reader'
    const single = Array.from({length: 5}, (_, i) => `single-${i}`)
    const textLines = Array.from({length: 20}, (_, i) => `text-${i}`)
    const binary = Array.from({length: 20}, (_, i) => Buffer.from(`bin-${i}\nsecond line`))

    for (const body of single) {
      const res = await nsqd.http('POST', `/pub?topic=${topic}`, body)
      assert.equal(res.status, 200)
      assert.equal(res.body, 'OK')
      assert.equal(res.headers.get('x-nsq-content-type'), 'nsq; version=1.0')
    }
    let res = await nsqd.http('POST', `/mpub?topic=${topic}`, textLines.join('\n') + '\n')
    assert.equal(res.status, 200)
    assert.equal(res.body, 'OK')
    res = await nsqd.http('POST', `/mpub?topic=${topic}&binary=true`, mpubBinaryBody(binary))
    assert.equal(res.status, 200)
    assert.equal(res.body, 'OK')

    const expected = [...single, ...textLines, ...binary.map((b) => b.toString())].sort()
    const received = []
    // The channel appears only now; the topic held the messages until then.
    const {reader, errors} = await connectReader(nsqd, topic, channel, {maxInFlight: 10}, (msg) => {
      received.push(msg.body.toString())
      msg.finish()
    })
    await waitUntil(() => received.length >= expected.length, 20000, 'all messages')
    await nsqd.waitDrained(topic, channel)
    reader.close()

    assert.deepEqual(received.sort(), expected)
    assert.deepEqual(errors, [])
  })
)
