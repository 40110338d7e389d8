// Starts nsqlookupd, two nsqd and nsqadmin from the release binaries on free ports, with a tiny TCP
// consumer and HTTP publisher, for the browser tests.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../../..');
const target = process.env.CARGO_TARGET_DIR || path.join(root, 'target');
export const screenshotDir = path.join(target, 'nsqadmin-screenshots');
const bin = (name, env) => process.env[env] || path.join(target, 'release', name);

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// waitFor: retries `fn` until it returns a truthy value, or throws after `ms`.
export async function waitFor(fn, ms = 10000, what = 'condition') {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

export async function getJson(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  const body = await res.json();
  return body && body.data && !body.topics ? body.data : body;
}

export async function post(url, body = '') {
  const res = await fetch(url, { method: 'POST', body });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${await res.text()}`);
}

export class Cluster {
  constructor() {
    this.procs = [];
    this.dirs = [];
    this.sockets = [];
  }

  start(name, env, args) {
    const p = spawn(bin(name, env), args, { stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr.on('data', () => {});
    this.procs.push(p);
    return p;
  }

  async up() {
    this.lookupTcp = await freePort();
    this.lookupHttp = await freePort();
    this.start('nsqlookupd', 'NSQLOOKUPD_BIN', [
      `--tcp-address=127.0.0.1:${this.lookupTcp}`,
      `--http-address=127.0.0.1:${this.lookupHttp}`,
    ]);
    this.nsqds = [];
    for (let i = 0; i < 2; i++) {
      const tcp = await freePort();
      const http = await freePort();
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsqadmin-ui-'));
      this.dirs.push(dir);
      this.start('nsqd', 'NSQD_BIN', [
        `--tcp-address=127.0.0.1:${tcp}`,
        `--http-address=127.0.0.1:${http}`,
        `--lookupd-tcp-address=127.0.0.1:${this.lookupTcp}`,
        '--broadcast-address=127.0.0.1',
        `--data-path=${dir}`,
      ]);
      this.nsqds.push({ tcp, http, url: `http://127.0.0.1:${http}` });
    }
    this.admin = await this.startAdmin([]);
    this.adminBase = await this.startAdmin(['--base-path=/admin']);
    for (const n of this.nsqds) await waitFor(() => fetch(`${n.url}/ping`).then((r) => r.ok), 10000, 'nsqd');
    await waitFor(() => fetch(`${this.admin}/ping`).then((r) => r.ok), 10000, 'nsqadmin');
    await waitFor(() => fetch(`${this.adminBase}/admin/ping`).then((r) => r.ok), 10000, 'nsqadmin /admin');
  }

  async startAdmin(extra) {
    const port = await freePort();
    this.start('nsqadmin', 'NSQADMIN_BIN', [
      `--http-address=127.0.0.1:${port}`,
      `--lookupd-http-address=127.0.0.1:${this.lookupHttp}`,
      ...extra,
    ]);
    return `http://127.0.0.1:${port}`;
  }

  lookupd() {
    return `http://127.0.0.1:${this.lookupHttp}`;
  }

  // nsqdChannel: the channel's stats on every nsqd that has it.
  async nsqdChannel(topic, channel) {
    const out = [];
    for (const n of this.nsqds) {
      const s = await getJson(`${n.url}/stats?format=json&topic=${topic}`);
      for (const t of s.topics || []) {
        if (t.topic_name !== topic) continue;
        for (const c of t.channels || []) if (c.channel_name === channel) out.push(c);
      }
    }
    return out;
  }

  async nsqdTopic(topic) {
    const out = [];
    for (const n of this.nsqds) {
      const s = await getJson(`${n.url}/stats?format=json&topic=${topic}`);
      for (const t of s.topics || []) if (t.topic_name === topic) out.push(t);
    }
    return out;
  }

  // consume: subscribes to topic/channel on an nsqd over TCP and finishes every message.
  consume(nsqd, topic, channel, userAgent) {
    const sock = net.connect(nsqd.tcp, '127.0.0.1');
    this.sockets.push(sock);
    let buf = Buffer.alloc(0);
    sock.on('error', () => {});
    sock.on('connect', () => {
      const ident = Buffer.from(JSON.stringify({ user_agent: userAgent, feature_negotiation: false }));
      const size = Buffer.alloc(4);
      size.writeUInt32BE(ident.length);
      sock.write(Buffer.concat([Buffer.from('  V2IDENTIFY\n'), size, ident]));
      sock.write(`SUB ${topic} ${channel}\nRDY 50\n`);
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 8) {
        const size = buf.readUInt32BE(0);
        if (buf.length < 4 + size) break;
        const type = buf.readUInt32BE(4);
        const data = buf.subarray(8, 4 + size);
        buf = buf.subarray(4 + size);
        if (type === 0 && data.toString() === '_heartbeat_') sock.write('NOP\n');
        if (type === 2) sock.write(`FIN ${data.subarray(10, 26).toString()}\n`);
      }
    });
  }

  async down() {
    for (const s of this.sockets) s.destroy();
    for (const p of this.procs) p.kill('SIGTERM');
    await sleep(200);
    for (const p of this.procs) if (p.exitCode === null) p.kill('SIGKILL');
    for (const d of this.dirs) fs.rmSync(d, { recursive: true, force: true });
  }
}
