// Drives nsqadmin's graphite mode in headless Chromium: a fake graphite answers /render with canned
// datapoints and records what it was asked for; nsqadmin runs once with --graphite-url (the page fetches
// graphite itself) and once more with --proxy-graphite (the page fetches nsqadmin's /render). The topic
// page must draw both charts from graphite, with targets named as Go's nsqadmin names them.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { Cluster, getJson, post, screenshotDir, waitFor } from '../lib/cluster.mjs';

const cluster = new Cluster();
let browser;
let graphite;
let graphiteUrl;
// Every /render request graphite saw: its targets, query and user agent.
const asked = [];

// The series graphite answers: a rising then falling line, so the chart is not flat.
function series(target) {
  const now = Math.floor(Date.now() / 1000);
  const datapoints = [];
  for (let i = 0; i < 20; i++) datapoints.push([i === 5 ? null : 60 + 40 * Math.sin(i / 3), now - (20 - i) * 60]);
  return [{ target, datapoints }];
}

function startGraphite() {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      const url = new URL(req.url, 'http://graphite');
      res.setHeader('Access-Control-Allow-Origin', '*');
      if (url.pathname !== '/render') {
        res.writeHead(404);
        res.end();
        return;
      }
      const targets = url.searchParams.getAll('target');
      asked.push({ targets, query: url.searchParams, agent: req.headers['user-agent'] || '' });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      // nsqadmin's /api/graphite asks for the last interval only; it gets one point of 120 per interval.
      if (url.searchParams.get('until') === '-60sec') {
        res.end(JSON.stringify([{ target: targets[0], datapoints: [[120, 0]] }]));
      } else {
        res.end(JSON.stringify(series(targets[0])));
      }
    });
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

before(async () => {
  fs.mkdirSync(screenshotDir, { recursive: true });
  graphite = await startGraphite();
  graphiteUrl = `http://127.0.0.1:${graphite.address().port}`;
  await cluster.up();
  for (const n of cluster.nsqds) await post(`${n.url}/topic/create?topic=alpha`);
  await post(`${cluster.nsqds[0].url}/channel/create?topic=alpha&channel=beta`);
  await waitFor(async () => (await getJson(`${cluster.lookupd()}/topics`)).topics.includes('alpha'), 10000,
    'lookupd to know alpha');
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium' });
});

after(async () => {
  if (browser) await browser.close();
  await cluster.down();
  if (graphite) graphite.close();
});

// startAdmin: one more nsqadmin of the cluster with `extra` flags, once it answers /ping.
async function startAdmin(extra, base = '') {
  const url = await cluster.startAdmin(extra);
  await waitFor(() => fetch(`${url}${base}/ping`).then((r) => r.ok), 10000, 'nsqadmin');
  return url;
}

// chartPixels: how many pixels of a canvas are drawn in the line colours (not background or grid).
async function chartPixels(page, selector) {
  return page.$eval(selector, (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
      if ((b > 120 && r < 120) || (r > 180 && g < 140 && b < 100)) n++;
    }
    return n;
  });
}

// openTopic: loads alpha's page, waits for both charts and the current rate, and screenshots it.
async function openTopic(admin, shot) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  const fetched = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => fetched.push(r.url()));
  await page.goto(`${admin}/topics/alpha`);
  await page.waitForSelector('#topic-charts[data-source=graphite]');
  await waitFor(async () => (await chartPixels(page, '.rate-chart')) > 50, 6000, 'rate chart drawn');
  await waitFor(async () => (await chartPixels(page, '.depth-chart')) > 50, 6000, 'depth chart drawn');
  await page.waitForSelector('.rate-now:has-text("now 2.00")');
  await page.screenshot({ path: path.join(screenshotDir, shot), fullPage: true });
  assert.deepEqual(errors, [], 'console errors');
  await page.close();
  return fetched;
}

// Go's UI names: prefix nsq.%s with '*' for the host, then the counter or gauge format around the key.
const rateTarget = 'sumSeries(stats.counters.nsq.*.topic.alpha.message_count.count)';
const rateChart = `summarize(scale(${rateTarget},${1 / 60}),"60sec","avg")`;
const depthChart = 'summarize(sumSeries(stats.gauges.nsq.*.topic.alpha.depth),"60sec","avg")';

test('with --graphite-url the topic page charts graphite fetched directly', async () => {
  const admin = await startAdmin([`--graphite-url=${graphiteUrl}`]);
  asked.length = 0;
  const fetched = await openTopic(admin, '30-graphite-topic.png');
  const browserAsked = asked.filter((a) => !a.agent.startsWith('nsqadmin/'));
  const targets = browserAsked.flatMap((a) => a.targets);
  assert.ok(targets.includes(rateChart), JSON.stringify(targets));
  assert.ok(targets.includes(depthChart), JSON.stringify(targets));
  for (const a of browserAsked) {
    assert.equal(a.query.get('format'), 'json');
    assert.equal(a.query.get('from'), '-2h');
  }
  assert.ok(fetched.some((u) => u.startsWith(`${graphiteUrl}/render?`)), 'the page asked graphite itself');
  // The current rate goes through nsqadmin's /api/graphite: the last full interval, divided by it.
  const server = asked.filter((a) => a.agent.startsWith('nsqadmin/'));
  assert.ok(server.length >= 1, 'nsqadmin asked graphite for the rate');
  assert.deepEqual(server[0].targets, [rateTarget]);
  assert.equal(server[0].query.get('from'), '-120sec');
  assert.equal(server[0].query.get('until'), '-60sec');
  const rate = await getJson(`${admin}/api/graphite?metric=rate&target=${encodeURIComponent(rateTarget)}`);
  assert.equal(rate.rate, '2.00');
  // Without --proxy-graphite there is no /render route.
  assert.equal((await fetch(`${admin}/render?target=x&format=json`)).status, 404);
});

test('with --proxy-graphite the page fetches graphite through nsqadmin /render', async () => {
  const admin = await startAdmin([`--graphite-url=${graphiteUrl}`, '--proxy-graphite', '--base-path=/admin'], '/admin');
  asked.length = 0;
  const fetched = await openTopic(`${admin}/admin`, '31-graphite-proxy-topic.png');
  assert.ok(fetched.some((u) => u.startsWith(`${admin}/admin/render?`)), 'the page asked nsqadmin /render');
  assert.ok(!fetched.some((u) => u.startsWith(graphiteUrl)), 'the page never asked graphite itself');
  const targets = asked.flatMap((a) => a.targets);
  assert.ok(targets.includes(rateChart), JSON.stringify(targets));
  assert.ok(targets.includes(depthChart), JSON.stringify(targets));
  const res = await fetch(`${admin}/admin/render?target=${encodeURIComponent(depthChart)}&format=json&from=-2h`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/json');
  const body = await res.json();
  assert.equal(body[0].target, depthChart);
  assert.equal(body[0].datapoints.length, 20);
});

test('the channel page builds channel targets', async () => {
  const admin = await startAdmin([`--graphite-url=${graphiteUrl}`, '--statsd-prefix=stats.%s.nsq']);
  asked.length = 0;
  const page = await browser.newPage();
  await page.goto(`${admin}/topics/alpha/beta`);
  await page.waitForSelector('#channel-charts[data-source=graphite]');
  await waitFor(async () => (await chartPixels(page, '.depth-chart')) > 50, 6000, 'channel depth chart');
  await page.close();
  const targets = asked.flatMap((a) => a.targets);
  assert.ok(targets.includes('summarize(sumSeries(stats.gauges.stats.*.nsq.topic.alpha.channel.beta.depth),"60sec","avg")'),
    JSON.stringify(targets));
});
