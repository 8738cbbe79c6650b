// Small helpers shared by every page: DOM building, formatting, colours, durations, links.

/** Build an element: h('a', {href, class, onclick}, child, [children], 'text'). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k in el && typeof v !== 'string') el[k] = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const ESC = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'};
export const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ESC[c]);

// --- durations and times (nanoseconds) ---------------------------------------------------------

export function fmtDuration(ns) {
  if (ns === null || ns === undefined || Number.isNaN(ns)) return '–';
  const a = Math.abs(ns);
  const sign = ns < 0 ? '-' : '';
  if (a < 1e3) return `${sign}${Math.round(a)}ns`;
  if (a < 1e6) return `${sign}${trim(a / 1e3)}µs`;
  if (a < 1e9) return `${sign}${trim(a / 1e6)}ms`;
  if (a < 60e9) return `${sign}${trim(a / 1e9)}s`;
  if (a < 3600e9) return `${sign}${Math.floor(a / 60e9)}m ${Math.round((a % 60e9) / 1e9)}s`;
  return `${sign}${Math.floor(a / 3600e9)}h ${Math.round((a % 3600e9) / 60e9)}m`;
}

function trim(x) {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Local date and time of Unix ns, to the millisecond. */
export function fmtTime(ns) {
  const d = new Date(Number(ns) / 1e6);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function fmtClock(ns, withSeconds = true) {
  const d = new Date(Number(ns) / 1e6);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}` + (withSeconds ? `:${pad(d.getSeconds())}` : '');
}

export function fmtAgo(ns) {
  const s = (Date.now() - Number(ns) / 1e6) / 1000;
  if (s < 60) return `${Math.max(0, Math.round(s))}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

const UNITS = {ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9, d: 86400e9};

/** "1.5s", "250ms", "100us", "1h30m" -> nanoseconds; null when empty; NaN when malformed. */
export function parseDuration(text) {
  const t = String(text ?? '').trim();
  if (!t) return null;
  if (/^\d+$/.test(t)) return Number(t) * 1e6; // a bare number means milliseconds in the forms
  const re = /(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h|d)/gy;
  let total = 0;
  let m;
  let consumed = 0;
  while ((m = re.exec(t)) !== null) {
    total += parseFloat(m[1]) * UNITS[m[2]];
    consumed = re.lastIndex;
  }
  return consumed === t.length ? total : NaN;
}

export const pct = (x, digits = 1) => (x === null || x === undefined ? '–' : `${(x * 100).toFixed(digits)}%`);

export function fmtCount(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(n >= 1e5 ? 0 : 1)}k`;
  return String(n);
}

export function fmtRate(perSecond) {
  if (!perSecond) return '0/s';
  if (perSecond >= 1) return `${perSecond >= 100 ? perSecond.toFixed(0) : perSecond.toFixed(1)}/s`;
  const perMin = perSecond * 60;
  return perMin >= 1 ? `${perMin.toFixed(1)}/min` : `${(perMin * 60).toFixed(1)}/h`;
}

// --- colours -----------------------------------------------------------------------------------

// Tableau-like palette without the reds, which mean "error" everywhere in the UI.
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#9c755f', '#d37295',
  '#499894', '#86bcb6', '#b6992d', '#a0cbe8', '#8cd17d', '#ffbe7d', '#79706e', '#d4a6c8', '#f1ce63', '#9d7660'];

const colourCache = new Map();

/** A stable colour per service name, the same on every page. */
export function serviceColor(name) {
  let c = colourCache.get(name);
  if (c) return c;
  let hash = 2166136261;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 16777619);
  }
  c = PALETTE[(hash >>> 0) % PALETTE.length];
  colourCache.set(name, c);
  return c;
}

// --- links -------------------------------------------------------------------------------------

export function queryString(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.append(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const traceHref = (id, params = {}) => `/trace/${encodeURIComponent(id)}${queryString(params)}`;
export const serviceHref = (name, params = {}) => `/service/${encodeURIComponent(name)}${queryString(params)}`;
export const opHref = (service, op) => serviceHref(service, {operation: op});

export function traceLink(id, text) {
  return h('a', {href: traceHref(id), class: 'mono', title: `Open trace ${id}`}, text ?? id);
}

export function serviceLink(name, extraClass = '') {
  return h('a', {href: serviceHref(name), class: `svc-link ${extraClass}`, title: `Dashboard of ${name}`},
    h('i', {class: 'chip', style: {background: serviceColor(name)}}), name);
}

export function opLink(service, op) {
  return h('a', {href: opHref(service, op), title: `Dashboard of ${service}: ${op}`}, op);
}

export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** About ``count`` round values covering [lo, hi]. */
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Download ``text`` as a file (used where a plain link cannot name the file). */
export function saveText(name, text, type = 'application/json') {
  const url = URL.createObjectURL(new Blob([text], {type}));
  const a = h('a', {href: url, download: name});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
