// Service map: services as nodes (layered left to right by call depth), calls as edges with
// request counts and error rates. Clicking a node opens that service's dashboard.

import {getJSON} from '../api.js';
import {navigate, setQuery} from '../router.js';
import {s} from '../components/svg.js';
import {emptyState, errorBox, loading} from '../components/status.js';
import {rangeFromParams, rangeLabel, rangeToApi, rangeToUrl, timeRangePicker} from '../components/timerange.js';
import {fmtCount, h, pct, serviceColor, serviceHref} from '../util.js';

const NODE_W = 180;
const NODE_H = 50;
const COL_GAP = 300;
const ROW_GAP = 78;

/** Connected groups of services laid out one below the other, largest first. */
export function layout(nodes, edges) {
  const group = new Map(nodes.map((n) => [n.name, n.name]));
  const find = (x) => { while (group.get(x) !== x) { group.set(x, group.get(group.get(x))); x = group.get(x); } return x; };
  for (const e of edges) group.set(find(e.parent), find(e.child));
  const members = new Map();
  for (const n of nodes) {
    const g = find(n.name);
    if (!members.has(g)) members.set(g, []);
    members.get(g).push(n);
  }
  const parts = [...members.values()].sort((a, b) => b.length - a.length || a[0].name.localeCompare(b[0].name));
  const pos = new Map();
  const back = new Set();
  let top = 0;
  let width = 0;
  for (const part of parts) {
    const names = new Set(part.map((n) => n.name));
    const sub = layoutGroup(part, edges.filter((e) => names.has(e.parent)));
    for (const [name, p] of sub.pos) pos.set(name, {...p, y: p.y + top});
    sub.back.forEach((b) => back.add(b));
    top += sub.height + 10;
    width = Math.max(width, sub.width);
  }
  return {pos, back, width, height: top};
}

/** Layers by longest path from the callers, ignoring the edges that close cycles. */
function layoutGroup(nodes, edges) {
  const names = nodes.map((n) => n.name);
  const out = new Map(names.map((n) => [n, []]));
  for (const e of edges) if (e.parent !== e.child) out.get(e.parent).push(e.child);
  const state = new Map();
  const back = new Set();
  const visit = (v) => {
    state.set(v, 1);
    for (const w of out.get(v)) {
      if (state.get(w) === 1) back.add(`${v}\u0000${w}`);
      else if (!state.get(w)) visit(w);
    }
    state.set(v, 2);
  };
  const incoming = new Set(edges.map((e) => e.child));
  [...names.filter((n) => !incoming.has(n)), ...names].forEach((n) => { if (!state.get(n)) visit(n); });
  const layer = new Map(names.map((n) => [n, 0]));
  // Longest path over the DAG by relaxation (graphs here are small).
  for (let pass = 0; pass < names.length; pass++) {
    let changed = false;
    for (const e of edges) {
      if (e.parent === e.child || back.has(`${e.parent}\u0000${e.child}`)) continue;
      if (layer.get(e.child) < layer.get(e.parent) + 1) { layer.set(e.child, layer.get(e.parent) + 1); changed = true; }
    }
    if (!changed) break;
  }
  const columns = [];
  for (const n of names) (columns[layer.get(n)] ||= []).push(n);
  const pos = new Map();
  columns.forEach((col, c) => {
    if (c > 0) {
      // Order by the mean position of callers (fewer crossings).
      const score = (n) => {
        const ys = edges.filter((e) => e.child === n && pos.has(e.parent)).map((e) => pos.get(e.parent).y);
        return ys.length ? ys.reduce((x, y) => x + y, 0) / ys.length : 1e9;
      };
      col.sort((x, y) => score(x) - score(y));
    }
    col.forEach((n, r) => pos.set(n, {x: 30 + c * COL_GAP, y: 30 + r * ROW_GAP, col: c}));
  });
  const tallest = Math.max(...columns.map((c) => c.length));
  for (const col of columns) {
    const shift = ((tallest - col.length) * ROW_GAP) / 2;
    for (const n of col) pos.get(n).y += shift;
  }
  return {pos, back, width: 60 + (columns.length - 1) * COL_GAP + NODE_W, height: 60 + (tallest - 1) * ROW_GAP + NODE_H};
}

