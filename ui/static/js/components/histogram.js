// Latency histogram on log-spaced buckets; errors stacked in red; clicking a bar reports it.

import {esc, fmtDuration, niceTicks} from '../util.js';
import {s, tooltip} from './svg.js';

/** ``buckets``: [{lowerNs, upperNs, count, errorCount}]; ``onClick(index)``. */
export function histogram({title, buckets, onClick, height = 170, marks = []}) {
  const host = document.createElement('div');
  host.className = 'chart histogram';
  const head = document.createElement('div');
  head.className = 'chart-title';
  head.innerHTML = `<span>${esc(title)}</span><span class="legend"><i style="background:#6b8fd6"></i>ok</span>` +
    '<span class="legend"><i style="background:#d92d20"></i>errors</span>';
  host.append(head);
  const tip = tooltip(host);
  const draw = () => {
    host.querySelector('svg')?.remove();
    const width = Math.max(host.clientWidth, 200);
    const m = {l: 44, r: 10, t: 8, b: 22};
    const max = Math.max(1, ...buckets.map((b) => b.count));
    const n = buckets.length;
    const bw = (width - m.l - m.r) / Math.max(n, 1);
    const Y = (v) => height - m.b - (v / max) * (height - m.t - m.b);
    const svg = s('svg', {width, height, role: 'img', 'aria-label': title});
    for (const v of niceTicks(0, max, 3)) {
      if (v !== Math.round(v)) continue;
      svg.append(s('line', {x1: m.l, x2: width - m.r, y1: Y(v), y2: Y(v), class: 'grid'}),
        s('text', {x: m.l - 6, y: Y(v) + 4, class: 'axis', 'text-anchor': 'end'}, v));
    }
    const labelEvery = Math.max(1, Math.ceil(70 / bw));
    buckets.forEach((b, i) => {
      const x = m.l + i * bw;
      const ok = b.count - b.errorCount;
      const g = s('g', {class: 'bucket', 'data-index': i});
      g.append(s('rect', {x: x + 1, y: m.t, width: Math.max(bw - 2, 1), height: height - m.t - m.b, class: 'hit'}));
      if (ok > 0) g.append(s('rect', {x: x + 1, y: Y(b.count), width: Math.max(bw - 2, 1), height: Y(b.errorCount) - Y(b.count), fill: '#6b8fd6'}));
      if (b.errorCount > 0) g.append(s('rect', {x: x + 1, y: Y(b.errorCount), width: Math.max(bw - 2, 1), height: Y(0) - Y(b.errorCount), fill: '#d92d20'}));
      if (i % labelEvery === 0) svg.append(s('text', {x, y: height - 5, class: 'axis'}, fmtDuration(b.lowerNs)));
      g.addEventListener('mouseenter', () => tip.show(`<b>${fmtDuration(b.lowerNs)} – ${fmtDuration(b.upperNs)}</b><br>` +
        `${b.count} spans, ${b.errorCount} errors` + (onClick && b.count ? '<br><span class="muted">click for example traces</span>' : ''), x, 30));
      g.addEventListener('mouseleave', () => tip.hide());
      if (onClick && b.count) {
        g.style.cursor = 'pointer';
        g.addEventListener('click', () => onClick(i));
      }
      svg.append(g);
    });
    for (const mk of marks) {
      const i = buckets.findIndex((b) => mk.ns >= b.lowerNs && mk.ns < b.upperNs);
      if (i < 0) continue;
      const b = buckets[i];
      const frac = Math.log(mk.ns / Math.max(b.lowerNs, 1)) / Math.log(b.upperNs / Math.max(b.lowerNs, 1));
      const x = m.l + (i + Math.min(Math.max(frac, 0), 1)) * bw;
      svg.append(s('line', {x1: x, x2: x, y1: m.t, y2: height - m.b, class: 'mark'}),
        s('text', {x: x + 3, y: m.t + 10, class: 'axis mark-label'}, mk.label));
    }
    host.append(svg);
  };
  const ro = new ResizeObserver(() => draw());
  ro.observe(host);
  host.dispose = () => ro.disconnect();
  return host;
}
