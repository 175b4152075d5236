// The case report's script: builds the page from the JSON in #data. Every piece of data goes in
// as text (textContent), never as markup; nothing is fetched.
'use strict';
(function () {
  const data = JSON.parse(document.getElementById('data').textContent);

  // An element with a class and text; children appended.
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function add(parent, ...kids) {
    for (const k of kids) parent.appendChild(k);
    return parent;
  }

  document.getElementById('scope').textContent = data.scope;
  const notices = document.getElementById('notices');
  for (const n of data.notices) add(notices, el('li', null, n));

  // ---- Alerts table ----
  const alertBody = document.querySelector('#alerts tbody');
  if (!data.rules) {
    document.getElementById('alerts-section').classList.add('hidden');
  }
  for (const a of data.alerts.rows) {
    const tr = el('tr', 'alert');
    add(tr, el('td', null, a.ts), el('td', 'sev-' + a.severity, a.severity), el('td', 'rule', a.rule));
    const pid = el('td');
    if (a.pid !== null) {
      const link = el('a', 'pid', a.pid);
      link.href = '#p-' + a.pid + '-' + a.start_ns;
      link.addEventListener('click', () => {
        const p = procs.find(q => q.details.id === 'p-' + a.pid + '-' + a.start_ns);
        if (p) { reveal(p); p.details.open = true; }
      });
      add(pid, link);
    }
    add(tr, pid, el('td', null, a.exe || a.comm || ''), el('td', null, a.suppressed || a.path || ''));
    tr.title = a.description;
    if (data.focus && data.focus.rule === a.rule && data.focus.ts_ns === a.ts_ns) tr.classList.add('focus');
    add(alertBody, tr);
  }
  if (data.rules && data.alerts.rows.length === 0) {
    const td = el('td', null, 'No alerts in this range.');
    td.colSpan = 6;
    add(alertBody, add(el('tr'), td));
  }

  // ---- Process tree ----
  // Times are ns since the epoch; a double holds them to the µs, enough to read.
  function time(ns) {
    if (ns === null || ns === undefined) return '';
    return new Date(ns / 1e6).toISOString().replace('T', ' ').replace('Z', ' UTC');
  }
  function span(ns) {
    const units = [[604800e9, 'w'], [86400e9, 'd'], [3600e9, 'h'], [60e9, 'm'], [1e9, 's'], [1e6, 'ms']];
    for (const [u, name] of units) if (ns >= u && ns % u === 0) return ns / u + name;
    return ns + 'ns';
  }
  const tree = document.getElementById('tree');
  const forest = data.tree;
  const procs = []; // {details, parent, files: [{row, text}], text, alerted}
  function fileList(title, cls, files) {
    const d = el('details', 'files');
    add(d, el('summary', null, title + ' (' + files.length + ')'));
    const rows = [];
    for (const f of files) {
      const what = [];
      if (f.opens) what.push(f.opens + ' opens');
      if (f.failed) what.push(f.failed + ' failed');
      if (f.writes) what.push(f.writes + ' writes');
      what.push(...f.operations);
      const row = el('div', 'file ' + cls, time(f.first_ns) + '  ' + f.path + '  (' + what.join(', ') + ')');
      rows.push({ row: row, text: f.path.toLowerCase() });
      add(d, row);
    }
    return [d, rows];
  }
  function proc(i, parent) {
    const n = forest.nodes[i];
    const d = el('details', 'proc');
    d.id = 'p-' + n.pid + '-' + n.start_ns;
    if (n.context) d.classList.add('context');
    const s = el('summary');
    const argv = n.argv.join(' ');
    add(s, el('b', 'pid', n.pid), el('span', 'exe', ' ' + (n.exe || n.comm || '?')), el('span', 'mono', argv ? '  [' + argv + ']' : ''));
    add(s, el('span', 'count', (n.user || 'uid ' + n.uid) + (n.container ? ', container ' + n.container : '')));
    add(s, el('span', 'count', time(n.start_ns) + (n.exit_ns !== null ? ' → ' + time(n.exit_ns) + ' (exit ' + n.exit + ')' : '')));
    add(s, el('span', 'count', n.opens + ' opens'));
    if (n.failed) add(s, el('span', 'count failed', n.failed + ' failed'));
    if (n.writes) add(s, el('span', 'count written', n.writes + ' written'));
    if (n.operations) add(s, el('span', 'count', n.operations + ' other operations'));
    for (const r of n.rules) add(s, el('span', 'badge', r));
    if (n.alerts) d.classList.add('alerted');
    // The whole line on hover: a long argv is cut at the window's edge.
    s.title = s.textContent;
    add(d, s);
    const files = [];
    for (const [title, cls, keep] of [['opened', 'opened', f => f.opens > 0], ['failed', 'failed', f => f.failed > 0], ['written', 'written', f => f.writes > 0]]) {
      const list = n.files.filter(keep);
      if (list.length === 0) continue;
      const [fd, rows] = fileList(title, cls, list);
      add(d, fd);
      files.push(...rows);
    }
    const p = { details: d, parent: parent, files: files, text: [n.pid, n.exe, n.comm, argv, n.user, n.container].join(' ').toLowerCase(), alerted: n.alerts > 0 };
    procs.push(p);
    for (const c of n.children) add(d, proc(c, p).details);
    return p;
  }
  for (const r of forest.roots) add(tree, proc(r, null).details);
  if (forest.nodes.length === 0) add(tree, el('p', null, 'No process in this range.'));

  // Open the way to every process with an alert, and to the one the report is about.
  function reveal(p) {
    for (let q = p.parent; q; q = q.parent) q.details.open = true;
  }
  // Context processes (ancestors of what the range holds) are the way in: shown open.
  for (const p of procs) if (p.alerted || p.details.classList.contains('context')) reveal(p);
  for (const p of procs) if (p.details.classList.contains('context')) p.details.open = true;
  if (procs.length <= 30) for (const p of procs) p.details.open = true;
  const focus = data.focus;
  if (focus && focus.pid !== null) {
    const target = document.getElementById('p-' + focus.pid + '-' + focus.start_ns);
    const p = procs.find(q => q.details === target);
    if (p) {
      p.details.classList.add('focus');
      p.details.open = true;
      reveal(p);
    }
  }

  // ---- Search: a process shows when it or one of its files matches, or a descendant does ----
  const search = document.getElementById('search');
  const matches = document.getElementById('matches');
  function filter() {
    const q = search.value.trim().toLowerCase();
    let shownProcs = 0, shownFiles = 0;
    for (const p of procs) p.hit = false;
    for (const p of procs) {
      let fileHit = false;
      for (const f of p.files) {
        const hit = q === '' || f.text.includes(q);
        f.row.classList.toggle('hidden', !hit);
        if (hit) { shownFiles++; fileHit = true; }
      }
      if (q === '' || p.text.includes(q) || fileHit) {
        for (let a = p; a && !a.hit; a = a.parent) a.hit = true;
        if (q !== '') reveal(p);
        if (q !== '' && fileHit) {
          p.details.open = true;
          for (const fd of p.details.querySelectorAll(':scope > details.files')) fd.open = true;
        }
      }
    }
    for (const p of procs) {
      p.details.classList.toggle('hidden', !p.hit);
      if (p.hit) shownProcs++;
    }
    matches.textContent = q === '' ? procs.length + ' processes' : shownProcs + ' processes, ' + shownFiles + ' files match';
  }
  search.addEventListener('input', filter);
  filter();
  document.getElementById('expand').addEventListener('click', () => { for (const p of procs) p.details.open = true; });
  document.getElementById('collapse').addEventListener('click', () => { for (const p of procs) p.details.open = false; });

  // ---- Timeline: a canvas of the buckets in view; wheel and buttons zoom, drag pans ----
  const tl = data.timeline || { bucket_ns: 0, buckets: [], gaps: [] };
  const holder = document.getElementById('timeline');
  const canvas = el('canvas');
  add(holder, canvas);
  const tip = el('div', 'hint');
  add(holder, tip);
  const windowText = document.getElementById('timeline-window');
  const buckets = tl.buckets;
  for (const gap of tl.gaps) add(notices, el('li', null, gap.what + ': ' + time(gap.from_ns) + ' to ' + time(gap.to_ns)));
  let view = [0, buckets.length]; // bucket indexes in view, [from, to)
  function draw() {
    const w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = w * devicePixelRatio;
    canvas.height = h * devicePixelRatio;
    const g = canvas.getContext('2d');
    g.scale(devicePixelRatio, devicePixelRatio);
    g.clearRect(0, 0, w, h);
    const [a, b] = view;
    if (b <= a) {
      windowText.textContent = 'no events in this range';
      return;
    }
    const n = b - a;
    let max = 1;
    for (let i = a; i < b; i++) max = Math.max(max, buckets[i].events);
    const bw = w / n, top = 14, base = h - 16;
    for (let i = a; i < b; i++) {
      const k = buckets[i], x = (i - a) * bw;
      if (k.lost || k.outage) {
        g.fillStyle = 'rgba(243,167,18,.45)';
        g.fillRect(x, top, Math.max(bw, 1), base - top);
      }
      const eh = (base - top) * k.events / max;
      g.fillStyle = '#4a78b5';
      g.fillRect(x, base - eh, Math.max(bw - 1, 1), eh);
      if (k.failures) {
        const fh = (base - top) * k.failures / max;
        g.fillStyle = '#8e24aa';
        g.fillRect(x, base - fh, Math.max(bw - 1, 1), fh);
      }
      if (k.alerts) {
        g.fillStyle = '#c62828';
        g.fillRect(x, top - 10, Math.max(bw - 1, 2), 8);
      }
    }
    if (data.focus && data.focus.ts_ns) {
      const x = ((data.focus.ts_ns - buckets[a].start_ns) / tl.bucket_ns) * bw;
      g.fillStyle = '#000';
      g.fillRect(x, 0, 2, h);
    }
    g.fillStyle = '#555';
    g.font = '10px sans-serif';
    g.fillText(time(buckets[a].start_ns), 2, h - 3);
    const last = time(buckets[b - 1].start_ns + tl.bucket_ns);
    g.fillText(last, w - g.measureText(last).width - 2, h - 3);
    g.fillText('max ' + max + ' events per ' + span(tl.bucket_ns), 2, top + 10);
    windowText.textContent = n + ' of ' + buckets.length + ' buckets of ' + span(tl.bucket_ns) + '; ' + tl.events + ' events, ' + tl.failures + ' failed, ' + tl.alerts + ' alerts' + (tl.lost ? ', ' + tl.lost + ' lost' : '');
  }
  function zoom(factor, centre) {
    const [a, b] = view;
    const n = b - a;
    if (n <= 0) return;
    const m = Math.min(buckets.length, Math.max(Math.min(4, buckets.length), Math.round(n * factor)));
    const c = centre === undefined ? (a + b) / 2 : centre;
    let na = Math.round(c - (c - a) * m / n);
    na = Math.max(0, Math.min(buckets.length - m, na));
    view = [na, na + m];
    draw();
  }
  function indexAt(evt) {
    const r = canvas.getBoundingClientRect();
    return view[0] + Math.floor((evt.clientX - r.left) / r.width * (view[1] - view[0]));
  }
  canvas.addEventListener('wheel', evt => { evt.preventDefault(); zoom(evt.deltaY < 0 ? 0.5 : 2, indexAt(evt)); });
  let drag = null;
  canvas.addEventListener('mousedown', evt => { drag = { x: evt.clientX, view: view.slice() }; });
  window.addEventListener('mouseup', () => { drag = null; });
  canvas.addEventListener('mousemove', evt => {
    if (drag) {
      const per = canvas.getBoundingClientRect().width / (drag.view[1] - drag.view[0]);
      const shift = Math.round((drag.x - evt.clientX) / per);
      const n = drag.view[1] - drag.view[0];
      const a = Math.max(0, Math.min(buckets.length - n, drag.view[0] + shift));
      view = [a, a + n];
      draw();
      return;
    }
    const k = buckets[indexAt(evt)];
    if (k) tip.textContent = time(k.start_ns) + ': ' + k.events + ' events, ' + k.failures + ' failed, ' + k.alerts + ' alerts' + (k.lost ? ', ' + k.lost + ' lost' : '') + (k.outage ? ', no recorder running' : '');
  });
  document.getElementById('zoom-in').addEventListener('click', () => zoom(0.5));
  document.getElementById('zoom-out').addEventListener('click', () => zoom(2));
  document.getElementById('zoom-reset').addEventListener('click', () => { view = [0, buckets.length]; draw(); });
  window.addEventListener('resize', draw);
  draw();

  // ---- Evidence ----
  const ev = data.evidence;
  const dl = document.getElementById('evidence-list');
  function item(k, v, cls) { add(dl, el('dt', null, k), el('dd', cls, v)); }
  item('verify', ev.verified ? 'intact: ' + ev.segments + ' sealed segments and their hash chain check out' : 'FAILED: ' + ev.problems.length + ' problem(s)', ev.verified ? 'ok' : 'bad');
  item('chain head', ev.head || '(none)');
  if (ev.unchained) item('unchained', ev.unchained + ' segments sealed before tamper evidence (checked on their own)');
  if (ev.active) item('active', ev.active + ' segments still being written (not yet in the chain)');
  item('store', ev.store);
  item('command', ev.command.join(' '));
  item('version', 'open-forensics ' + ev.version);
  item('generated', ev.generated);
  const problems = document.getElementById('verify-problems');
  for (const p of ev.problems) add(problems, el('li', 'bad', p));
})();
