// The page of report/index.html (see src/run/html.h).  Every piece of run
// data reaches the DOM through textContent (or canvas text), never as
// markup.  No "??" in this file: it is compiled into a C string.
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('kpar-data').textContent);
  var B = D.buckets, T = D.tests, TOT = D.totals;
  var COLORS = { pass: '#2e9d4d', fail: '#d93025', error: '#e8710a', skip: '#9aa0a6', flaky: '#9334e6',
    xfail: '#81c995', xpass: '#a50e0e' };
  var STATUS_ORDER = ['fail', 'xpass', 'error', 'flaky', 'skip', 'xfail', 'pass'];
  var app = document.getElementById('app');

  // A link to a test's log: each path component percent-encoded, as ids
  // may hold '#', '?' or spaces.
  function logLink(t) {
    if (t.log === undefined) return null;
    var a = el('a', 'log', 'log');
    a.href = t.log.split('/').map(encodeURIComponent).join('/');
    return a;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function add(parent) {
    for (var i = 1; i < arguments.length; i++) if (arguments[i]) parent.appendChild(arguments[i]);
    return parent;
  }
  function secs(s) {
    if (s >= 60) {
      var r = (s % 60).toFixed(1);
      return Math.floor(s / 60) + 'm' + (r.length < 4 ? '0' + r : r) + 's';
    }
    return s.toFixed(2) + 's';
  }
  function plural(n, word) { return n + ' ' + word + (n === 1 ? '' : 's'); }
  function badge(st) { return el('span', 'badge b-' + st, st); }
  // local-w2 before local-w10
  function natcmp(a, b) {
    var ra = a.split(/(\d+)/), rb = b.split(/(\d+)/);
    for (var i = 0; i < Math.min(ra.length, rb.length); i++) {
      if (ra[i] === rb[i]) continue;
      if (i % 2 === 1) return Number(ra[i]) - Number(rb[i]);
      return ra[i] < rb[i] ? -1 : 1;
    }
    return ra.length - rb.length;
  }
  function where(t) {
    var b = B[t.b];
    // bucket 0: a test this run did not run, its latest result reused
    if (b.n === 0) return 'reused from ' + b.w;
    return 'bucket ' + b.n + (b.a > 1 ? ' (attempt ' + b.a + ')' : '') + ', worker ' + b.w;
  }
  function section(id, title, count) {
    var s = el('section');
    s.id = id;
    var h = el('h2', null, title);
    if (count !== undefined) add(h, el('span', 'count', '(' + count + ')'));
    add(app, add(s, h));
    return s;
  }

  // ---- filter state, shared by the test list and the timeline ----------
  var filter = { st: { pass: true, fail: true, error: true, skip: true, flaky: true, xfail: true, xpass: true }, q: '' };
  var listeners = [];
  function matches(t) {
    if (!filter.st[t.st]) return false;
    return !filter.q || t.id.toLowerCase().indexOf(filter.q) >= 0;
  }
  // the filter lives in the address too (#st=fail,error&q=name), so a
  // link to the report can show just what matters
  function readHash() {
    var h = location.hash.replace(/^#/, '');
    if (h.indexOf('=') < 0) return;
    h.split('&').forEach(function (kv) {
      var i = kv.indexOf('='), k = kv.slice(0, i), v;
      try { v = decodeURIComponent(kv.slice(i + 1)); } catch (e) { return; }
      if (k === 'st') {
        var want = v.split(',');
        for (var s in filter.st) filter.st[s] = want.indexOf(s) >= 0;
      } else if (k === 'q') {
        filter.q = v.toLowerCase();
      }
    });
  }
  function writeHash() {
    var on = STATUS_ORDER.filter(function (s) { return filter.st[s]; }), parts = [];
    if (on.length < STATUS_ORDER.length) parts.push('st=' + on.join(','));
    if (filter.q) parts.push('q=' + encodeURIComponent(filter.q));
    try { history.replaceState(null, '', parts.length ? '#' + parts.join('&') : location.pathname); } catch (e) { /* a browser may refuse it for file: pages; the filter still works */ }
  }
  function filterChanged() {
    for (var i = 0; i < listeners.length; i++) listeners[i]();
    writeHash();
  }
  readHash();

  // ---- header and totals ------------------------------------------------
  var verdict = D.verdict === 'pass' ? 'pass' : 'fail';
  var h1 = add(el('h1'), el('span', null, 'kpar run ' + D.run));
  var vb = badge(verdict);
  vb.id = 'verdict';
  vb.textContent = verdict === 'pass' ? 'PASS' : 'FAIL';
  add(h1, vb);
  add(app, h1);
  var workers = {};
  B.forEach(function (b) { if (!b.lost && b.n !== 0) workers[b.w] = 1; });
  var started = new Date(D.started * 1000);
  var meta = 'started ' + (isNaN(started) ? '?' : started.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')) +
    ' \u00b7 wall ' + secs(D.wall) + ' \u00b7 test time ' + secs(TOT.test_time) +
    (D.wall > 0 ? ' (' + (TOT.test_time / D.wall).toFixed(1) + 'x)' : '') +
    ' \u00b7 ' + plural(D.nbuckets, 'bucket') + ' on ' + plural(Object.keys(workers).length, 'worker') +
    ' \u00b7 backend ' + D.backend + ' \u00b7 plan ' + D.plan.slice(0, 19) + ' \u00b7 kpar ' + D.version;
  add(app, el('p', 'meta', meta));

  var cards = el('div', 'cards');
  [['tests', 'tests', null], ['passed', 'passed', 'pass'], ['failed', 'failed', 'fail'],
   ['errors', 'errors', 'error'], ['skipped', 'skipped', 'skip'], ['flaky', 'flaky (also passed)', 'flaky']]
    .forEach(function (c) {
      var card = el('div', 'card c-' + c[0]);
      var num = el('span', 'num', TOT[c[0]]);
      num.id = 'total-' + c[0];
      add(card, num, el('span', 'lbl', c[1]));
      card.title = c[2] ? 'list only ' + c[1] + ' tests' : 'list every test';
      card.addEventListener('click', function () {
        for (var k in filter.st) filter.st[k] = !c[2] || k === c[2] || (c[2] === 'pass' && (k === 'flaky' || k === 'xfail')) ||
          (c[2] === 'fail' && k === 'xpass');
        filterChanged();
        document.getElementById('tests').scrollIntoView();
      });
      add(cards, card);
    });
  add(app, cards);
  var nav = el('nav');
  [['failures', 'failures'], ['flaky', 'flaky'], ['skipped', 'skipped'], ['slowest', 'slowest'],
   ['timeline', 'timeline'], ['tests', 'all tests']].forEach(function (n) {
    var a = el('a', null, n[1]);
    a.href = '#' + n[0];
    add(nav, a);
  });
  add(app, nav);

  // ---- failures and errors first, with their output ---------------------
  var bad = T.filter(function (t) { return t.st === 'fail' || t.st === 'xpass' || t.st === 'error'; });
  var sf = section('failures', 'Failures and errors', bad.length);
  if (!bad.length) add(sf, el('p', 'none', 'No test failed or erred.'));
  var shownBad = 0, moreBad = el('button', null, '');
  function showBad(n) {
    var end = Math.min(bad.length, shownBad + n);
    for (; shownBad < end; shownBad++) {
      var t = bad[shownBad], box = el('div', 'failure st-' + t.st);
      var head = add(el('div', 'head'), badge(t.st), el('span', 'id fail-id', t.id),
        el('span', 'where', where(t) + ', exit ' + t.exit + ', ' + secs(t.sec) +
          (t.att > 1 ? ', ' + t.att + ' attempts' : '')), logLink(t));
      var pre = el('pre', 'out', t.out === undefined ? '(no output)' : t.out);
      add(box, head, pre);
      sf.insertBefore(box, moreBad);
      // the verdict of a test is usually at the end of what it printed
      pre.scrollTop = pre.scrollHeight;
    }
    moreBad.textContent = 'show ' + Math.min(25, bad.length - shownBad) + ' more (' + (bad.length - shownBad) + ' left)';
    moreBad.style.display = shownBad < bad.length ? '' : 'none';
  }
  add(sf, moreBad);
  moreBad.addEventListener('click', function () { showBad(25); });
  showBad(10);

  // ---- a small table, paginated -----------------------------------------
  // cols: [title, class, function(t) -> text]
  function table(parent, rows, cols, pageSize, rowClass) {
    var tbl = el('table'), thead = el('thead'), tr = el('tr'), tbody = el('tbody');
    cols.forEach(function (c) { add(tr, el('th', c[1], c[0])); });
    add(tbl, add(thead, tr), tbody);
    var pager = el('div', 'pager'), prev = el('button', null, '\u2039 previous'),
      next = el('button', null, 'next \u203a'), info = el('span', 'muted');
    add(pager, prev, info, next);
    add(parent, tbl, pager);
    var page = 0;
    function draw() {
      var pages = Math.max(1, Math.ceil(rows.length / pageSize));
      if (page >= pages) page = pages - 1;
      tbody.textContent = '';
      var end = Math.min(rows.length, (page + 1) * pageSize);
      for (var i = page * pageSize; i < end; i++) {
        var r = el('tr', rowClass);
        cols.forEach(function (c) { add(r, el('td', c[1], c[2](rows[i]))); });
        add(tbody, r);
      }
      info.textContent = rows.length ? (page * pageSize + 1) + '\u2013' + end + ' of ' + rows.length : '';
      prev.disabled = page === 0;
      next.disabled = page >= pages - 1;
      pager.style.display = pages > 1 ? '' : 'none';
    }
    prev.addEventListener('click', function () { page--; draw(); });
    next.addEventListener('click', function () { page++; draw(); });
    draw();
  }

  var flaky = T.filter(function (t) { return t.st === 'flaky'; });
  var sfl = section('flaky', 'Flaky (failed, then passed on a retry)', flaky.length);
  if (flaky.length)
    table(sfl, flaky, [['test', 'id', function (t) { return t.id; }],
      ['attempts', 'num', function (t) { return t.att; }],
      ['where', null, where]], 10);
  else add(sfl, el('p', 'none', 'No flaky test.'));

  var skips = T.filter(function (t) { return t.st === 'skip'; });
  var ss = section('skipped', 'Skipped', skips.length);
  if (skips.length)
    table(ss, skips, [['test', 'id', function (t) { return t.id; }],
      ['reason (the last line it printed)', null, function (t) { return t.why === undefined ? '\u2014' : t.why; }]], 10);
  else add(ss, el('p', 'none', 'No test was skipped.'));

  var SLOWEST = 15;
  var slow = T.slice().sort(function (a, b) { return b.sec - a.sec || (a.id < b.id ? -1 : 1); }).slice(0, SLOWEST);
  var ssl = section('slowest', 'Slowest tests');
  var maxSec = slow.length ? slow[0].sec : 0;
  if (slow.length)
    table(ssl, slow, [['seconds', 'num', function (t) { return secs(t.sec); }],
      ['', null, function () { return ''; }],
      ['test', 'id', function (t) { return t.id; }],
      ['status', null, function (t) { return t.st; }],
      ['where', null, where]], SLOWEST);
  else add(ssl, el('p', 'none', 'No tests.'));
  // the bars of the second column: sized through the CSSOM, not markup
  Array.prototype.forEach.call(ssl.querySelectorAll('tbody tr'), function (r, i) {
    var cell = r.children[1], bar = el('div', 'bar');
    cell.style.width = '30%';
    bar.style.width = (maxSec > 0 ? 100 * slow[i].sec / maxSec : 0) + '%';
    bar.style.background = COLORS[slow[i].st];
    add(cell, bar);
  });

  // ---- timeline ---------------------------------------------------------
  var stl = section('timeline', 'Timeline of the workers');
  var rows = [], rowOf = {};
  B.forEach(function (b, i) {
    if (b.n === 0) return;   // reused results did not run now
    var name = b.lost ? '(lost buckets)' : b.w;
    if (!(name in rowOf)) { rowOf[name] = rows.length; rows.push({ name: name, lost: !!b.lost, buckets: [], busy: 0 }); }
    var r = rows[rowOf[name]];
    r.buckets.push(i);
    if (!b.lost) r.busy += Math.max(0, b.e - b.s);
  });
  // lost buckets first: they are what needs a look
  rows.sort(function (a, b) { return (b.lost - a.lost) || natcmp(a.name, b.name); });
  // each test's place within its bucket: no start times are recorded, so
  // the tests follow each other from the bucket's start, scaled to fit.
  // Only the last attempt's time is known: a retried test's earlier
  // attempts are taken to have lasted as long (drawn lighter).
  var tstart = new Float64Array(T.length), tlast = new Float64Array(T.length), tend = new Float64Array(T.length);
  var bTests = B.map(function () { return []; });
  T.forEach(function (t, i) { bTests[t.b].push(i); });
  B.forEach(function (b, bi) {
    var sum = 0;
    bTests[bi].forEach(function (i) { sum += T[i].sec * Math.max(1, T[i].att); });
    var span = Math.max(0, b.e - b.s), k = sum > span && sum > 0 ? span / sum : 1, at = b.s;
    bTests[bi].forEach(function (i) {
      var t = T[i];
      tstart[i] = at;
      at += t.sec * Math.max(1, t.att) * k;
      tend[i] = at;
      tlast[i] = at - t.sec * k;
    });
  });
  var real = rows.filter(function (r) { return !r.lost; });
  if (real.length) {
    var maxBusy = 0, sumBusy = 0, busiest = '';
    real.forEach(function (r) { sumBusy += r.busy; if (r.busy > maxBusy) { maxBusy = r.busy; busiest = r.name; } });
    var mean = sumBusy / real.length;
    add(stl, el('p', 'imbalance', 'Busiest worker ' + busiest + ': ' + secs(maxBusy) + ' busy; mean ' + secs(mean) +
      (mean > 0 ? ' (imbalance ' + (maxBusy / mean).toFixed(2) + 'x)' : '') +
      '. Each row is a worker; gaps are idle time.'));
  }
  var legend = el('div', 'legend');
  function sw(cls, color, text) {
    var s = el('span', 'sw ' + (cls || ''));
    if (color) s.style.background = color;
    return add(el('span'), s, document.createTextNode(text));
  }
  add(legend, sw('sw-bucket', null, 'bucket'),
    sw(null, COLORS.pass, 'passed'), sw(null, COLORS.fail, 'failed'), sw(null, COLORS.error, 'error'),
    sw(null, COLORS.skip, 'skipped'), sw(null, COLORS.flaky, 'flaky'),
    sw('sw-retry', null, 'bucket retried (an earlier worker was lost)'),
    sw('sw-tretry', null, 'test retried (earlier attempts lighter)'),
    sw('sw-lost', null, 'bucket lost (given up)'));
  legend.lastChild.firstChild.textContent = '\u2715';
  add(stl, legend);
  add(stl, el('p', 'muted', 'Tests are placed one after another within their bucket by their durations. ' +
    'Hover for details; click a test to list it below. Tests outside the filter are dimmed.'));
  var wrap = el('div', 'timeline-wrap'), canvas = el('canvas'), tip = el('div', 'tip');
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', 'Timeline: ' + plural(real.length, 'worker') + ', ' + plural(B.length, 'bucket') +
    ' over ' + secs(D.wall) + (rows.length > real.length ? ', with lost buckets' : ''));
  add(stl, add(wrap, canvas));
  add(document.body, tip);
  var ROW = 24, TOP = 22, LABEL = 150, PAD = 8;
  var span = Math.max(D.wall, 0.001);
  B.forEach(function (b) { if (b.e > span) span = b.e; });
  var geo = { w: 0, x0: LABEL, x1: 0 };
  function xOf(t) { return geo.x0 + (geo.x1 - geo.x0) * t / span; }
  function tOf(x) { return (x - geo.x0) * span / (geo.x1 - geo.x0); }
  function niceStep(raw) {
    var p = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }
  function draw() {
    var dpr = window.devicePixelRatio || 1, w = Math.max(400, wrap.clientWidth), h = TOP + rows.length * ROW + 4;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    canvas.style.width = w + 'px';
    canvas.style.height = h + 'px';
    geo.w = w; geo.x1 = w - PAD;
    var g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'middle';
    // time axis
    var step = niceStep(span / Math.max(1, (geo.x1 - geo.x0) / 90));
    g.strokeStyle = '#eceff1';
    g.fillStyle = '#5f6368';
    for (var t = 0; t <= span + 1e-9; t += step) {
      var x = Math.round(xOf(t)) + 0.5;
      g.beginPath(); g.moveTo(x, TOP - 4); g.lineTo(x, h); g.stroke();
      if (x + 2 + g.measureText(secs(t)).width < w) g.fillText(secs(t), x + 2, 9);
    }
    rows.forEach(function (r, ri) {
      var y = TOP + ri * ROW;
      if (ri % 2) { g.fillStyle = '#fafbfc'; g.fillRect(0, y, w, ROW); }
      g.fillStyle = r.lost ? '#c5221f' : '#202124';
      var label = r.name;
      while (label.length > 1 && g.measureText(label).width > LABEL - 8) label = label.slice(0, -2) + '\u2026';
      g.fillText(label, 4, y + ROW / 2);
      r.buckets.forEach(function (bi) {
        var b = B[bi], bx = xOf(b.s), bw = Math.max(1, xOf(b.e) - bx);
        if (b.lost) {
          var cx = bx, cy = y + ROW / 2;
          g.strokeStyle = '#c5221f'; g.lineWidth = 2;
          g.beginPath(); g.moveTo(cx - 5, cy - 5); g.lineTo(cx + 5, cy + 5);
          g.moveTo(cx + 5, cy - 5); g.lineTo(cx - 5, cy + 5); g.stroke();
          g.lineWidth = 1;
          return;
        }
        g.fillStyle = '#e8eaed';
        g.fillRect(bx, y + 2, bw, ROW - 4);
        bTests[bi].forEach(function (i) {
          var tt = T[i], alpha = matches(tt) ? 1 : 0.15, tx = xOf(tstart[i]), lx = xOf(tlast[i]);
          g.fillStyle = COLORS[tt.st] || '#000';
          if (lx > tx) {
            g.globalAlpha = alpha * 0.4;
            g.fillRect(tx, y + 5, lx - tx, ROW - 10);
          }
          g.globalAlpha = alpha;
          g.fillRect(lx, y + 5, Math.max(xOf(tend[i]) - lx, 0.6), ROW - 10);
          if (tt.att > 1) { g.fillStyle = '#202124'; g.fillRect(tx, y + 3, Math.max(xOf(tend[i]) - tx, 2), 2); }
        });
        g.globalAlpha = 1;
        if (b.a > 1) {
          g.strokeStyle = '#c5221f'; g.lineWidth = 2; g.setLineDash([4, 3]);
          g.strokeRect(bx + 1, y + 2, bw - 2, ROW - 4);
          g.setLineDash([]); g.lineWidth = 1;
        } else {
          g.strokeStyle = '#80868b';
          g.strokeRect(Math.round(bx) + 0.5, y + 2.5, Math.max(1, Math.round(bw) - 1), ROW - 5);
        }
        if (bw > 40) {
          g.fillStyle = '#202124';
          g.fillText('#' + b.n + (b.a > 1 ? ' \u21bb' + b.a : ''), bx + 3, y + ROW / 2);
        }
      });
    });
  }
  // what is under the pointer: a test, else a bucket
  function hit(ev) {
    var rect = canvas.getBoundingClientRect(), x = ev.clientX - rect.left, y = ev.clientY - rect.top;
    var ri = Math.floor((y - TOP) / ROW);
    if (ri < 0 || ri >= rows.length || x < geo.x0 - 6) return null;
    var t = tOf(x), tol = span * 6 / (geo.x1 - geo.x0), best = null;
    rows[ri].buckets.forEach(function (bi) {
      var b = B[bi];
      if (t < b.s - tol || t > b.e + tol) return;
      best = { b: bi };
      bTests[bi].forEach(function (i) {
        if (t >= tstart[i] && t <= tend[i]) best.t = i;
      });
    });
    return best;
  }
  canvas.addEventListener('mousemove', function (ev) {
    var h = hit(ev);
    if (!h) { tip.style.display = 'none'; return; }
    var b = B[h.b], lines = [];
    if (h.t !== undefined) {
      var t = T[h.t];
      lines.push(t.id, t.st + ', ' + secs(t.sec) + (t.att > 1 ? ', ' + t.att + ' attempts' : ''));
    }
    lines.push('bucket ' + b.n + ' (' + plural(bTests[h.b].length, 'test') + '), worker ' + b.w +
      (b.lost ? ', lost: given up after ' + plural(b.a, 'attempt') :
        ', ' + secs(b.s) + ' \u2192 ' + secs(b.e) + ' (' + secs(b.e - b.s) + ')' +
        (b.a > 1 ? ', attempt ' + b.a + ' (' + plural(b.a - 1, 'earlier attempt') + ' lost)' : '')));
    tip.textContent = lines.join('\n');
    tip.style.display = 'block';
    tip.style.left = Math.min(ev.clientX + 12, window.innerWidth - 490) + 'px';
    tip.style.top = (ev.clientY + 14) + 'px';
  });
  canvas.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  canvas.addEventListener('click', function (ev) {
    var h = hit(ev);
    if (!h || h.t === undefined) return;
    search.value = T[h.t].id;
    for (var k in filter.st) filter.st[k] = true;
    filter.q = T[h.t].id.toLowerCase();
    filterChanged();
    document.getElementById('tests').scrollIntoView();
  });
  var resizeTimer = 0;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(draw, 100);
  });
  listeners.push(draw);

  // ---- every test: filter by status and name, sort, paginate ------------
  var st = section('tests', 'All tests', T.length);
  var controls = el('div', 'controls'), boxes = {};
  STATUS_ORDER.forEach(function (s) {
    var lab = el('label'), box = el('input');
    box.type = 'checkbox';
    box.checked = true;
    box.id = 'f-' + s;
    box.addEventListener('change', function () { filter.st[s] = box.checked; filterChanged(); });
    boxes[s] = box;
    add(controls, add(lab, box, badge(s)));
  });
  var search = el('input');
  search.type = 'search';
  search.id = 'f-name';
  search.placeholder = 'filter by name (substring)';
  search.value = filter.q;
  search.addEventListener('input', function () { filter.q = search.value.toLowerCase(); filterChanged(); });
  var countEl = el('span', 'muted');
  countEl.id = 'tests-count';
  add(controls, search, countEl);
  add(st, controls);
  var PAGE = 100, cols = [
    ['status', null, function (t) { return t.st; }, function (a, b) { return STATUS_ORDER.indexOf(a.st) - STATUS_ORDER.indexOf(b.st); }],
    ['test', 'id', function (t) { return t.id; }, function (a, b) { return a.id < b.id ? -1 : a.id > b.id ? 1 : 0; }],
    ['seconds', 'num', function (t) { return secs(t.sec); }, function (a, b) { return a.sec - b.sec; }],
    ['attempts', 'num', function (t) { return t.att; }, function (a, b) { return a.att - b.att; }],
    ['bucket', 'num', function (t) { return B[t.b].n; }, function (a, b) { return B[a.b].n - B[b.b].n; }],
    ['worker', null, function (t) { return B[t.b].w; }, function (a, b) { return natcmp(B[a.b].w, B[b.b].w); }]];
  var sortCol = 0, sortDir = 1, page = 0, open = {};
  var tbl = el('table'), thead = el('tr'), tbody = el('tbody');
  tbody.id = 'tests-body';
  cols.forEach(function (c, ci) {
    var th = el('th', 'sortable ' + (c[1] || ''), c[0]);
    th.addEventListener('click', function () {
      sortDir = sortCol === ci ? -sortDir : 1;
      sortCol = ci;
      page = 0;
      render();
    });
    add(thead, th);
  });
  add(st, add(tbl, add(el('thead'), thead), tbody));
  var pager = el('div', 'pager'), prev = el('button', null, '\u2039 previous'), next = el('button', null, 'next \u203a'),
    pinfo = el('span', 'muted');
  add(st, add(pager, prev, pinfo, next));
  prev.addEventListener('click', function () { page--; render(); });
  next.addEventListener('click', function () { page++; render(); });
  var shown = [];
  function render() {
    var cmp = cols[sortCol][3];
    shown = T.filter(matches).sort(function (a, b) {
      return sortDir * cmp(a, b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    });
    var pages = Math.max(1, Math.ceil(shown.length / PAGE));
    if (page >= pages) page = pages - 1;
    if (page < 0) page = 0;
    tbody.textContent = '';
    var end = Math.min(shown.length, (page + 1) * PAGE);
    for (var i = page * PAGE; i < end; i++) (function (t) {
      var r = el('tr', 'row');
      cols.forEach(function (c, ci) {
        var td = el('td', c[1]);
        if (ci === 0) add(td, badge(t.st)); else td.textContent = String(c[2](t));
        add(r, td);
      });
      add(tbody, r);
      var d = null;
      function toggle() {
        if (d) { tbody.removeChild(d); d = null; delete open[t.id]; return; }
        d = el('tr', 'detail');
        var td = el('td');
        td.colSpan = cols.length;
        add(td, logLink(t), el('pre', null, (t.st === 'skip' && t.why !== undefined ? 'reason: ' + t.why + '\n\n' : '') +
          (t.out !== undefined ? t.out : t.st === 'pass' ? "(a passing test's output is in its log)" : '(no output)')));
        add(d, td);
        tbody.insertBefore(d, r.nextSibling);
        open[t.id] = 1;
      }
      r.addEventListener('click', toggle);
      if (open[t.id] || (shown.length === 1 && filter.q)) toggle();
    })(shown[i]);
    countEl.textContent = shown.length + ' of ' + T.length + ' tests match';
    pinfo.textContent = shown.length ? 'page ' + (page + 1) + ' of ' + pages : '';
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    pager.style.display = pages > 1 ? '' : 'none';
    STATUS_ORDER.forEach(function (s) { boxes[s].checked = filter.st[s]; });
  }
  listeners.push(function () { page = 0; render(); });
  render();

  if (D.events) {
    var se = section('events', 'Events on the platform (' + D.backend + ')');
    add(se, el('pre', null, D.events));
  }
  draw();
})();
