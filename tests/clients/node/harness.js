'use strict'
// Starts our nsqd and nsqlookupd binaries for the nsqjs suite and offers small
// async helpers. Each test gets its own daemons on free loopback ports with
// temporary data dirs, so the tests never share state and never touch a
// developer's daemon.

const {spawn} = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..')
// Test-only certificates made by tests/certs/generate.sh (see its README).
const CERTS_DIR = path.join(REPO_ROOT, 'tests', 'certs')

// The path of one test certificate or key file, e.g. certPath('ca.pem').
function certPath(name) {
  const file = path.join(CERTS_DIR, name)
  if (!fs.existsSync(file)) {
    throw new Error(`missing test certificate ${file}: run tests/certs/generate.sh`)
  }
  return file
}

// nsqd flags that give it the test server certificate, plus extra flags.
function serverTlsArgs(...extra) {
  return [`--tls-cert=${certPath('server.pem')}`, `--tls-key=${certPath('server.key')}`, ...extra]
}

// Returns the binary to test: $envVar, else the release build, else debug.
function binary(name, envVar) {
  const configured = process.env[envVar]
  if (configured) {
    if (!fs.existsSync(configured)) {
      throw new Error(`${envVar}=${configured} does not exist`)
    }
    return configured
  }
  for (const profile of ['release', 'debug']) {
    const candidate = path.join(REPO_ROOT, 'target', profile, name)
    if (fs.existsSync(candidate)) return candidate
  }
  throw new Error(
    `no ${name} binary: build it with \`cargo build --release -p ${name}\` or set ${envVar}`
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

// Every daemon process still running. If the test process ends without a
// test's cleanup (a timed-out test never reaches its finally), these are
// killed on the way out so no daemon outlives the suite.
const running = new Set()
process.on('exit', () => {
  for (const proc of running) proc.kill('SIGKILL')
})

// One daemon process on two free loopback ports (TCP and HTTP). Subclasses
// name the binary and build the command line; this class starts the process,
// keeps the tail of its output, waits until it answers, and stops, kills,
// freezes or thaws it.
class Daemon {
  constructor(name, extraArgs = []) {
    this.name = name
    this.extraArgs = extraArgs
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `nsqjs-suite-${name}-`))
    this.log = ''
    this.proc = null
  }

  get tcpAddress() {
    return `127.0.0.1:${this.tcpPort}`
  }

  get httpAddress() {
    return `127.0.0.1:${this.httpPort}`
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
      await this.chooseExtraPorts()
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
    throw new Error(`${this.name} did not start: ${lastError.message}`)
  }

  // Picks any ports beyond TCP and HTTP that a subclass listens on.
  async chooseExtraPorts() {}

  async spawnAndWait() {
    const proc = spawn(this.binary(), this.args(), {stdio: ['ignore', 'pipe', 'pipe']})
    this.proc = proc
    running.add(proc)
    proc.once('exit', () => running.delete(proc))
    // The child and its pipes must not keep the test process alive on their
    // own, or a test that never cleans up would hang the run instead of
    // letting the exit hook above kill the daemon.
    proc.unref()
    proc.stdout.unref()
    proc.stderr.unref()
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
          const err = new Error(`${this.name} exited (${JSON.stringify(exited)}): ${this.log}`)
          err.exited = true
          throw err
        }
        return this.answers()
      },
      10000,
      `${this.name} to answer /ping`,
      50
    )
  }

  // Up means /ping answers 200, or 403 TLS_REQUIRED from an nsqd started
  // with --tls-required=true (its plain HTTP port refuses everything else).
  async answers() {
    try {
      const res = await fetch(`${this.httpUrl}/ping`, {
        signal: AbortSignal.timeout(1000),
      })
      if (res.status === 200) return true
      if (res.status !== 403) return false
      const body = await res.json().catch(() => null)
      return body !== null && body.message === 'TLS_REQUIRED'
    } catch (err) {
      return false
    }
  }

  isRunning() {
    const proc = this.proc
    return proc !== null && proc.exitCode === null && proc.signalCode === null
  }

  async stop({keepData = false} = {}) {
    const proc = this.proc
    if (this.isRunning()) {
      const exited = new Promise((resolve) => proc.once('exit', resolve))
      // A frozen process would hold SIGTERM until thawed, so thaw it first.
      proc.kill('SIGCONT')
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10000)
      await exited
      clearTimeout(timer)
    }
    this.proc = null
    if (!keepData) fs.rmSync(this.dataDir, {recursive: true, force: true})
  }

  // Kills the process with SIGKILL, so it gets no chance to say goodbye.
  async kill() {
    const proc = this.proc
    if (this.isRunning()) {
      const exited = new Promise((resolve) => proc.once('exit', resolve))
      proc.kill('SIGKILL')
      // The child is unref'd, so this timer keeps the test alive until it exits.
      const timer = setTimeout(() => {}, 10000)
      await exited
      clearTimeout(timer)
    }
  }

  // Suspends the process (SIGSTOP): its sockets stay open but it goes silent.
  freeze() {
    this.proc.kill('SIGSTOP')
  }

  // Resumes a frozen process (SIGCONT).
  thaw() {
    if (this.isRunning()) this.proc.kill('SIGCONT')
  }

  async http(method, urlPath, body) {
    const res = await fetch(`${this.httpUrl}${urlPath}`, {
      method,
      body,
      signal: AbortSignal.timeout(10000),
    })
    return {status: res.status, headers: res.headers, body: await res.text()}
  }
}

