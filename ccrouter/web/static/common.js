// ccrouter pages: the token comes from the URL fragment (#token=...) once, then sessionStorage.
"use strict";
const ccr = (() => {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) { sessionStorage.setItem("ccrouter_token", decodeURIComponent(m[1])); history.replaceState(null, "", location.pathname + location.search); }
  const token = sessionStorage.getItem("ccrouter_token") || "";
  async function api(method, path, body) {
    const opts = { method, headers: { "Authorization": "Bearer " + token } };
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    const r = await fetch(path, opts);
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error((data.field ? data.field + ": " : "") + (data.message || r.status));
    return data;
  }
  function stream(path, handlers, onState) {
    const es = new EventSource(path + (path.includes("?") ? "&" : "?") + "access_token=" + encodeURIComponent(token));
    for (const [name, fn] of Object.entries(handlers)) es.addEventListener(name, (e) => fn(JSON.parse(e.data)));
    es.onopen = () => onState && onState(true);
    es.onerror = () => onState && onState(false);
    return es;
  }
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const k of kids) e.append(k === null || k === undefined ? "" : k);
    return e;
  }
  const pct = (x) => x === null || x === undefined ? "—" : Math.round(x * 100) + "%";
  const secs = (x) => x === null || x === undefined ? "—" : (x >= 60 ? Math.floor(x / 60) + ":" + String(Math.round(x % 60)).padStart(2, "0") : Math.round(x) + "s");
  const time = (ts) => ts ? new Date(ts * 1000).toLocaleString() : "";
  return { token, api, stream, el, pct, secs, time };
})();
