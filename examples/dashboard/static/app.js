// eventbus live dashboard: plain browser JavaScript, no dependencies.
//
// It loads history from /api/events, then streams /ws (the wsbridge wire
// protocol: {"type":"ready"|"reset"|"event"|"ack"|"error"|"dropped", ...}).
// After a lost connection it reconnects with from=<last Seq + 1> and the
// epoch those Seqs belong to, so the store fills the gap; when the server's
// numbering started again (a restart on a memory store) the server answers
// "reset", and the page says so, forgets its Seqs and reloads the history.
// Event data is only ever put into the page as text.
'use strict';

(() => {
  const MAX_ROWS = 200;        // table rows kept
  const MAX_SEQS = 20000;      // Seqs remembered for de-duplication and tests
  const CHART_SECONDS = 60;
  const HISTORY = 200;         // events loaded from the store
  const MAX_PAYLOAD = 4000;    // payload characters shown in a row

  const $ = (id) => document.getElementById(id);
  const el = {
    status: $('status'), statusText: $('status-text'),
    total: $('stat-total'), rate: $('stat-rate'), seq: $('stat-seq'), gaps: $('stat-gaps'), reconnects: $('stat-reconnects'),
    form: $('filter-form'), filter: $('filter'), apply: $('apply'), pause: $('pause'), clear: $('clear'),
    filterError: $('filter-error'), store: $('store'), chart: $('chart'), types: $('types'), typesTotal: $('types-total'),
    tbody: document.querySelector('#events tbody'), empty: $('empty'), pausedNote: $('paused-note'),
  };

  // state is exposed as window.__dash for tests and the curious.
  const state = {
    status: 'connecting',  // connecting | live | reconnecting | offline
    closeReason: '',
    filter: '*',           // the pattern the connection holds
    pending: null,         // {pattern, old, id} while a filter change waits for its ack
    historyLoading: false,
    canResume: false,      // the store answered, so from= works
    cursor: 0,             // highest Seq received or covered by the history: the resume point
    epoch: '',             // the server's Seq numbering that cursor belongs to
    gen: 0,                // how many resets the page has seen; orders rows of earlier numberings below
    resets: 0,
    gapBase: 0,            // highest Seq received for the current filter (gap detection, "*" only)
    seqs: [],              // Seqs received over the WebSocket, in arrival order
    total: 0, gaps: 0, dropped: 0, reconnects: 0, failures: 0,
    counts: new Map(),     // event type -> count
    paused: false, held: [],
    lastError: '',
  };
  window.__dash = state;

  const seen = new Set();  // Seqs received (bounded by MAX_SEQS)
  const seenOrder = [];
  const buckets = new Map(); // unix second -> events with that timestamp
  let ws = null;
  let backoff = 250;
  let retryTimer = 0;
  let connectedOnce = false;
  let nextID = 1;
  let dirty = true;        // types need drawing

  // ---- patterns: the bus's semantics, '*' any run (dots included), '?' one char.
  const globCache = new Map();
  function globMatch(pattern, topic) {
    let re = globCache.get(pattern);
    if (!re) {
      const src = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
      re = new RegExp('^' + src + '$');
      if (globCache.size > 50) globCache.clear();
      globCache.set(pattern, re);
    }
    return re.test(topic);
  }

  // ---- status
  function setStatus(s, detail) {
    state.status = s;
    el.status.dataset.state = s;
    const text = {
      connecting: 'connecting…',
      live: 'live',
      reconnecting: 'reconnecting…',
      offline: 'offline · retrying',
    }[s];
    el.statusText.textContent = text;
    el.status.title = detail || '';
    renderStats();
  }

  // ---- WebSocket
  function wsURL() {
    const u = new URL('ws', location.href);
    u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    u.searchParams.append('pattern', state.filter);
    if (state.canResume) {
      u.searchParams.set('from', String(state.cursor + 1));
      if (state.epoch) u.searchParams.set('epoch', state.epoch);
    }
    return u;
  }

  function connect() {
    clearTimeout(retryTimer);
    setStatus(connectedOnce ? (state.failures >= 3 ? 'offline' : 'reconnecting') : 'connecting', state.closeReason);
    const url = wsURL();
    const sock = new WebSocket(url);
    sock.resuming = url.searchParams.has('from');
    ws = sock;
    sock.onmessage = (m) => {
      if (ws !== sock) return;
      let msg;
      try { msg = JSON.parse(m.data); } catch { return; }
      onMessage(msg, sock);
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      onClose(ev);
    };
  }

  function send(msg) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }

  function onClose(ev) {
    state.closeReason = ev.code ? `closed ${ev.code}${ev.reason ? ': ' + ev.reason : ''}` : 'connection failed';
    state.failures++;
    if (state.pending) {
      // The new connection will ask for the new pattern directly.
      const p = state.pending.pattern;
      state.pending = null;
      applyFilter(p);
    }
    setStatus(state.failures >= 3 ? 'offline' : 'reconnecting', state.closeReason);
    retryTimer = setTimeout(() => { state.reconnects++; renderStats(); connect(); }, backoff);
    backoff = Math.min(backoff * 2, 3000);
  }

  function onMessage(m, sock) {
    switch (m.type) {
      case 'ready':
        connectedOnce = true;
        state.failures = 0;
        backoff = 250;
        setStatus('live', 'patterns: ' + (m.patterns || []).join(', '));
        if (!state.epoch) state.epoch = m.epoch || '';
        else if (m.epoch && m.epoch !== state.epoch && !sock.resuming) resetNumbering(m.epoch);
        // A resuming connection whose epoch differs gets a reset next.
        break;
      case 'reset':
        resetNumbering(m.epoch || '');
        break;
      case 'event':
        accept(m.event, true);
        break;
      case 'ack':
        if (state.pending && m.id === state.pending.id) {
          const { pattern, old } = state.pending;
          state.pending = null;
          if (old !== pattern) send({ op: 'unsubscribe', pattern: old });
          applyFilter(pattern);
        }
        break;
      case 'error':
        state.lastError = m.error || 'error';
        if (state.pending && m.id === state.pending.id) {
          state.pending = null;
          showFilterError(m.error);
        }
        break;
      case 'dropped':
        state.dropped += m.count || 0;
        state.gaps += m.count || 0;
        renderStats();
        break;
    }
  }

  // ---- events
  function remember(seq) {
    seen.add(seq);
    seenOrder.push(seq);
    if (seenOrder.length > MAX_SEQS) seen.delete(seenOrder.shift());
  }

  // resetNumbering: the server numbers its events anew (it restarted on a
  // memory store, or the page's Seq was beyond its last). The page says so
  // in a row, forgets the Seqs it knew (they name other events now) and
  // loads the new server's history; rows of the old numbering stay below.
  function resetNumbering(epoch) {
    state.epoch = epoch;
    state.resets++;
    state.gen++;
    state.cursor = 0;
    state.gapBase = 0;
    seen.clear();
    seenOrder.length = 0;
    addNotice('server restarted — numbering reset · older rows below are from before');
    renderStats();
    loadHistory(state.filter);
  }

  function accept(e, live) {
    if (!e || !globMatch(state.filter, e.topic)) return; // e.g. in flight for the old pattern
    if (e.seq && seen.has(e.seq)) return; // e.g. both in the history and live
    let gap = 0;
    if (e.seq) {
      remember(e.seq);
      if (live && state.filter === '*' && state.gapBase && e.seq > state.gapBase + 1) {
        gap = e.seq - state.gapBase - 1;
        state.gaps += gap;
      }
      state.gapBase = Math.max(state.gapBase, e.seq);
      state.cursor = Math.max(state.cursor, e.seq);
    }
    if (live) {
      state.seqs.push(e.seq);
      if (state.seqs.length > MAX_SEQS) state.seqs.splice(0, state.seqs.length - MAX_SEQS);
    }
    state.total++;
    state.counts.set(e.event_type, (state.counts.get(e.event_type) || 0) + 1);
    const sec = Math.floor(Date.parse(e.timestamp) / 1000);
    if (!Number.isNaN(sec)) buckets.set(sec, (buckets.get(sec) || 0) + 1);
    if (live && state.paused) {
      state.held.push([e, gap]);
      if (state.held.length > MAX_ROWS) state.held.shift();
      el.pausedNote.textContent = `paused · ${num(state.held.length)} new`;
    } else {
      addRow(e, live, gap);
    }
    dirty = true;
    if (gap) renderStats();
  }

  function pad(n, w = 2) { return String(n).padStart(w, '0'); }
  // num formats a count or a Seq with thousands separators, the same everywhere.
  function num(n) { return Number(n).toLocaleString('en-US'); }
  function clock(ts) {
    const d = new Date(ts);
    if (Number.isNaN(d.getTime())) return '';
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }

  function cell(cls, text, title) {
    const td = document.createElement('td');
    td.className = cls;
    td.textContent = text;
    if (title) td.title = title;
    return td;
  }

  // order sorts rows: newest numbering first, then by Seq.
  function order(seq) { return state.gen * 1e12 + seq; }

  // insertRow puts tr in descending order; live events almost always go on top.
  function insertRow(tr) {
    const o = Number(tr.dataset.order);
    let at = el.tbody.firstElementChild;
    while (at && Number(at.dataset.order) > o) at = at.nextElementSibling;
    el.tbody.insertBefore(tr, at);
    while (el.tbody.childElementCount > MAX_ROWS) el.tbody.lastElementChild.remove();
    el.empty.hidden = true;
    renderSeq();
  }

  function addNotice(text) {
    const tr = document.createElement('tr');
    tr.className = 'notice';
    tr.dataset.seq = '0';
    tr.dataset.order = String(order(0));
    const td = document.createElement('td');
    td.colSpan = 6;
    td.textContent = `${clock(new Date().toISOString())}  ${text}`;
    tr.appendChild(td);
    insertRow(tr);
  }

  function addRow(e, live, gap) {
    const tr = document.createElement('tr');
    tr.dataset.seq = String(e.seq || 0);
    tr.dataset.order = String(order(e.seq || 0));
    tr.dataset.topic = e.topic;
    if (!live) tr.className = 'hist';
    else tr.className = 'new';
    if (gap) {
      tr.classList.add('gap');
      tr.title = `${num(gap)} event(s) missed before this one`;
    }
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.dataset.type = e.event_type;
    badge.textContent = e.event_type;
    const typeCell = document.createElement('td');
    typeCell.className = 'c-type';
    typeCell.appendChild(badge);
    const payload = JSON.stringify(e.payload) ?? 'null';
    // The payload wraps (and scrolls within its cell when long): never cut
    // at the column's edge.
    const payloadCell = cell('c-payload', '');
    const pre = document.createElement('div');
    pre.className = 'payload';
    pre.textContent = payload.length > MAX_PAYLOAD ? payload.slice(0, MAX_PAYLOAD) + '…' : payload;
    payloadCell.appendChild(pre);
    const md = e.metadata ? Object.entries(e.metadata).map(([k, v]) => `${k}: ${v}`).join('\n') : '';
    tr.append(
      cell('c-seq', e.seq ? num(e.seq) : ''),
      cell('c-time', clock(e.timestamp), e.timestamp),
      typeCell,
      cell('c-topic', e.topic, e.topic),
      cell('c-source', e.source || '', (e.source || '') + (e.correlation_id ? ' · ' + e.correlation_id : '') + (md ? '\n' + md : '')),
      payloadCell,
    );
    insertRow(tr);
  }

  function clearTable() {
    el.tbody.replaceChildren();
    el.empty.hidden = false;
    renderSeq();
    state.held = [];
    el.pausedNote.hidden = !state.paused;
    el.pausedNote.textContent = 'paused';
  }

  // ---- history
  async function loadHistory(pattern) {
    state.historyLoading = true;
    try {
      const r = await fetch(`api/events?pattern=${encodeURIComponent(pattern)}&limit=${HISTORY}`, { cache: 'no-store' });
      if (!r.ok) return false;
      const body = await r.json();
      if (pattern !== state.filter) return true; // the filter changed meanwhile
      if (body.epoch && state.epoch && body.epoch !== state.epoch) {
        // The server restarted since the page last heard from it: the
        // stream's reconnect will say so and load the history again.
        return false;
      }
      if (body.epoch) state.epoch = body.epoch;
      const events = body.events || [];
      for (let i = events.length - 1; i >= 0; i--) accept(events[i], false);
      // Every matching event up to last_seq is in the answer (or older
      // than all of it): the stream resumes after it.
      state.cursor = Math.max(state.cursor, body.last_seq || 0);
      state.canResume = true;
      return true;
    } catch {
      return false;
    } finally {
      state.historyLoading = false;
      dirty = true;
    }
  }

  // ---- filter
  function showFilterError(msg) {
    el.filter.classList.toggle('invalid', !!msg);
    el.filterError.textContent = msg || '';
  }

  function applyFilter(pattern) {
    state.filter = pattern;
    state.gapBase = 0;
    seen.clear(); // the table starts again, from the history of the new pattern
    seenOrder.length = 0;
    state.counts.clear();
    state.total = 0;
    buckets.clear();
    clearTable();
    el.filter.value = pattern;
    showFilterError('');
    loadHistory(pattern);
    dirty = true;
  }

  el.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = el.filter.value.trim() || '*';
    if (state.pending || (p === state.filter && !el.filter.classList.contains('invalid'))) return;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      applyFilter(p); // the next connection asks for it
      return;
    }
    const id = nextID++;
    state.pending = { pattern: p, old: state.filter, id };
    send({ op: 'subscribe', pattern: p, id });
  });

  el.pause.addEventListener('click', () => {
    state.paused = !state.paused;
    el.pause.setAttribute('aria-pressed', String(state.paused));
    el.pause.textContent = state.paused ? 'Resume' : 'Pause';
    el.pausedNote.hidden = !state.paused;
    el.pausedNote.textContent = 'paused';
    if (!state.paused) {
      for (const [e, gap] of state.held) addRow(e, true, gap);
      state.held = [];
    }
  });

  el.clear.addEventListener('click', () => {
    clearTable();
    state.counts.clear();
    state.total = 0;
    el.filter.value = state.filter;
    showFilterError('');
    dirty = true;
  });

  // ---- rendering: stats, types and chart, a few times a second
  // renderSeq shows the Seq of the top row (none above a reset notice), so
  // LAST SEQ always names the newest row of the table.
  function renderSeq() {
    const top = el.tbody.firstElementChild;
    const seq = top ? Number(top.dataset.seq) : 0;
    el.seq.textContent = seq ? num(seq) : '–';
  }

  function renderStats() {
    el.total.textContent = num(state.total);
    renderSeq();
    el.gaps.textContent = num(state.gaps);
    el.gaps.className = state.gaps ? 'bad' : 'ok';
    el.gaps.title = state.dropped ? `${num(state.dropped)} dropped by the server or no longer stored` : '';
    el.reconnects.textContent = num(state.reconnects);
    if (state.status !== 'live') {
      el.rate.textContent = '—'; // nothing arrives while offline: no rate to show
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    let sum = 0;
    for (let s = now - 5; s < now; s++) sum += buckets.get(s) || 0;
    el.rate.textContent = (sum / 5).toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  }

  function renderTypes() {
    const entries = [...state.counts.entries()].sort((a, b) => b[1] - a[1]);
    const max = entries.length ? entries[0][1] : 1;
    const items = entries.map(([type, n]) => {
      const li = document.createElement('li');
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.dataset.type = type;
      badge.textContent = type;
      const bar = document.createElement('div');
      bar.className = 'bar';
      bar.dataset.type = type;
      const fill = document.createElement('span');
      fill.style.width = `${Math.max(2, (100 * n) / max)}%`;
      bar.appendChild(fill);
      const count = document.createElement('span');
      count.className = 'n';
      count.textContent = num(n);
      li.append(badge, bar, count);
      return li;
    });
    el.types.replaceChildren(...items);
    el.typesTotal.textContent = entries.length ? `· ${entries.length} types` : '';
  }

  function renderChart() {
    const c = el.chart;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);

    const now = Math.floor(Date.now() / 1000);
    const values = [];
    for (let s = now - CHART_SECONDS + 1; s <= now; s++) values.push(buckets.get(s) || 0);
    for (const s of buckets.keys()) if (s < now - 2 * CHART_SECONDS) buckets.delete(s);
    const peak = Math.max(...values, 1);
    const top = niceCeil(peak);

    const left = 46, right = 6, topPad = 8, bottom = 18;
    const pw = w - left - right, ph = h - topPad - bottom;

    // grid and labels
    g.font = '11px ui-monospace, Menlo, Consolas, monospace';
    g.fillStyle = '#5b6878';
    g.strokeStyle = '#1f2933';
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (const f of [0, 0.5, 1]) {
      const y = Math.round(topPad + ph - f * ph) + 0.5;
      g.beginPath(); g.moveTo(left, y); g.lineTo(w - right, y); g.stroke();
      g.fillText(num(Math.round(top * f)), left - 6, y);
    }
    g.textAlign = 'center';
    g.textBaseline = 'top';
    g.fillText('-60s', left + 14, topPad + ph + 4);
    g.fillText('-30s', left + pw / 2, topPad + ph + 4);
    g.fillText('now', w - right - 12, topPad + ph + 4);

    // bars
    const bw = pw / CHART_SECONDS;
    const grad = g.createLinearGradient(0, topPad, 0, topPad + ph);
    grad.addColorStop(0, '#7cc0ff');
    grad.addColorStop(1, '#2a6fd6');
    values.forEach((v, i) => {
      if (!v) return;
      const bh = Math.max(1.5, (v / top) * ph);
      const x = left + i * bw + 1;
      const y = topPad + ph - bh;
      g.fillStyle = i === values.length - 1 ? 'rgba(124,192,255,0.45)' : grad; // the current second is still filling
      roundRect(g, x, y, Math.max(1, bw - 2), bh, Math.min(3, bw / 3));
    });
  }

  function roundRect(g, x, y, w, h, r) {
    g.beginPath();
    g.moveTo(x, y + h);
    g.lineTo(x, y + r);
    g.quadraticCurveTo(x, y, x + r, y);
    g.lineTo(x + w - r, y);
    g.quadraticCurveTo(x + w, y, x + w, y + r);
    g.lineTo(x + w, y + h);
    g.closePath();
    g.fill();
  }

  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  setInterval(() => {
    renderStats();
    renderChart();
    if (dirty) {
      renderTypes();
      dirty = false;
    }
  }, 500);
  window.addEventListener('resize', renderChart);

  // ---- start: server info, history, then the live stream (resuming after the history).
  (async () => {
    try {
      const r = await fetch('api/info', { cache: 'no-store' });
      if (r.ok) {
        const info = await r.json();
        el.store.textContent = `store: ${info.store}${info.demo ? ' · demo' : ''}`;
      }
    } catch { /* the stream still works */ }
    await loadHistory(state.filter);
    connect();
  })();
})();
