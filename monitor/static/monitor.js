"use strict";
// The monitor page: a WebSocket feed of snapshots (see package monitor),
// falling back to polling /snapshot while the socket is down.
(function () {
  const $ = (id) => document.getElementById(id);
  const tbody = document.querySelector("#subs tbody");
  if (window.parent === window && location.pathname !== "/" && location.pathname.endsWith("/")) {
    $("back").hidden = false; // mounted under a prefix, e.g. the dashboard's /monitor/
  }

  function dur(s) {
    if (!s) return "0";
    if (s < 1e-3) return (s * 1e6).toFixed(0) + "µs";
    if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 0) + "ms";
    return s.toFixed(s < 10 ? 2 : 0) + "s";
  }
  const num = (n) => Number(n).toLocaleString("en-US");
  const rate = (r) => (r || 0).toFixed(r >= 10 ? 0 : 1);

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }

  function render(snap) {
    const b = snap.bus;
    $("b-published").textContent = num(b.published);
    $("b-published-rate").textContent = rate(b.published_per_s);
    $("b-delivered-rate").textContent = rate(b.delivered_per_s);
    $("b-dropped").textContent = num(b.dropped);
    $("b-queue").textContent = num(b.queue_depth);
    $("b-subs").textContent = num(b.subscriptions);
    $("b-slow").textContent = num(b.slow);
    $("b-stalled").textContent = num(b.stalled);
    const rows = document.createDocumentFragment();
    for (const s of snap.subscriptions) {
      const tr = document.createElement("tr");
      tr.dataset.id = s.id;
      tr.dataset.name = s.name;
      if (s.stalled) tr.classList.add("stalled");
      if (s.slow) tr.classList.add("slow");
      if (s.why) tr.title = s.why;
      cell(tr, s.name || s.id);
      cell(tr, (s.patterns || []).join(" "));
      cell(tr, s.site);
      cell(tr, num(s.pending) + " / " + num(s.buffer), "n");
      cell(tr, rate(s.delivered_per_s), "n");
      cell(tr, num(s.delivered), "n");
      cell(tr, num(s.dropped), "n");
      cell(tr, s.lagging ? "yes" : "");
      cell(tr, dur(s.latency_p50), "n");
      cell(tr, dur(s.latency_p99), "n");
      cell(tr, dur(s.handler_p50), "n");
      cell(tr, dur(s.handler_p99), "n");
      cell(tr, s.stalled_for ? dur(s.stalled_for) : "", "n");
      cell(tr, s.why || "");
      rows.appendChild(tr);
    }
    tbody.replaceChildren(rows);
  }

  function status(state, text) {
    $("status").dataset.state = state;
    $("status-text").textContent = text;
  }

  let poll = null;
  function startPolling() {
    if (poll) return;
    poll = setInterval(() => {
      fetch("snapshot", { cache: "no-store" }).then((r) => r.json()).then(render).catch(() => {});
    }, 2000);
  }

  let delay = 500;
  function connect() {
    const u = new URL("ws", location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(u);
    ws.onopen = () => {
      delay = 500;
      status("live", "live");
      if (poll) { clearInterval(poll); poll = null; }
    };
    ws.onmessage = (m) => render(JSON.parse(m.data));
    ws.onclose = () => {
      status("down", "reconnecting…");
      startPolling();
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }
  fetch("snapshot", { cache: "no-store" }).then((r) => r.json()).then(render).catch(() => {});
  connect();
})();
