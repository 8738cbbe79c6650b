// Scatter plot of trace duration against start time; a dot click opens the trace.

import {fmtDuration, fmtTime, esc, niceTicks, serviceColor} from '../util.js';
import {s, tooltip, timeTicks, timeLabel} from './svg.js';

/** ``points``: [{x: ms, y: ns, error, label, id}]; ``onClick(point)``. */
export function scatterPlot(points, {height = 170, onClick} = {}) {
  const host = document.createElement('div');
  host.className = 'chart scatter';
  const tip = tooltip(host);
  const draw = () => {
    host.querySelector('svg')?.remove();
    const width = Math.max(host.clientWidth, 300);
    const m = {l: 58, r: 14, t: 10, b: 24};
    const xs = points.map((p) => p.x);
    let x0 = Math.min(...xs);
    let x1 = Math.max(...xs);
    if (x1 - x0 < 1000) { x0 -= 500; x1 += 500; }
    const y1 = Math.max(...points.map((p) => p.y)) * 1.08 || 1;
    const X = (v) => m.l + ((v - x0) / (x1 - x0)) * (width - m.l - m.r);
    const Y = (v) => height - m.b - (v / y1) * (height - m.t - m.b);
    const svg = s('svg', {width, height, role: 'img', 'aria-label': 'Trace durations over time'});
    for (const v of niceTicks(0, y1, 4)) {
      svg.append(s('line', {x1: m.l, x2: width - m.r, y1: Y(v), y2: Y(v), class: 'grid'}),
        s('text', {x: m.l - 6, y: Y(v) + 4, class: 'axis', 'text-anchor': 'end'}, fmtDuration(v)));
    }
    const {ticks, step} = timeTicks(x0, x1, Math.max(2, Math.floor(width / 110)));
    for (const t of ticks) {
      const x = X(t);
      const anchor = x > width - 40 ? 'end' : x < m.l + 20 ? 'start' : 'middle';
      svg.append(s('text', {x, y: height - 6, class: 'axis', 'text-anchor': anchor}, timeLabel(t, step)));
    }
    for (const p of points) {
      const dot = s('circle', {cx: X(p.x), cy: Y(p.y), r: 5, class: p.error ? 'dot error' : 'dot',
        fill: p.error ? '#d92d20' : serviceColor(p.service || ''), 'data-trace-id': p.id});
      dot.addEventListener('mouseenter', (e) => {
        const r = host.getBoundingClientRect();
        tip.show(`<b>${esc(p.label)}</b><br>${fmtDuration(p.y)} · ${fmtTime(p.x * 1e6)}` +
          (p.error ? '<br><span class="err">has errors</span>' : ''), e.clientX - r.left, e.clientY - r.top);
      });
      dot.addEventListener('mouseleave', () => tip.hide());
      dot.addEventListener('click', () => onClick && onClick(p));
      svg.append(dot);
    }
    host.prepend(svg);
  };
  const ro = new ResizeObserver(() => draw());
  ro.observe(host);
  host.dispose = () => ro.disconnect();
  return host;
}
