// Drives nsqadmin's web UI in headless Chromium against a live cluster: every page loads without console
// errors, shows live data, acts on nsqd, draws its charts, and works under --base-path. Screenshots of
// every page go to target/nsqadmin-screenshots/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { Cluster, getJson, post, screenshotDir, sleep, waitFor } from '../lib/cluster.mjs';

const cluster = new Cluster();
let browser;
let publisher;

before(async () => {
  fs.mkdirSync(screenshotDir, { recursive: true });
  await cluster.up();
  const [a, b] = cluster.nsqds;
  for (const n of [a, b]) {
    await post(`${n.url}/topic/create?topic=alpha`);
    await post(`${n.url}/topic/create?topic=gamma`);
    await post(`${n.url}/channel/create?topic=alpha&channel=beta`);
    await post(`${n.url}/pub?topic=alpha`, 'hello');
    await post(`${n.url}/channel/create?topic=gamma&channel=idle`);
    for (let i = 0; i < 5; i++) await post(`${n.url}/pub?topic=gamma`, `g${i}`);
  }
  cluster.consume(a, 'alpha', 'live', 'browser-test/1.0');
  let i = 0;
  publisher = setInterval(() => {
    post(`${cluster.nsqds[i++ % 2].url}/pub?topic=alpha`, `m${i}`).catch(() => {});
  }, 40);
  await waitFor(async () => {
    const t = await getJson(`${cluster.lookupd()}/topics`);
    return (t.topics || []).includes('alpha') && (t.topics || []).includes('gamma');
  }, 10000, 'lookupd to know the topics');
  await waitFor(async () => {
    const h = await getJson(`${cluster.admin}/api/history/alpha/live`);
    return h.points.length >= 2;
  }, 10000, 'two history points');
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium' });
});

after(async () => {
  clearInterval(publisher);
  if (browser) await browser.close();
  await cluster.down();
});

// open: loads a UI page, failing on any console error or page exception; `check` waits for content.
async function open(url, shot, check, { allowErrors = false } = {}) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('dialog', (d) => d.accept());
  await page.goto(url);
  await check(page);
  await page.screenshot({ path: path.join(screenshotDir, `${shot}.png`), fullPage: true });
  if (!allowErrors) assert.deepEqual(errors, [], `console errors on ${url}`);
  return page;
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

async function expectCharts(page) {
  await page.waitForSelector('.rate-chart');
  await waitFor(async () => (await chartPixels(page, '.rate-chart')) > 50, 6000, 'rate chart drawn');
  await waitFor(async () => (await chartPixels(page, '.depth-chart')) > 50, 6000, 'depth chart drawn');
}

test('topics page lists the live topics', async () => {
  const page = await open(`${cluster.admin}/`, '01-topics', (p) => p.waitForSelector('#topics >> text=alpha'));
  assert.match(await page.textContent('#topics'), /gamma/);
  await page.close();
});

test('topic page shows per-node rows, channels and charts', async () => {
  const page = await open(`${cluster.admin}/topics/alpha`, '02-topic', async (p) => {
    await p.waitForSelector('#topic-nodes');
    await expectCharts(p);
  });
  const nodes = await page.textContent('#topic-nodes');
  for (const n of cluster.nsqds) assert.ok(nodes.includes(`127.0.0.1:${n.http}`), nodes);
  const channels = await page.textContent('#channels');
  assert.match(channels, /beta/);
  assert.match(channels, /live/);
  await page.close();
});

test('channel page shows clients and charts', async () => {
  const page = await open(`${cluster.admin}/topics/alpha/live`, '03-channel', async (p) => {
    await p.waitForSelector('#clients >> text=browser-test/1.0');
    await expectCharts(p);
  });
  assert.match(await page.textContent('#channel-nodes'), /Total/);
  await page.close();
});

test('pause and unpause from the channel page reach nsqd', async () => {
  const page = await open(`${cluster.admin}/topics/gamma/idle`, '04-channel-gamma', (p) =>
    p.waitForSelector('button[data-act=pause]'));
  await page.click('button[data-act=pause]');
  await waitFor(async () => {
    const cs = await cluster.nsqdChannel('gamma', 'idle');
    return cs.length === 2 && cs.every((c) => c.paused);
  }, 5000, 'channel paused on both nsqd');
  await page.waitForSelector('button[data-act=unpause]');
  await page.screenshot({ path: path.join(screenshotDir, '05-channel-paused.png'), fullPage: true });
  await page.click('button[data-act=unpause]');
  await waitFor(async () => (await cluster.nsqdChannel('gamma', 'idle')).every((c) => !c.paused), 5000, 'unpaused');
  await page.close();
});

