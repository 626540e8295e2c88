// The Cortex Hub status page: renders /api/status/stream (server-sent
// events, once a second) and the order events and alerts of the
// notification service (WebSocket, falling back to server-sent events).
// No inline code and no other origin: the Hub's CSP allows only this file.
"use strict";

const $ = (id) => document.getElementById(id);

function text(value, digits) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number" && digits !== undefined) return value.toFixed(digits);
  return String(value);
}

function cell(row, value, className) {
  const td = document.createElement("td");
  td.textContent = value;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function fill(id, rows) {
  const body = $(id);
  body.replaceChildren();
  for (const values of rows) {
    const row = document.createElement("tr");
    for (const [value, className] of values) cell(row, value, className);
    body.appendChild(row);
  }
}

function percent(rate) {
  return rate === null || rate === undefined || rate < 0 ? "–" : rate.toFixed(1) + "%";
}

function duration(seconds) {
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return (h ? h + "h " : "") + (h || m ? m + "m " : "") + s + "s";
}

function render(status) {
  $("version").textContent = "v" + status.version;
  $("uptime").textContent = duration(status.uptime_seconds);
  const overall = $("overall");
  overall.textContent = status.health.status;
  overall.className = "badge " + status.health.status;

  const http = status.http || {};
  $("http-rate").textContent = text(http.requests_per_second, 1);
  $("http-p50").textContent = http.p50_ms == null ? "–" : http.p50_ms.toFixed(2) + " ms";
  $("http-p99").textContent = http.p99_ms == null ? "–" : http.p99_ms.toFixed(2) + " ms";
  $("http-errors").textContent = text(http.server_errors_per_second, 2);
  $("http-total").textContent = text(http.requests_total);

  fill("health", status.health.checks.map((check) => [
    [check.name], [check.status, check.status], [check.output || ""],
  ]));

  const resilience = status.resilience;
  fill("breakers", resilience.circuit_breakers.map((b) => [
    [b.name], [b.state, b.state], [percent(b.failure_rate)],
    [String(b.successful_calls_total + b.failed_calls_total)], [String(b.not_permitted_calls)],
  ]));
  const limits = resilience.bulkheads.map((b) => [
    ["bulkhead " + b.name], [b.in_flight + " / " + b.max_concurrent_calls],
    [percent((100 * b.in_flight) / Math.max(1, b.max_concurrent_calls))], [String(b.rejected_total)],
  ]).concat(resilience.rate_limiters.map((l) => [
    ["limiter " + l.name], [l.keys ? l.keys + " keys" : l.available_permissions + " permits left"],
    [""], [String(l.rejected_total)],
  ]));
  fill("limits", limits);
  fill("caches", (resilience.caches || []).map((c) => [
    [c.name], [String(c.entries)], [String(c.hits)], [String(c.misses)],
    [String(c.stale)], [String(c.coalesced)],
  ]));

  const orders = status.orders;
  $("orders-active").textContent = text(orders.orders.active);
  $("orders-completed").textContent = text(orders.orders.completed);
  $("orders-failed").textContent = text(orders.orders.failed);
  $("orders-rate").textContent = orders.per_minute.created + " created · " +
    orders.per_minute.completed + " done · " + orders.per_minute.failed + " failed";
  const paid = orders.processing_seconds.completed;
  $("orders-latency").textContent = paid.p50 == null ? "–" :
    (paid.p50 * 1000).toFixed(0) + " / " + (paid.p99 * 1000).toFixed(0) + " ms";

  const actors = status.actors;
  $("actors-live").textContent = text(actors.system.actors);
  $("actors-messages").textContent = text(actors.system.messages);
  $("actors-mailbox").textContent = text(actors.mailbox_depth);
  $("actors-failures").textContent = text(actors.system.failures);
  $("actors-dead").textContent = text(actors.system.dead_letters);

  const pool = (name, p) => [
    [name], [p.busy + " / " + p.workers], [p.queue_len + " / " + p.queue_capacity],
    [String(p.completed)], [String(p.rejected)], [percent(100 * p.utilization)],
  ];
  fill("pools", [
    pool("compute (threads)", status.workers),
    pool("wasm image", status.wasm.image.workers),
    pool("wasm hostile", status.wasm.hostile.workers),
  ]);

  const n = status.notifications;
  $("notify-ws").textContent = text(n.websocket_connections);
  $("notify-sse").textContent = text(n.sse_connections);
  $("notify-sent").textContent = text(n.sent);
  $("notify-dropped").textContent = text(n.dropped);
}

function connectStatus() {
  const source = new EventSource("/api/status/stream");
  source.addEventListener("status", (event) => render(JSON.parse(event.data)));
  source.onerror = () => { $("overall").textContent = "reconnecting…"; };
}

function showEvent(kind, payload) {
  const list = $("events");
  const item = document.createElement("li");
  const time = new Date().toLocaleTimeString();
  if (kind === "alert") {
    const a = payload.alert;
    item.className = "alert";
    item.textContent = time + "  breaker " + a.name + ": " + a.from + " → " + a.to;
  } else {
    const e = payload.event;
    let detail = "";
    if (e.reason) detail = "  (" + e.reason + ")";
    else if (e.attempts !== undefined) detail = "  (" + e.attempts + " attempt" + (e.attempts === 1 ? "" : "s") + ")";
    else if (e.item !== undefined) detail = "  " + e.quantity + " × " + e.item;
    item.textContent = time + "  order " + e.order_id + " #" + e.seq + " " + e.type + detail;
  }
  list.prepend(item);
  while (list.children.length > 50) list.lastChild.remove();
}

function connectEventsOverSse() {
  $("transport").textContent = "SSE";
  const source = new EventSource("/api/notifications/sse?rooms=orders,alerts");
  for (const kind of ["order", "alert"]) {
    source.addEventListener(kind, (event) => showEvent(kind, JSON.parse(event.data)));
  }
}

function connectEvents() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  let opened = false;
  let socket;
  try {
    socket = new WebSocket(scheme + location.host + "/api/notifications/ws?rooms=orders,alerts");
  } catch (error) {
    connectEventsOverSse();
    return;
  }
  socket.onopen = () => { opened = true; $("transport").textContent = "WebSocket"; };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "order" || message.type === "alert") showEvent(message.type, message);
  };
  socket.onclose = () => {
    if (opened) setTimeout(connectEvents, 1000);
    else connectEventsOverSse();
  };
}

