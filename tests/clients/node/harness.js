'use strict'
// Starts our nsqd binary for the nsqjs suite and offers small async helpers.
// Each test gets its own nsqd on free loopback ports with a temporary data
// dir, so the tests never share state and never touch a developer's daemon.

const {spawn} = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..')

function nsqdBinary() {
  if (process.env.NSQD_BIN) {
    if (!fs.existsSync(process.env.NSQD_BIN)) {
      throw new Error(`NSQD_BIN=${process.env.NSQD_BIN} does not exist`)
    }
    return process.env.NSQD_BIN
  }
  for (const profile of ['release', 'debug']) {
    const candidate = path.join(REPO_ROOT, 'target', profile, 'nsqd')
    if (fs.existsSync(candidate)) return candidate
  }
  throw new Error(
    'no nsqd binary: build it with `cargo build --release -p nsqd` or set NSQD_BIN'
  )
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address()
      server.close(() => resolve(port))
    })
  })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Polls predicate (sync or async) until it is truthy or the timeout passes.
async function waitUntil(predicate, timeoutMs, what, intervalMs = 10) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await predicate()
    if (value) return value
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`)
    }
    await sleep(intervalMs)
  }
}

class Nsqd {
  constructor(extraArgs = []) {
    this.extraArgs = extraArgs
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsqjs-suite-'))
    this.log = ''
    this.proc = null
  }

  get tcpAddress() {
    return `127.0.0.1:${this.tcpPort}`
  }

  get httpUrl() {
    return `http://127.0.0.1:${this.httpPort}`
  }

  async start() {
    let lastError
    for (let attempt = 0; attempt < 3; attempt++) {
      this.tcpPort = await freePort()
      do {
        this.httpPort = await freePort()
      } while (this.httpPort === this.tcpPort)
      try {
        await this.spawnAndWait()
        return this
      } catch (err) {
        await this.stop({keepData: true})
        // Only a daemon that quit (say, a port taken meanwhile) is retried; one
        // that stays up without answering is a bug to report at once.
        if (!err.exited) throw err
        lastError = err
      }
    }
    throw new Error(`nsqd did not start: ${lastError.message}`)
  }

  async spawnAndWait() {
    const args = [
      `--tcp-address=127.0.0.1:${this.tcpPort}`,
      `--http-address=127.0.0.1:${this.httpPort}`,
      '--broadcast-address=127.0.0.1',
      `--data-path=${this.dataDir}`,
      // NSQD_EXTRA_ARGS runs the whole suite under other settings (scripts/test
      // repeats it with --mem-queue-size=0); a test's own flags come last and win.
      ...(process.env.NSQD_EXTRA_ARGS || '').split(/\s+/).filter(Boolean),
      ...this.extraArgs,
    ]
    const proc = spawn(nsqdBinary(), args, {stdio: ['ignore', 'pipe', 'pipe']})
    this.proc = proc
    const append = (chunk) => {
      this.log = (this.log + chunk.toString()).slice(-8000)
    }
    proc.stdout.on('data', append)
    proc.stderr.on('data', append)
    let exited = null
    proc.on('exit', (code, signal) => {
      exited = {code, signal}
    })
    await waitUntil(
      async () => {
        if (exited) {
          const err = new Error(`nsqd exited (${JSON.stringify(exited)}): ${this.log}`)
          err.exited = true
          throw err
        }
        return this.answers()
      },
      10000,
      'nsqd to answer /ping',
      50
    )
  }

  async answers() {
    try {
      const res = await fetch(`${this.httpUrl}/ping`, {
        signal: AbortSignal.timeout(1000),
      })
      return res.status === 200
    } catch (err) {
      return false
    }
  }

  async stop({keepData = false} = {}) {
    const proc = this.proc
    this.proc = null
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((resolve) => proc.once('exit', resolve))
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10000)
      await exited
      clearTimeout(timer)
    }
    if (!keepData) fs.rmSync(this.dataDir, {recursive: true, force: true})
  }

  async http(method, urlPath, body) {
    const res = await fetch(`${this.httpUrl}${urlPath}`, {
      method,
      body,
      signal: AbortSignal.timeout(10000),
    })
    return {status: res.status, headers: res.headers, body: await res.text()}
  }

  async channelStats(topic, channel) {
    const res = await this.http(
      'GET',
      `/stats?format=json&include_mem=false&topic=${encodeURIComponent(topic)}`
    )
    const stats = JSON.parse(res.body)
    for (const t of stats.topics || []) {
      if (t.topic_name !== topic) continue
      for (const c of t.channels) {
        if (c.channel_name === channel) return c
      }
    }
    return null
  }

  // Waits until a channel has nothing queued, in flight or deferred.
  async waitDrained(topic, channel, timeoutMs = 20000) {
    let last = null
    await waitUntil(
      async () => {
        last = await this.channelStats(topic, channel)
        return (
          last !== null &&
          last.depth === 0 &&
          last.in_flight_count === 0 &&
          last.deferred_count === 0
        )
      },
      timeoutMs,
      `${topic}/${channel} to drain`,
      50
    )
    return last
  }
}

// Runs fn with a fresh nsqd, adds the daemon's log to any failure, and always
// stops the daemon afterwards.
async function withNsqd(extraArgs, fn) {
  const daemon = new Nsqd(extraArgs)
  await daemon.start()
  try {
    return await fn(daemon)
  } catch (err) {
    err.message += `\n--- nsqd log ---\n${daemon.log}`
    throw err
  } finally {
    await daemon.stop()
  }
}

// Encodes messages in the binary /mpub body format.
function mpubBinaryBody(messages) {
  const parts = []
  const count = Buffer.alloc(4)
  count.writeInt32BE(messages.length)
  parts.push(count)
  for (const msg of messages) {
    const size = Buffer.alloc(4)
    size.writeInt32BE(msg.length)
    parts.push(size, msg)
  }
  return Buffer.concat(parts)
}

module.exports = {Nsqd, withNsqd, waitUntil, sleep, mpubBinaryBody}
