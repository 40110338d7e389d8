// nsqadmin's web UI: a small client-side router over the /api routes, in plain JavaScript.
(function () {
  'use strict';

  var meta = function (name) {
    var el = document.querySelector('meta[name="nsqadmin-' + name + '"]');
    return el ? el.getAttribute('content') : '';
  };
  var BASE = meta('base') || '/';
  var GRAPHITE = meta('graphite');
  var main = document.getElementById('main');
  var timers = [];

  // --- helpers ---------------------------------------------------------------

  function esc(v) {
    return String(v == null ? '' : v).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function num(n) { return (n || 0).toLocaleString('en-US'); }
  function link(path, text) {
    return '<a data-nav href="' + esc(BASE + path) + '">' + esc(text) + '</a>';
  }
  function seg(s) { return encodeURIComponent(s); }

  function showWarning(text) {
    var el = document.getElementById('warning');
    el.textContent = text || '';
    el.hidden = !text;
  }
  function showError(text) {
    var el = document.getElementById('error');
    el.textContent = text || '';
    el.hidden = !text;
  }

  // api: fetches a JSON route; rejects with the API's message on an error status.
  function api(method, path, body) {
    var init = { method: method, headers: {} };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    return fetch(BASE + path, init).then(function (res) {
      return res.text().then(function (text) {
        var data = {};
        try { data = text ? JSON.parse(text) : {}; } catch (e) { data = { message: text }; }
        if (!res.ok) {
          throw new Error((data && data.message) || ('HTTP ' + res.status));
        }
        if (data && data.message) { showWarning(data.message); }
        return data;
      });
    });
  }

  function every(ms, fn) { timers.push(setInterval(fn, ms)); }

  function pctCols(e2e) {
    var list = (e2e && e2e.percentiles) || [];
    return list;
  }
  function fmtLatency(ns) {
    if (!ns) { return '0'; }
    if (ns >= 1e9) { return (ns / 1e9).toFixed(1) + 's'; }
    if (ns >= 1e6) { return (ns / 1e6).toFixed(1) + 'ms'; }
    if (ns >= 1e3) { return (ns / 1e3).toFixed(1) + 'us'; }
    return ns + 'ns';
  }
  function e2eHeaders(rows) {
    var qs = [];
    rows.forEach(function (r) {
      pctCols(r.e2e_processing_latency).forEach(function (p) {
        if (qs.indexOf(p.quantile) < 0) { qs.push(p.quantile); }
      });
    });
    qs.sort(function (a, b) { return b - a; });
    return qs;
  }
  function e2eCells(row, qs) {
    var list = pctCols(row.e2e_processing_latency);
    return qs.map(function (q) {
      var p = list.filter(function (x) { return x.quantile === q; })[0];
      return '<td>' + (p ? esc(fmtLatency(p.value != null ? p.value : p.average)) : '') + '</td>';
    }).join('');
  }

  // --- charts ----------------------------------------------------------------

  // drawChart: a small line chart of `values` on `canvas`, scaled to its own range.
  function drawChart(canvas, values, color) {
    var ctx = canvas.getContext('2d');
    var w = canvas.width, h = canvas.height;
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, w, h);
    ctx.strokeStyle = '#e2e8f0';
    ctx.lineWidth = 1;
    for (var g = 1; g < 4; g++) {
      ctx.beginPath();
      ctx.moveTo(0, Math.round(h * g / 4) + 0.5);
      ctx.lineTo(w, Math.round(h * g / 4) + 0.5);
      ctx.stroke();
    }
    var max = Math.max.apply(null, values.concat([1]));
    var pad = 4;
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    values.forEach(function (v, i) {
      var x = values.length < 2 ? w / 2 : pad + (w - 2 * pad) * i / (values.length - 1);
      var y = h - pad - (h - 2 * pad) * (v / max);
      if (i === 0) { ctx.moveTo(x, y); } else { ctx.lineTo(x, y); }
    });
    if (values.length === 1) { ctx.lineTo(w / 2 + 1, h - pad - (h - 2 * pad) * (values[0] / max)); }
    ctx.stroke();
    ctx.fillStyle = '#4a5568';
    ctx.font = '10px sans-serif';
    ctx.fillText('max ' + (Math.round(max * 100) / 100), 4, 11);
  }

  function chartsHtml(id) {
    return '<div class="charts" id="' + id + '">' +
      '<div class="chart"><div class="label rate-label">message rate (msg/s)</div>' +
      '<canvas class="rate-chart" width="320" height="90"></canvas></div>' +
      '<div class="chart"><div class="label">depth</div>' +
      '<canvas class="depth-chart" width="320" height="90"></canvas></div></div>';
  }

  // --- graphite ----------------------------------------------------------------
  //
  // With --graphite-url the charts come from graphite's render API. Targets are named as Go's nsqadmin
  // names them: the statsd prefix with its %s host part as '*' (and a '.' after it), then
  // 'topic.<t>[.channel.<c>].<key>', wrapped in the counter or gauge format and summed over hosts.

  var STATSD_PREFIX = meta('statsd-prefix');
  var COUNTER_FORMAT = meta('statsd-counter-format');
  var GAUGE_FORMAT = meta('statsd-gauge-format');
  var STATSD_INTERVAL = parseInt(meta('statsd-interval'), 10) || 60;

  function statsdPrefix(host) {
    var p = STATSD_PREFIX.replace(/%s/g, host.replace(/[.:]/g, '_'));
    return p.slice(-1) === '.' ? p : p + '.';
  }
  // statsdKey: a key in the counter or gauge format; an empty format leaves the key as it is.
  function statsdKey(kind, key) {
    var fmt = kind === 'counter' ? COUNTER_FORMAT : GAUGE_FORMAT;
    return fmt ? fmt.replace(/%s/g, key) : key;
  }
  function graphiteTarget(topic, channel, key, kind) {
    var name = statsdPrefix('*') + 'topic.' + topic + (channel ? '.channel.' + channel : '') + '.' + key;
    return 'sumSeries(' + statsdKey(kind, name) + ')';
  }
  // chartTarget: what a large chart asks for: counters scaled to per second, averaged per statsd interval.
  function chartTarget(target, kind) {
    if (kind === 'counter') { target = 'scale(' + target + ',' + (1 / STATSD_INTERVAL) + ')'; }
    return 'summarize(' + target + ',"' + STATSD_INTERVAL + 'sec","avg")';
  }
  function renderUrl(target) {
    var q = ['target=' + encodeURIComponent(target), 'from=-2h', 'until=-1min', 'format=json'];
    return GRAPHITE + 'render?' + q.join('&');
  }
  // fetchSeries: the non-null values of the first series graphite answers for `target`.
  function fetchSeries(target) {
    return fetch(renderUrl(target)).then(function (res) {
      if (!res.ok) { throw new Error('graphite: HTTP ' + res.status); }
      return res.json();
    }).then(function (series) {
      var points = (series && series[0] && series[0].datapoints) || [];
      return points.map(function (p) { return p[0]; }).filter(function (v) { return v != null; });
    });
  }

  function startGraphiteCharts(id, topic, channel) {
    var box = document.getElementById(id);
    if (!box) { return; }
    box.setAttribute('data-source', 'graphite');
    var rateTarget = graphiteTarget(topic, channel, 'message_count', 'counter');
    var depthTarget = graphiteTarget(topic, channel, 'depth', 'gauge');
    box.querySelector('.rate-label').insertAdjacentHTML('beforeend', ' <span class="rate-now"></span>');
    function refresh() {
      var el = document.getElementById(id);
      if (!el) { return; }
      [[chartTarget(rateTarget, 'counter'), '.rate-chart', '#2b6cb0'],
        [chartTarget(depthTarget, 'gauge'), '.depth-chart', '#dd6b20']].forEach(function (c) {
        fetchSeries(c[0]).then(function (values) {
          drawChart(el.querySelector(c[1]), values, c[2]);
        }).catch(function (e) { showError(e.message); });
      });
      api('GET', 'api/graphite?metric=rate&target=' + encodeURIComponent(rateTarget)).then(function (d) {
        var now = el.querySelector('.rate-now');
        if (now) { now.textContent = 'now ' + d.rate; }
      }).catch(function (e) { showError(e.message); });
    }
    refresh();
    every(Math.max(10, STATSD_INTERVAL) * 1000, refresh);
  }

  // startCharts: draws and keeps redrawing the history of a topic or channel.
  function startCharts(id, topic, channel) {
    if (GRAPHITE) {
      startGraphiteCharts(id, topic, channel);
      return;
    }
    var path = 'api/history/' + seg(topic) + (channel ? '/' + seg(channel) : '');
    function refresh() {
      api('GET', path).then(function (data) {
        var box = document.getElementById(id);
        if (!box) { return; }
        var pts = data.points || [];
        drawChart(box.querySelector('.rate-chart'), pts.map(function (p) { return p.rate; }), '#2b6cb0');
        drawChart(box.querySelector('.depth-chart'), pts.map(function (p) { return p.depth; }), '#dd6b20');
      }).catch(function (e) { showError(e.message); });
    }
    refresh();
    every(2000, refresh);
  }

  // --- pages -----------------------------------------------------------------

  function actionButtons(paused) {
    return '<div class="actions">' +
      (paused ? '<button data-act="unpause">Unpause</button>' : '<button data-act="pause">Pause</button>') +
      '<button data-act="empty" class="danger">Empty</button>' +
      '<button data-act="delete" class="danger">Delete</button></div>';
  }

  // wireActions: makes the buttons act on `path` after a confirmation, then reloads the page.
  function wireActions(path, what, afterDelete) {
    main.querySelectorAll('button[data-act]').forEach(function (b) {
      b.addEventListener('click', function () {
        var act = b.getAttribute('data-act');
        if (!window.confirm('Are you sure you want to ' + act + ' ' + what + '?')) { return; }
        var p = act === 'delete' ? api('DELETE', path) : api('POST', path, { action: act });
        p.then(function () {
          if (act === 'delete') { navigate(afterDelete); } else { route(); }
        }).catch(function (e) { showError(e.message); });
      });
    });
  }

  function topicsPage() {
    return api('GET', 'api/topics').then(function (data) {
      var topics = data.topics || [];
      main.innerHTML = '<h1>Topics</h1>' + (topics.length ?
        '<table id="topics"><tr><th>Topic</th></tr>' + topics.map(function (t) {
          return '<tr><td>' + link('topics/' + seg(t), t) + '</td></tr>';
        }).join('') + '</table>' : '<p class="muted">No topics.</p>');
    });
  }

  function statsRow(label, r, qs, channel) {
    return '<tr' + (r.node === '*' ? ' class="total"' : '') + '><td>' + label +
      (r.paused ? '<span class="badge">paused</span>' : '') + '</td>' +
      '<td>' + num(r.depth) + '</td><td>' + num(r.memory_depth) + ' + ' + num(r.backend_depth) + '</td>' +
      (channel ? '<td>' + num(r.in_flight_count) + '</td><td>' + num(r.deferred_count) + '</td>' +
        '<td>' + num(r.requeue_count) + '</td><td>' + num(r.timeout_count) + '</td>' : '') +
      '<td>' + num(r.message_count) + '</td>' +
      (channel ? '<td>' + num(r.client_count) + '</td>' : '') + e2eCells(r, qs) + '</tr>';
  }
  function statsHead(first, qs, channel) {
    return '<tr><th>' + first + '</th><th>Depth</th><th>Memory + Disk</th>' +
      (channel ? '<th>In-Flight</th><th>Deferred</th><th>Requeued</th><th>Timed Out</th>' : '') +
      '<th>Messages</th>' + (channel ? '<th>Connections</th>' : '') +
      qs.map(function (q) { return '<th>E2E p' + esc(q * 100) + '</th>'; }).join('') + '</tr>';
  }

  function topicPage(topic) {
    return api('GET', 'api/topics/' + seg(topic)).then(function (t) {
      var nodes = t.nodes || [];
      var channels = t.channels || [];
      var qs = e2eHeaders(nodes.concat([t]));
      var cqs = e2eHeaders(channels);
      main.innerHTML = '<h1>Topic: ' + esc(topic) + (t.paused ? '<span class="badge">paused</span>' : '') + '</h1>' +
        actionButtons(t.paused) + chartsHtml('topic-charts') +
        '<h2>Topic message queue</h2><table id="topic-nodes">' + statsHead('Node', qs, false) +
        nodes.map(function (n) { return statsRow(link('nodes/' + seg(n.node), n.node), n, qs, false); }).join('') +
        statsRow('Total', Object.assign({}, t, { node: '*', paused: false }), qs, false) + '</table>' +
        '<h2>Channels</h2>' + (channels.length ? '<table id="channels">' + statsHead('Channel', cqs, true) +
          channels.map(function (c) {
            return statsRow(link('topics/' + seg(topic) + '/' + seg(c.channel_name), c.channel_name),
              Object.assign({}, c, { node: '', client_count: c.clients ? c.clients.length : c.client_count }), cqs, true);
          }).join('') + '</table>' : '<p class="muted">No channels.</p>');
      wireActions('api/topics/' + seg(topic), 'topic ' + topic, '');
      startCharts('topic-charts', topic, '');
    });
  }

  function channelPage(topic, channel) {
    return api('GET', 'api/topics/' + seg(topic) + '/' + seg(channel)).then(function (c) {
      if (!c.channel_name) {
        main.innerHTML = '<h1>Channel ' + esc(topic) + ' / ' + esc(channel) + '</h1><p class="muted">Channel not found.</p>';
        return;
      }
      var nodes = c.nodes || [];
      var clients = c.clients || [];
      var qs = e2eHeaders(nodes.concat([c]));
      // Connections per row, counted from the client list (nsqd's per-channel count is not always set).
      var connCount = function (node) {
        return clients.filter(function (cl) { return node === '*' || cl.node === node; }).length;
      };
      nodes = nodes.map(function (n) { return Object.assign({}, n, { client_count: connCount(n.node) }); });
      c = Object.assign({}, c, { client_count: clients.length });
      main.innerHTML = '<h1>' + link('topics/' + seg(topic), topic) + ' / ' + esc(channel) +
        (c.paused ? '<span class="badge">paused</span>' : '') + '</h1>' +
        actionButtons(c.paused) + chartsHtml('channel-charts') +
        '<h2>Channel message queues</h2><table id="channel-nodes">' + statsHead('Node', qs, true) +
        nodes.map(function (n) { return statsRow(link('nodes/' + seg(n.node), n.node), n, qs, true); }).join('') +
        statsRow('Total', Object.assign({}, c, { node: '*', paused: false }), qs, true) + '</table>' +
        '<h2>Client connections</h2>' + (clients.length ? '<table id="clients"><tr><th>Client host</th><th>User agent</th>' +
          '<th>Attributes</th><th>Node</th><th>In-Flight</th><th>Ready</th><th>Finished</th><th>Requeued</th>' +
          '<th>Messages</th><th>Connected</th></tr>' + clients.map(function (cl) {
            var attrs = [];
            if (cl.tls) { attrs.push('TLS ' + (cl.tls_version || '')); }
            if (cl.deflate) { attrs.push('deflate'); }
            if (cl.snappy) { attrs.push('snappy'); }
            if (cl.sample_rate) { attrs.push('sampled ' + cl.sample_rate + '%'); }
            if (cl.authed) { attrs.push('authed ' + (cl.auth_identity || '')); }
            var since = cl.connect_ts ? Math.max(0, Math.round(Date.now() / 1000 - cl.connect_ts)) : 0;
            return '<tr><td>' + esc(cl.hostname || cl.remote_address) + '</td><td>' + esc(cl.user_agent) + '</td>' +
              '<td>' + esc(attrs.join(', ') || 'none') + '</td><td>' + link('nodes/' + seg(cl.node), cl.node) + '</td>' +
              '<td>' + num(cl.in_flight_count) + '</td><td>' + num(cl.ready_count) + '</td>' +
              '<td>' + num(cl.finish_count) + '</td><td>' + num(cl.requeue_count) + '</td>' +
              '<td>' + num(cl.message_count) + '</td><td>' + esc(since + 's') + '</td></tr>';
          }).join('') + '</table>' : '<p class="muted">No clients connected.</p>');
      wireActions('api/topics/' + seg(topic) + '/' + seg(channel), 'channel ' + channel, 'topics/' + seg(topic));
      startCharts('channel-charts', topic, channel);
    });
  }

  function nodeAddress(n) {
    return (n.broadcast_address || n.hostname) + ':' + n.http_port;
  }

  function nodesPage() {
    return api('GET', 'api/nodes').then(function (data) {
      var nodes = data.nodes || [];
      main.innerHTML = '<h1>Nodes</h1>' + (nodes.length ? '<table id="nodes"><tr><th>Hostname</th>' +
        '<th>Broadcast address</th><th>TCP port</th><th>HTTP port</th><th>Version</th><th>Topics</th></tr>' +
        nodes.map(function (n) {
          var topics = (n.topics || []).map(function (t) {
            return link('topics/' + seg(t.topic), t.topic) + (t.tombstoned ? ' (tombstoned)' : '');
          }).join(', ');
          return '<tr><td>' + link('nodes/' + seg(nodeAddress(n)), n.hostname) + '</td><td>' +
            esc(n.broadcast_address) + '</td><td>' + esc(n.tcp_port) + '</td><td>' + esc(n.http_port) +
            '</td><td>' + esc(n.version) + (n.out_of_date ? '<span class="badge">old</span>' : '') +
            '</td><td>' + topics + '</td></tr>';
        }).join('') + '</table>' : '<p class="muted">No nodes.</p>');
    });
  }

  function nodePage(node) {
    return api('GET', 'api/nodes/' + seg(node)).then(function (data) {
      var topics = data.topics || [];
      var rows = '';
      topics.forEach(function (t) {
        rows += '<tr class="total"><td>' + link('topics/' + seg(t.topic_name), t.topic_name) +
          (t.paused ? '<span class="badge">paused</span>' : '') + '</td><td>' + num(t.depth) +
          '</td><td></td><td>' + num(t.message_count) + '</td><td></td></tr>';
        (t.channels || []).forEach(function (c) {
          rows += '<tr><td>&nbsp;&nbsp;' + link('topics/' + seg(t.topic_name) + '/' + seg(c.channel_name), c.channel_name) +
            (c.paused ? '<span class="badge">paused</span>' : '') + '</td><td>' + num(c.depth) + '</td><td>' +
            num(c.in_flight_count) + '</td><td>' + num(c.message_count) + '</td><td>' +
            num((c.clients || []).length) + '</td></tr>';
        });
      });
      main.innerHTML = '<h1>Node: ' + esc(node) + '</h1>' +
        '<p>' + num(data.total_messages) + ' messages, ' + num(data.total_clients) + ' clients, ' +
        topics.length + ' topics</p>' + (topics.length ? '<table id="node-topics"><tr><th>Topic / channel</th>' +
          '<th>Depth</th><th>In-Flight</th><th>Messages</th><th>Clients</th></tr>' + rows + '</table>' :
          '<p class="muted">No topics on this node.</p>');
    });
  }

  function counterPage() {
    main.innerHTML = '<h1>Messages processed</h1><div class="counter" id="counter">…</div>' +
      '<div class="rate" id="counter-rate"></div>';
    var last = null;
    function refresh() {
      return api('GET', 'api/counter').then(function (data) {
        var total = 0;
        Object.keys(data.stats || {}).forEach(function (k) { total += data.stats[k].message_count || 0; });
        var el = document.getElementById('counter');
        if (!el) { return; }
        el.textContent = num(total);
        el.setAttribute('data-count', String(total));
        var now = Date.now();
        if (last && now > last.t) {
          var rate = Math.max(0, (total - last.n) * 1000 / (now - last.t));
          document.getElementById('counter-rate').textContent = rate.toFixed(1) + ' msg/s';
        }
        last = { t: now, n: total };
      });
    }
    every(1000, function () { refresh().catch(function (e) { showError(e.message); }); });
    return refresh();
  }

  function lookupPage() {
    return api('GET', 'api/topics?inactive=true').then(function (inactive) {
      return api('GET', 'api/topics').then(function (active) {
        var all = active.topics || [];
        var idle = inactive.topics || {};
        var lookupd = meta('lookupd') === 'true';
        main.innerHTML = '<h1>Lookup</h1>' +
          (lookupd ? '' : '<p class="muted">nsqadmin runs without --lookupd-http-address: creating topics needs lookupd.</p>') +
          '<h2>Create topic / channel</h2><form class="inline" id="create">' +
          '<input name="topic" placeholder="topic" required><input name="channel" placeholder="channel (optional)">' +
          '<button type="submit">Create</button></form>' +
          '<h2>Topics</h2>' + (all.length ? '<table id="lookup-topics"><tr><th>Topic</th><th>Channels</th><th></th></tr>' +
            all.map(function (t) {
              return '<tr data-topic="' + esc(t) + '"><td>' + link('topics/' + seg(t), t) + '</td><td class="chans"></td>' +
                '<td><button class="danger" data-del-topic="' + esc(t) + '">Delete</button></td></tr>';
            }).join('') + '</table>' : '<p class="muted">No topics.</p>') +
          '<h2>Inactive topics (no producers)</h2>' + (Object.keys(idle).length ? '<ul class="plain" id="inactive">' +
            Object.keys(idle).map(function (t) {
              return '<li>' + esc(t) + ': ' + esc((idle[t] || []).join(', ') || 'no channels') + '</li>';
            }).join('') + '</ul>' : '<p class="muted">None.</p>');
        all.forEach(function (t) {
          api('GET', 'api/topics/' + seg(t)).then(function (d) {
            var cell = main.querySelector('tr[data-topic="' + CSS.escape(t) + '"] .chans');
            if (!cell) { return; }
            cell.innerHTML = (d.channels || []).map(function (c) {
              return link('topics/' + seg(t) + '/' + seg(c.channel_name), c.channel_name) +
                ' <button class="danger" data-del-topic="' + esc(t) + '" data-del-channel="' + esc(c.channel_name) + '">x</button>';
            }).join(' ');
          }).catch(function (e) { showError(e.message); });
        });
        main.addEventListener('click', function (ev) {
          var b = ev.target.closest('button[data-del-topic]');
          if (!b) { return; }
          var t = b.getAttribute('data-del-topic');
          var c = b.getAttribute('data-del-channel');
          var what = c ? 'channel ' + t + '/' + c : 'topic ' + t;
          if (!window.confirm('Are you sure you want to delete ' + what + '?')) { return; }
          api('DELETE', 'api/topics/' + seg(t) + (c ? '/' + seg(c) : '')).then(route)
            .catch(function (e) { showError(e.message); });
        });
        document.getElementById('create').addEventListener('submit', function (ev) {
          ev.preventDefault();
          var f = ev.target;
          api('POST', 'api/topics', { topic: f.topic.value, channel: f.channel.value }).then(route)
            .catch(function (e) { showError(e.message); });
        });
      });
    });
  }

  // --- router ----------------------------------------------------------------

  function route() {
    timers.forEach(clearInterval);
    timers = [];
    showError('');
    showWarning('');
    var path = location.pathname;
    var rel = path.indexOf(BASE) === 0 ? path.slice(BASE.length) : path.replace(/^\//, '');
    var parts = rel.split('/').filter(function (s) { return s !== ''; }).map(decodeURIComponent);
    var page;
    if (parts.length === 0) { page = topicsPage(); }
    else if (parts[0] === 'topics' && parts.length === 2) { page = topicPage(parts[1]); }
    else if (parts[0] === 'topics' && parts.length === 3) { page = channelPage(parts[1], parts[2]); }
    else if (parts[0] === 'nodes' && parts.length === 1) { page = nodesPage(); }
    else if (parts[0] === 'nodes' && parts.length === 2) { page = nodePage(parts[1]); }
    else if (parts[0] === 'counter') { page = counterPage(); }
    else if (parts[0] === 'lookup') { page = lookupPage(); }
    else { main.innerHTML = '<h1>Not found</h1>'; return; }
    page.catch(function (e) {
      showError(e.message);
      if (/Loading/.test(main.textContent)) { main.innerHTML = '<p class="muted">Could not load this page.</p>'; }
    });
  }

  function navigate(rel) {
    history.pushState(null, '', BASE + rel);
    route();
  }

  document.addEventListener('click', function (ev) {
    var a = ev.target.closest('a[data-nav]');
    if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) { return; }
    ev.preventDefault();
    history.pushState(null, '', a.getAttribute('href'));
    route();
  });
  window.addEventListener('popstate', route);
  route();
})();