async function act(action) {
  const result = $("action-result");
  const post = (path, body) => fetch(path, {
    method: "POST",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const say = async (what, response) => {
    result.textContent = what + ": HTTP " + response.status;
  };
  switch (action) {
    case "order":
      return say("order placed", await post("/api/orders", { item: "book", quantity: 1 }));
    case "order-10": {
      const responses = await Promise.all(Array.from({ length: 10 }, (_, i) =>
        post("/api/orders", { item: "lamp " + i, quantity: 1 + i })));
      result.textContent = "10 orders: " + responses.map((r) => r.status).join(" ");
      return;
    }
    case "order-declined":
      return say("order placed (to be declined)", await post("/api/orders", { item: "book", fail_payment: true }));
    case "flaky-fail":
      return say("downstream failure rate set to 100%", await fetch("/api/flaky/config?rate=1", { method: "PUT" }));
    case "flaky-heal":
      return say("downstream failure rate set to 0%", await fetch("/api/flaky/config?rate=0", { method: "PUT" }));
    case "flaky-20": {
      const statuses = [];
      for (let i = 0; i < 20; i++) statuses.push((await fetch("/api/flaky")).status);
      result.textContent = "20 calls to /api/flaky: " + statuses.join(" ");
      return;
    }
    case "catalog": {
      const caches = [];
      for (let i = 0; i < 5; i++) {
        const response = await fetch("/api/catalog/" + (1 + (i % 2)));
        caches.push(response.status + " " + (response.headers.get("x-cache") || "?"));
      }
      result.textContent = "5 catalog lookups: " + caches.join(", ");
      return;
    }
    case "catalog-down":
      return say("catalog downstream down: stale answers from the cache", await fetch("/api/catalog/config?down=true", { method: "PUT" }));
    case "catalog-up":
      return say("catalog downstream back", await fetch("/api/catalog/config?down=false", { method: "PUT" }));
    case "compute":
      return say("FNV-1a over 200 000 rounds on the worker pool",
        await fetch("/api/compute/hash?rounds=200000", { method: "POST", body: "cortex" }));
    case "wasm-loop":
      return say("an endless wasm loop, stopped at its deadline",
        await post("/api/compute/hostile?kind=loop"));
    default:
      return undefined;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => {
      act(button.dataset.action).catch((error) => {
        $("action-result").textContent = "failed: " + error;
      });
    });
  }
  connectStatus();
  connectEvents();
});
