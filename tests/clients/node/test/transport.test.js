'use strict'
// nsqjs 0.13.0 over TLS, snappy and deflate against our nsqd. nsqjs upgrades
// with Node's own tls module, snappystream and zlib's raw deflate, so these
// check nsqd's transports against a second, independent client stack: every
// message must arrive exactly once and intact, and /stats must show what was
// negotiated.

const crypto = require('node:crypto')
const fs = require('node:fs')
const {test} = require('node:test')
const assert = require('node:assert/strict')
const nsq = require('nsqjs')

const {withNsqd, waitUntil, serverTlsArgs, certPath} = require('../harness')

const TEST_TIMEOUT_MS = 60000
const COUNT = 600

// COUNT distinct bodies: small compressible ones plus one large compressible
// and one large random body that span several snappy chunks and deflate blocks.
function sampleBodies(prefix) {
  const bodies = []
  for (let i = 0; i < COUNT - 2; i++) {
    bodies.push(Buffer.from(`${prefix}-${String(i).padStart(5, '0')}-${'payload '.repeat(i % 40)}`))
  }
  bodies.push(Buffer.from(`${prefix}-big-text-${'nsq compresses this line well. '.repeat(8000)}`))
  bodies.push(Buffer.concat([Buffer.from(`${prefix}-big-random-`), crypto.randomBytes(200000)]))
  return bodies
}