export function render(root, {params}) {
  let range = rangeFromParams(params);
  const out = h('div');
  const picker = timeRangePicker(range, (r) => { range = r; setQuery(rangeToUrl(r)); load(); }, {compact: true});
  root.append(h('div', {class: 'map-bar'}, h('h2', {style: {margin: 0}}, 'Service map'), picker,
    h('span', {class: 'note'}, 'Edges: calls from one service to another, with their error rate. Click a service for its dashboard.')), out);
  let seq = 0;

  async function load() {
    const my = ++seq;
    out.replaceChildren();
    const done = loading(out, 'Loading dependencies…');
    try {
      const graph = await getJSON('/dependencies', rangeToApi(range));
      done();
      if (my === seq) draw(graph);
    } catch (e) {
      done();
      if (my === seq) out.append(errorBox(e, load));
    }
  }

  function draw(graph) {
    if (!graph.nodes.length) {
      out.append(emptyState(`No calls between services in the ${rangeLabel(range)}`, 'Widen the time range.'));
      return;
    }
    const {pos, back, width, height} = layout(graph.nodes, graph.edges);
    const maxCalls = Math.max(...graph.edges.map((e) => e.callCount), 1);
    const svg = s('svg', {width, height, role: 'img', 'aria-label': 'Service map'});
    svg.append(s('defs', {}, s('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse'},
      s('path', {d: 'M0,0 L10,5 L0,10 z', fill: '#8f9ab0'}))));
    const edgeEls = [];
    for (const e of graph.edges) {
      const a = pos.get(e.parent);
      const b = pos.get(e.child);
      const isBack = back.has(`${e.parent}\u0000${e.child}`) || b.col <= a.col;
      const x1 = a.x + NODE_W;
      const y1 = a.y + NODE_H / 2;
      const x2 = b.x;
      const y2 = b.y + NODE_H / 2;
      let d;
      let lx;
      let ly;
      if (e.parent === e.child) {
        d = `M${a.x + NODE_W - 30},${a.y} C${a.x + NODE_W + 10},${a.y - 40} ${a.x + NODE_W + 40},${a.y + 10} ${a.x + NODE_W},${a.y + 14}`;
        lx = a.x + NODE_W + 8; ly = a.y - 18;
      } else if (isBack) {
        const low = Math.max(a.y, b.y) + NODE_H + 30;
        d = `M${a.x + NODE_W / 2},${a.y + NODE_H} C${a.x + NODE_W / 2},${low} ${b.x + NODE_W / 2},${low} ${b.x + NODE_W / 2},${b.y + NODE_H}`;
        lx = (a.x + b.x + NODE_W) / 2; ly = low - 6;
      } else {
        const dx = Math.max((x2 - x1) / 2, 40);
        d = `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
        lx = (x1 + x2) / 2; ly = (y1 + y2) / 2 - 4;
      }
      const w = 1.2 + (3.5 * Math.log10(e.callCount + 1)) / Math.log10(maxCalls + 1);
      const err = e.errorRate > 0;
      const g = s('g', {class: 'map-edge-g', 'data-parent': e.parent, 'data-child': e.child},
        s('path', {d, class: `map-edge${err ? ' err' : ''}`, 'stroke-width': w, 'marker-end': 'url(#arrow)'},
          s('title', {}, `${e.parent} → ${e.child}: ${e.callCount} calls, ${e.errorCount} errors (${pct(e.errorRate)})`)),
        s('text', {x: lx, y: ly, class: `map-edge-label${err ? ' err' : ''}`, 'text-anchor': 'middle'},
          `${fmtCount(e.callCount)}${err ? ` · ${pct(e.errorRate)} err` : ''}`));
      edgeEls.push(g);
      svg.append(g);
    }
    const nodeEls = [];
    for (const n of graph.nodes) {
      const p = pos.get(n.name);
      const errRate = n.callsIn ? n.errorsIn / n.callsIn : 0;
      const label = n.name.length > 24 ? `${n.name.slice(0, 23)}…` : n.name;
      const sub = n.callsIn ? `${fmtCount(n.callsIn)} calls in${n.errorsIn ? ` · ${pct(errRate)} err` : ''}` : `${fmtCount(n.callsOut)} calls out`;
      const g = s('g', {class: 'map-node', transform: `translate(${p.x},${p.y})`, 'data-service': n.name, tabindex: 0, role: 'link'},
        s('rect', {width: NODE_W, height: NODE_H, rx: 8, stroke: serviceColor(n.name)}),
        s('rect', {width: 8, height: NODE_H, rx: 3, fill: serviceColor(n.name), stroke: 'none'}),
        s('text', {x: 16, y: 21, 'font-weight': 600}, label, s('title', {}, n.name)),
        s('text', {x: 16, y: 38, class: `sub${n.errorsIn ? ' err' : ''}`}, sub));
      g.addEventListener('click', () => navigate(serviceHref(n.name, rangeToUrl(range))));
      g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') navigate(serviceHref(n.name, rangeToUrl(range))); });
      g.addEventListener('mouseenter', () => focus(n.name));
      g.addEventListener('mouseleave', () => focus(null));
      nodeEls.push(g);
      svg.append(g);
    }
    function focus(name) {
      const near = new Set([name]);
      for (const e of graph.edges) if (e.parent === name || e.child === name) { near.add(e.parent); near.add(e.child); }
      nodeEls.forEach((el) => el.classList.toggle('map-dim', !!name && !near.has(el.dataset.service)));
      edgeEls.forEach((el) => el.classList.toggle('map-dim', !!name && el.dataset.parent !== name && el.dataset.child !== name));
    }
    out.append(h('div', {class: 'map-wrap'}, svg));
  }

  load();
  return () => { seq++; };
}
