// SVG building and axis helpers for the hand-written charts.

const NS = 'http://www.w3.org/2000/svg';

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A chart tooltip that follows the pointer inside ``host`` (position: relative). */
export function tooltip(host) {
  const tip = document.createElement('div');
  tip.className = 'chart-tip';
  tip.hidden = true;
  host.append(tip);
  return {
    show(html, x, y) {
      tip.innerHTML = html;
      tip.hidden = false;
      const w = host.clientWidth;
      const tw = tip.offsetWidth;
      tip.style.left = `${Math.min(Math.max(0, x + 12), w - tw - 4)}px`;
      tip.style.top = `${Math.max(0, y - tip.offsetHeight - 8)}px`;
    },
    hide() { tip.hidden = true; },
  };
}

/** Round time ticks (ms) for an axis of ``count`` labels. */
export function timeTicks(loMs, hiMs, count = 6) {
  const span = hiMs - loMs;
  const steps = [1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3,
    10800e3, 21600e3, 43200e3, 86400e3, 172800e3];
  const step = steps.find((st) => span / st <= count) || steps[steps.length - 1];
  const tz = new Date(loMs).getTimezoneOffset() * 60e3;
  const out = [];
  for (let t = Math.ceil((loMs - tz) / step) * step + tz; t <= hiMs; t += step) out.push(t);
  return {ticks: out, step};
}

export function timeLabel(ms, step) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  if (step >= 86400e3) return `${d.getMonth() + 1}/${d.getDate()}`;
  if (step < 60e3) return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  return `${p(d.getHours())}:${p(d.getMinutes())}`;
}
