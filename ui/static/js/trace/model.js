// The trace in typed arrays, built once from the API's columnar view.
//
// Rows are in depth-first order, so a span's subtree is the contiguous range
// [row, end[row]) and its children are found by jumping from one subtree end to the next.
// Nothing here is per-span objects: a 100,000-span trace is a few typed arrays.

export function buildModel(doc) {
  const S = doc.spans;
  const n = S.spanId.length;
  const parent = Int32Array.from(S.parent);
  const start = Float64Array.from(S.start);
  const duration = Float64Array.from(S.duration);
  const self = Float64Array.from(S.self);
  const cp = Float64Array.from(S.criticalPath);
  const service = Int32Array.from(S.service);
  const name = Int32Array.from(S.name);
  const kind = Uint8Array.from(S.kind);
  const status = Uint8Array.from(S.status);
  const depth = new Int32Array(n);
  const size = new Int32Array(n).fill(1);
  let maxDepth = 0;
  for (let i = 0; i < n; i++) {
    const p = parent[i];
    if (p >= 0) depth[i] = depth[p] + 1;
    if (depth[i] > maxDepth) maxDepth = depth[i];
  }
  for (let i = n - 1; i >= 0; i--) if (parent[i] >= 0) size[parent[i]] += size[i];
  const end = new Int32Array(n);
  const childCount = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    end[i] = i + size[i];
    if (parent[i] >= 0) childCount[parent[i]]++;
  }
  // Events and critical-path sections, grouped per row (CSR: first[i]..first[i+1]).
  const ev = doc.events;
  const evFirst = csr(n, ev.span);
  const evOrder = order(ev.span, evFirst);
  const cpSec = doc.criticalPath;
  const cpFirst = csr(n, cpSec.span);
  const cpOrder = order(cpSec.span, cpFirst);
  const warnRows = new Set(Object.keys(doc.spanWarnings).map(Number));

  let idIndex = null;
  return {
    doc, n, parent, start, duration, self, cp, service, name, kind, status, depth, end, childCount, maxDepth,
    spanId: S.spanId, services: doc.services, names: doc.names, total: doc.durationNs || 1,
    evFirst, evOrder, evTime: ev.time, evName: ev.name, evError: ev.error,
    cpFirst, cpOrder, cpStart: cpSec.start, cpEnd: cpSec.end, warnRows,
    /** Rows of a span id (several when ids are duplicated). */
    rowsOf(id) {
      if (!idIndex) {
        idIndex = new Map();
        for (let i = 0; i < n; i++) {
          const list = idIndex.get(S.spanId[i]);
          if (list) list.push(i); else idIndex.set(S.spanId[i], [i]);
        }
      }
      return idIndex.get(id) || [];
    },
  };
}

function csr(n, owner) {
  const first = new Int32Array(n + 1);
  for (let k = 0; k < owner.length; k++) first[owner[k] + 1]++;
  for (let i = 0; i < n; i++) first[i + 1] += first[i];
  return first;
}

function order(owner, first) {
  const fill = first.slice(0, -1);
  const out = new Int32Array(owner.length);
  for (let k = 0; k < owner.length; k++) out[fill[owner[k]]++] = k;
  return out;
}

/** Rows shown given the collapsed flags: a collapsed row hides its subtree. */
export function visibleRows(model, collapsed) {
  const out = new Int32Array(model.n);
  let k = 0;
  for (let i = 0; i < model.n;) {
    out[k++] = i;
    i = collapsed[i] ? model.end[i] : i + 1;
  }
  return out.subarray(0, k);
}

/** Children rows of ``i`` (depth-first order makes them subtree-end jumps). */
export function* children(model, i) {
  for (let c = i + 1; c < model.end[i]; c = model.end[c]) yield c;
}

/** Intervals of ``i``'s own time: its interval minus the union of its children (clipped). */
export function selfIntervals(model, i) {
  const s = model.start[i];
  const e = s + model.duration[i];
  const out = [];
  let cursor = s;
  // Children come ordered by start time (the API's row order), so one sweep suffices.
  for (const c of children(model, i)) {
    const cs = Math.max(model.start[c], s);
    const ce = Math.min(model.start[c] + model.duration[c], e);
    if (ce <= cs) continue;
    if (cs > cursor) out.push([cursor, cs]);
    if (ce > cursor) cursor = ce;
  }
  if (cursor < e) out.push([cursor, e]);
  return out;
}

/** Ancestors of ``i``, nearest first. */
export function ancestors(model, i) {
  const out = [];
  for (let p = model.parent[i]; p >= 0; p = model.parent[p]) out.push(p);
  return out;
}
