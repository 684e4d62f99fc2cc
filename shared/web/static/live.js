// One live stream per tab (server-sent events), multiplexing every change the page shows.
// Each event is numbered by its ticket history row; on reconnect the browser's Last-Event-ID
// (or our `after=` when we open the stream again ourselves) makes the server replay what this
// tab missed. A change refreshes the page's live regions (htmx, hx-select-oob), coalesced.
(() => {
  "use strict";
  const body = document.body;
  const base = body.dataset.stream;
  const status = document.getElementById("live-status");
  const log = document.getElementById("live-log");
  let last = Number(body.dataset.seq || 0);
  let source = null;
  let refresh = null;

  const say = (text, state) => {
    if (status) {
      status.textContent = text;
      status.dataset.state = state;
    }
  };

  function changed(event) {
    const seq = Number(event.lastEventId);
    if (!(seq > last)) return; // already seen (a replay overlapping the page's own render)
    last = seq;
    const data = JSON.parse(event.data);
    if (log) {
      const item = document.createElement("li");
      item.dataset.seq = String(seq);
      item.dataset.ticket = data.ticket;
      item.textContent = `#${seq} ${data.ticket} ${data.action} · ${data.actor}`;
      log.prepend(item);
      while (log.children.length > 200) log.lastElementChild.remove();
    }
    // Trailing-edge coalescing: one refresh for a burst, and always one after the last event.
    if (refresh === null) {
      refresh = setTimeout(() => {
        refresh = null;
        htmx.trigger(body, "tq:change");
      }, 250);
    }
  }

  function connect() {
    if (!base) return;
    const url = `${base}${base.includes("?") ? "&" : "?"}after=${last}`;
    source = new EventSource(url);
    source.addEventListener("change", changed);
    source.onopen = () => say("live", "live");
    source.onerror = () => {
      say("reconnecting…", "down");
      if (source && source.readyState === EventSource.CLOSED) {
        source = null;
        setTimeout(connect, 1000); // the browser gave up: open it again from `last`
      }
    };
  }

  window.tqLive = {
    get last() {
      return last;
    },
    pause() {
      if (source) source.close();
      source = null;
      say("paused", "down");
    },
    resume() {
      if (!source) connect();
    },
  };
  connect();

  // SLA countdowns: the server's time left when the region was rendered, counted down here.
  const fmt = (seconds) => {
    const sign = seconds < 0 ? "-" : "";
    let rest = Math.round(Math.abs(seconds));
    const h = Math.floor(rest / 3600);
    rest %= 3600;
    const m = Math.floor(rest / 60);
    const s = rest % 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h ? `${sign}${h}h${pad(m)}m` : `${sign}${m}m${pad(s)}s`;
  };
  const tick = () => {
    const now = performance.now();
    document.querySelectorAll("[data-left]").forEach((el) => {
      if (!el.dataset.t0) el.dataset.t0 = String(now);
      const left = Number(el.dataset.left) - (now - Number(el.dataset.t0)) / 1000;
      el.textContent = fmt(left);
      el.classList.toggle("overdue", left < 0);
    });
  };
  setInterval(tick, 1000);
  tick();
})();