test('pausing a topic and emptying a channel reach nsqd', async () => {
  const before = await cluster.nsqdChannel('gamma', 'idle');
  assert.ok(before.reduce((s, c) => s + c.depth, 0) >= 10, JSON.stringify(before));
  const page = await open(`${cluster.admin}/topics/gamma/idle`, '06-channel-before-empty', (p) =>
    p.waitForSelector('button[data-act=empty]'));
  await page.click('button[data-act=empty]');
  await waitFor(async () => (await cluster.nsqdChannel('gamma', 'idle')).every((c) => c.depth === 0), 5000, 'emptied');
  await page.close();
  const topic = await open(`${cluster.admin}/topics/gamma`, '07-topic-gamma', (p) =>
    p.waitForSelector('button[data-act=pause]'));
  await topic.click('button[data-act=pause]');
  await waitFor(async () => (await cluster.nsqdTopic('gamma')).every((t) => t.paused), 5000, 'topic paused');
  await topic.waitForSelector('h1 .badge');
  await topic.screenshot({ path: path.join(screenshotDir, '08-topic-paused.png'), fullPage: true });
  await topic.click('button[data-act=unpause]');
  await waitFor(async () => (await cluster.nsqdTopic('gamma')).every((t) => !t.paused), 5000, 'topic unpaused');
  await topic.close();
});

test('nodes and node pages show both nsqd and their topics', async () => {
  const page = await open(`${cluster.admin}/nodes`, '09-nodes', (p) => p.waitForSelector('#nodes'));
  const rows = await page.$$('#nodes tr');
  assert.equal(rows.length, 3);
  await page.click(`#nodes a[href$="%3A${cluster.nsqds[0].http}"]`);
  await page.waitForSelector('#node-topics >> text=alpha');
  await page.screenshot({ path: path.join(screenshotDir, '10-node.png'), fullPage: true });
  assert.match(await page.textContent('#node-topics'), /live/);
  await page.close();
});

test('counter moves while messages flow', async () => {
  const page = await open(`${cluster.admin}/counter`, '11-counter', (p) => p.waitForSelector('#counter[data-count]'));
  const first = Number(await page.getAttribute('#counter', 'data-count'));
  await waitFor(async () => Number(await page.getAttribute('#counter', 'data-count')) > first, 5000, 'counter to move');
  await page.waitForSelector('#counter-rate:not(:empty)');
  await page.screenshot({ path: path.join(screenshotDir, '11-counter.png'), fullPage: true });
  await page.close();
});

test('lookup page creates and deletes a topic and channel', async () => {
  const page = await open(`${cluster.admin}/lookup`, '12-lookup', (p) => p.waitForSelector('#lookup-topics'));
  await page.fill('#create input[name=topic]', 'delta');
  await page.fill('#create input[name=channel]', 'd1');
  await page.click('#create button');
  await waitFor(async () => (await getJson(`${cluster.lookupd()}/topics`)).topics.includes('delta'), 5000, 'delta created');
  await page.waitForSelector('#inactive >> text=delta');
  await page.screenshot({ path: path.join(screenshotDir, '13-lookup-created.png'), fullPage: true });
  await page.click('button[data-del-topic=delta]:not([data-del-channel])');
  await waitFor(async () => !(await getJson(`${cluster.lookupd()}/topics`)).topics.includes('delta'), 5000, 'delta deleted');
  await page.close();
});

test('API errors are shown on the page, not a blank page', async () => {
  const page = await open(`${cluster.admin}/nodes/127.0.0.1:1`, '14-error', (p) => p.waitForSelector('#error:not([hidden])'),
    { allowErrors: true });
  assert.match(await page.textContent('#error'), /NODE_NOT_FOUND/);
  await page.close();
});

test('everything works under --base-path=/admin', async () => {
  const base = `${cluster.adminBase}/admin`;
  const page = await open(`${base}/`, '15-base-topics', (p) => p.waitForSelector('#topics >> text=alpha'));
  assert.equal(await page.getAttribute('#topics a', 'href'), '/admin/topics/alpha');
  await page.click('#topics >> text=alpha');
  await page.waitForSelector('#topic-nodes');
  assert.equal(new URL(page.url()).pathname, '/admin/topics/alpha');
  await waitFor(async () => (await chartPixels(page, '.rate-chart')) > 50, 8000, 'chart under /admin');
  await page.screenshot({ path: path.join(screenshotDir, '16-base-topic.png'), fullPage: true });
  await page.close();
  for (const [route, sel, shot] of [
    ['/topics/alpha/live', '#clients', '17-base-channel'],
    ['/nodes', '#nodes', '18-base-nodes'],
    ['/counter', '#counter[data-count]', '19-base-counter'],
    ['/lookup', '#lookup-topics', '20-base-lookup'],
  ]) {
    const p = await open(`${base}${route}`, shot, (pg) => pg.waitForSelector(sel));
    await p.close();
  }
  const res = await fetch(`${cluster.adminBase}/topics/alpha`);
  assert.equal(res.status, 404);
  await sleep(0);
});