// Resolves once the client emits readyEvent; rejects on an error or after 10 s.
function whenReady(client, readyEvent, what, errors) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready in 10s: ${errors}`)), 10000)
    client.once(readyEvent, () => {
      clearTimeout(timer)
      resolve()
    })
    client.once('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`${what} failed: ${err && err.message}`))
    })
  })
}

function publish(writer, topic, msgs) {
  return new Promise((resolve, reject) => {
    writer.publish(topic, msgs, (err) => (err ? reject(err) : resolve()))
  })
}

// Publishes sampleBodies with an nsqjs Writer (half PUB, the rest MPUB of 50)
// and consumes them with an nsqjs Reader, both with the connection options
// given. Returns what arrived and the /stats client entries taken while both
// were still connected.
async function roundtrip(nsqd, topic, options) {
  const bodies = sampleBodies(topic)
  const seen = new Map()
  const readerErrors = []
  const writerErrors = []

  const reader = new nsq.Reader(topic, 'c', {
    nsqdTCPAddresses: [nsqd.tcpAddress],
    maxInFlight: 100,
    ...options,
  })
  reader.on('error', (err) => readerErrors.push(err))
  reader.on('message', (msg) => {
    const key = msg.body.toString('base64')
    seen.set(key, (seen.get(key) || 0) + 1)
    msg.finish()
  })
  const writer = new nsq.Writer('127.0.0.1', nsqd.tcpPort, options)
  writer.on('error', (err) => writerErrors.push(err))

  try {
    const readerReady = whenReady(reader, 'nsqd_connected', 'reader', readerErrors)
    reader.connect()
    await readerReady
    const writerReady = whenReady(writer, 'ready', 'writer', writerErrors)
    writer.connect()
    await writerReady

    const half = bodies.length / 2
    const pending = []
    for (const body of bodies.slice(0, half)) pending.push(publish(writer, topic, body))
    for (let start = half; start < bodies.length; start += 50) {
      pending.push(publish(writer, topic, bodies.slice(start, start + 50)))
    }
    await Promise.all(pending)

    await waitUntil(
      () => seen.size === bodies.length || readerErrors.length > 0,
      30000,
      'every message consumed'
    )
    assert.deepEqual(readerErrors, [])
    await nsqd.waitDrained(topic, 'c')
    const clients = await nsqd.clients()

    const expected = new Set(bodies.map((b) => b.toString('base64')))
    assert.equal(seen.size, expected.size)
    for (const key of seen.keys()) assert.ok(expected.has(key), 'an unknown body arrived')
    const duplicates = [...seen.values()].filter((n) => n !== 1)
    assert.deepEqual(duplicates, [])
    assert.deepEqual(writerErrors, [])
    return clients
  } finally {
    reader.close()
    writer.close()
  }
}

// The one /stats entry of the nsqjs consumer or producer.
function nsqjsClient(clients, role) {
  const matches = clients.filter((c) => c.role === role && c.user_agent.startsWith('nsqjs/'))
  assert.equal(matches.length, 1, JSON.stringify(clients))
  return matches[0]
}

const CA = () => fs.readFileSync(certPath('ca.pem'))

const CASES = [
  {
    name: 'TLS without verification',
    options: {tls: true, tlsVerification: false},
    expected: {tls: true, snappy: false, deflate: false},
  },
  {
    name: 'TLS verified against the test CA',
    options: () => ({tls: true, tlsVerification: true, ca: CA()}),
    expected: {tls: true, snappy: false, deflate: false},
  },
  {name: 'snappy', options: {snappy: true}, expected: {tls: false, snappy: true, deflate: false}},
  {
    name: 'deflate',
    options: {deflate: true, deflateLevel: 6},
    expected: {tls: false, snappy: false, deflate: true},
  },
  {
    name: 'TLS with snappy',
    options: () => ({tls: true, ca: CA(), snappy: true}),
    expected: {tls: true, snappy: true, deflate: false},
  },
  {
    name: 'TLS with deflate',
    options: () => ({tls: true, ca: CA(), deflate: true}),
    expected: {tls: true, snappy: false, deflate: true},
  },
]

for (const {name, options, expected} of CASES) {
  test(`nsqjs moves every message once with ${name}`, {timeout: TEST_TIMEOUT_MS}, () =>
    withNsqd(serverTlsArgs(), async (nsqd) => {
      const topic = `js_${name.replace(/[^a-z]+/gi, '_').toLowerCase()}`
      const clients = await roundtrip(
        nsqd,
        topic,
        typeof options === 'function' ? options() : options
      )
      for (const role of ['producer', 'consumer']) {
        const client = nsqjsClient(clients, role)
        const got = {tls: client.tls, snappy: client.snappy, deflate: client.deflate}
        assert.deepEqual(got, expected, `${role}: ${JSON.stringify(client)}`)
        if (expected.tls) {
          assert.ok(['TLS1.2', 'TLS1.3'].includes(client.tls_version), client.tls_version)
          assert.ok(client.tls_cipher_suite, 'empty tls_cipher_suite')
        } else {
          assert.equal(client.tls_version, '')
        }
      }
    })
  )
}

test('nsqjs with TLS refuses an nsqd certificate it cannot verify', {timeout: TEST_TIMEOUT_MS}, () =>
  withNsqd(serverTlsArgs(), async (nsqd) => {
    // Verification on, but no CA given: the test CA is not in Node's store.
    const writer = new nsq.Writer('127.0.0.1', nsqd.tcpPort, {tls: true, tlsVerification: true})
    const errors = []
    writer.on('error', (err) => errors.push(err))
    let ready = false
    writer.on('ready', () => {
      ready = true
    })
    writer.connect()
    await waitUntil(() => errors.length > 0 || ready, 10000, 'the writer to fail')
    writer.close()
    assert.equal(ready, false)
    assert.ok(errors.length > 0)
  })
)

test('nsqjs presents a client certificate to require-verify', {timeout: TEST_TIMEOUT_MS}, () =>
  withNsqd(
    serverTlsArgs(
      '--tls-client-auth-policy=require-verify',
      `--tls-root-ca-file=${certPath('ca.pem')}`,
      // The client auth policy makes TLS required on plain HTTP too; tcp-https
      // keeps /stats reachable for the harness.
      '--tls-required=tcp-https'
    ),
    async (nsqd) => {
      const clients = await roundtrip(nsqd, 'js_client_cert', {
        tls: true,
        ca: CA(),
        cert: fs.readFileSync(certPath('client.pem')),
        key: fs.readFileSync(certPath('client.key')),
      })
      for (const role of ['producer', 'consumer']) {
        assert.equal(nsqjsClient(clients, role).tls, true)
      }
    }
  )
)
