// Time-series line chart; hovering shows the values of a step, clicking a step reports it.

import {esc, niceTicks} from '../util.js';
import {s, tooltip, timeTicks, timeLabel} from './svg.js';

/**
 * ``times``: step starts (ms); ``series``: [{label, color, values: [number|null]}];
 * ``format(v)`` for the axis and tooltip; ``onClick(index)`` when a step is clicked.
 */
export function lineChart({title, times, series, format, onClick, height = 170, stepMs}) {
  const host = document.createElement('div');
  host.className = 'chart line';
  const head = document.createElement('div');
  head.className = 'chart-title';
  head.innerHTML = `<span>${esc(title)}</span>` + series.map((se) =>
    `<span class="legend"><i style="background:${se.color}"></i>${esc(se.label)}</span>`).join('');
  host.append(head);
  const tip = tooltip(host);
  const draw = () => {
    host.querySelector('svg')?.remove();
    const width = Math.max(host.clientWidth, 200);
    const m = {l: 56, r: 10, t: 8, b: 22};
    const x0 = times[0];
    const x1 = times.length > 1 ? times[times.length - 1] + (stepMs || 0) : x0 + (stepMs || 1000);
    let y1 = 0;
    for (const se of series) for (const v of se.values) if (v !== null && v > y1) y1 = v;
    y1 = y1 > 0 ? y1 * 1.1 : 1;
    const X = (t) => m.l + ((t - x0) / (x1 - x0)) * (width - m.l - m.r);
    const Y = (v) => height - m.b - (v / y1) * (height - m.t - m.b);
    const half = (stepMs || 0) / 2;
    const svg = s('svg', {width, height, role: 'img', 'aria-label': title});
    for (const v of niceTicks(0, y1, 3)) {
      svg.append(s('line', {x1: m.l, x2: width - m.r, y1: Y(v), y2: Y(v), class: 'grid'}),
        s('text', {x: m.l - 6, y: Y(v) + 4, class: 'axis', 'text-anchor': 'end'}, format(v)));
    }
    const {ticks, step} = timeTicks(x0, x1, Math.max(2, Math.floor(width / 90)));
    for (const t of ticks) svg.append(s('text', {x: X(t), y: height - 5, class: 'axis', 'text-anchor': 'middle'}, timeLabel(t, step)));
    for (const se of series) {
      let d = '';
      let pen = false;
      se.values.forEach((v, i) => {
        if (v === null) { pen = false; return; }
        d += `${pen ? 'L' : 'M'}${X(times[i] + half).toFixed(1)},${Y(v).toFixed(1)}`;
        pen = true;
      });
      svg.append(s('path', {d, class: 'series', stroke: se.color}));
      se.values.forEach((v, i) => {
        if (v !== null) svg.append(s('circle', {cx: X(times[i] + half), cy: Y(v), r: 2.2, fill: se.color, class: 'pt'}));
      });
    }
    const rule = s('line', {y1: m.t, y2: height - m.b, class: 'rule', visibility: 'hidden'});
    svg.append(rule);
    const overlay = s('rect', {x: m.l, y: m.t, width: width - m.l - m.r, height: height - m.t - m.b, class: 'overlay'});
    const indexAt = (e) => {
      const r = svg.getBoundingClientRect();
      const t = x0 + ((e.clientX - r.left - m.l) / (width - m.l - m.r)) * (x1 - x0);
      let best = 0;
      times.forEach((ti, i) => { if (Math.abs(ti + half - t) < Math.abs(times[best] + half - t)) best = i; });
      return best;
    };
    overlay.addEventListener('mousemove', (e) => {
      const i = indexAt(e);
      const x = X(times[i] + half);
      rule.setAttribute('x1', x);
      rule.setAttribute('x2', x);
      rule.setAttribute('visibility', 'visible');
      const when = timeLabel(times[i], 1000);
      tip.show(`<b>${when}</b>` + series.map((se) => `<br><i class="sw" style="background:${se.color}"></i>${esc(se.label)}: ` +
        `${se.values[i] === null ? '–' : esc(format(se.values[i]))}`).join('') +
        (onClick ? '<br><span class="muted">click for example traces</span>' : ''), x, 30);
    });
    overlay.addEventListener('mouseleave', () => { rule.setAttribute('visibility', 'hidden'); tip.hide(); });
    overlay.addEventListener('click', (e) => onClick && onClick(indexAt(e)));
    if (onClick) overlay.style.cursor = 'pointer';
    svg.append(overlay);
    host.append(svg);
  };
  const ro = new ResizeObserver(() => draw());
  ro.observe(host);
  host.dispose = () => ro.disconnect();
  return host;
}