class Nsqd extends Daemon {
  constructor(extraArgs = []) {
    super('nsqd', extraArgs)
  }

  binary() {
    return binary('nsqd', 'NSQD_BIN')
  }

  // nsqd given a certificate also listens on --https-address (default
  // 0.0.0.0:4152), so it gets a free loopback port of its own.
  listensHttps() {
    return this.extraArgs.some((arg) => arg.startsWith('--tls-cert'))
  }

  async chooseExtraPorts() {
    this.httpsPort = null
    if (!this.listensHttps()) return
    do {
      this.httpsPort = await freePort()
    } while (this.httpsPort === this.tcpPort || this.httpsPort === this.httpPort)
  }

  args() {
    const https = this.httpsPort ? [`--https-address=127.0.0.1:${this.httpsPort}`] : []
    return [
      `--tcp-address=127.0.0.1:${this.tcpPort}`,
      `--http-address=127.0.0.1:${this.httpPort}`,
      ...https,
      '--broadcast-address=127.0.0.1',
      `--data-path=${this.dataDir}`,
      // NSQD_EXTRA_ARGS runs the whole suite under other settings (scripts/test
      // repeats it with --mem-queue-size=0); a test's own flags come last and win.
      ...(process.env.NSQD_EXTRA_ARGS || '').split(/\s+/).filter(Boolean),
      ...this.extraArgs,
    ]
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

  // Every client entry in /stats, each tagged with role 'consumer' (under a
  // channel) or 'producer' (in the top-level producers list).
  async clients() {
    const res = await this.http('GET', '/stats?format=json&include_mem=false')
    const stats = JSON.parse(res.body)
    const found = []
    for (const t of stats.topics || []) {
      for (const c of t.channels) {
        for (const client of c.clients || []) found.push({...client, role: 'consumer'})
      }
    }
    for (const client of stats.producers || []) found.push({...client, role: 'producer'})
    return found
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

// One nsqlookupd process. Its data dir stays empty: nsqlookupd keeps
// everything in memory.
class Nsqlookupd extends Daemon {
  constructor(extraArgs = []) {
    super('nsqlookupd', extraArgs)
  }

  binary() {
    return binary('nsqlookupd', 'NSQLOOKUPD_BIN')
  }

  args() {
    return [
      `--tcp-address=127.0.0.1:${this.tcpPort}`,
      `--http-address=127.0.0.1:${this.httpPort}`,
      '--broadcast-address=127.0.0.1',
      ...this.extraArgs,
    ]
  }

  // Returns the /lookup answer for topic, or null on 404.
  async lookup(topic) {
    const res = await this.http('GET', `/lookup?topic=${encodeURIComponent(topic)}`)
    if (res.status === 404) return null
    if (res.status !== 200) {
      throw new Error(`/lookup answered ${res.status}: ${res.body}`)
    }
    return JSON.parse(res.body)
  }

  // The producers listed for topic as sorted "broadcast_address:tcp_port:http_port" keys.
  async producers(topic) {
    const answer = await this.lookup(topic)
    if (answer === null) return []
    return answer.producers
      .map((p) => `${p.broadcast_address}:${p.tcp_port}:${p.http_port}`)
      .sort()
  }
}

// How nsqlookupd should list an nsqd, in the form producers() returns.
function producerKey(nsqd) {
  return `127.0.0.1:${nsqd.tcpPort}:${nsqd.httpPort}`
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

module.exports = {
  certPath,
  serverTlsArgs,
  Nsqd,
  Nsqlookupd,
  producerKey,
  withNsqd,
  waitUntil,
  sleep,
  mpubBinaryBody,
}
