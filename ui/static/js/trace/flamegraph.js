// Flame graph (icicle, time-ordered like Jaeger's): x is time, y is depth, one box per span,
// drawn on a canvas so that 100,000 spans cost no DOM. Click selects, double-click zooms.

import {fmtDuration} from '../util.js';

const ROW = 18;
const MAX_CANVAS = 30000;

export class FlameGraph {
  constructor(model, colors, {onSelect, onZoom}) {
    this.m = model;
    this.colors = colors;
    this.onSelect = onSelect;
    this.onZoom = onZoom;
    this.v0 = 0;
    this.v1 = 1;
    this.selected = -1;
    this.el = document.createElement('div');
    this.el.className = 'flame';
    this.canvas = document.createElement('canvas');
    this.tip = document.createElement('div');
    this.tip.className = 'chart-tip';
    this.tip.hidden = true;
    this.el.append(this.canvas, this.tip);
    this.canvas.addEventListener('click', (e) => { const i = this.hit(e); if (i >= 0) this.onSelect(i); });
    this.canvas.addEventListener('dblclick', (e) => {
      const i = this.hit(e);
      if (i >= 0) this.onZoom(this.m.start[i] / this.m.total, (this.m.start[i] + this.m.duration[i]) / this.m.total);
    });
    this.canvas.addEventListener('mousemove', (e) => this.hover(e));
    this.canvas.addEventListener('mouseleave', () => { this.tip.hidden = true; });
    this.ro = new ResizeObserver(() => this.draw());
    this.ro.observe(this.el);
  }

  dispose() { this.ro.disconnect(); }

  setRange(v0, v1) { this.v0 = v0; this.v1 = v1; this.draw(); }

  select(i) { this.selected = i; this.draw(); }

  x(t, w) { return ((t / this.m.total - this.v0) / (this.v1 - this.v0)) * w; }

  draw() {
    if (!this.el.isConnected || this.el.offsetParent === null) return;
    const w = this.el.clientWidth - 2;
    const rows = Math.min(this.m.maxDepth + 1, Math.floor(MAX_CANVAS / ROW));
    const hgt = rows * ROW;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(hgt * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${hgt}px`;
    const ctx = this.canvas.getContext('2d');
    ctx.scale(dpr, dpr);
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    const {n, start, duration, depth, service, name, status, names} = this.m;
    for (let i = 0; i < n; i++) {
      if (depth[i] >= rows) continue;
      const x0 = this.x(start[i], w);
      const x1 = this.x(start[i] + duration[i], w);
      if (x1 < 0 || x0 > w) continue;
      const bw = Math.max(x1 - x0, 0.5);
      const y = depth[i] * ROW;
      ctx.fillStyle = status[i] === 2 ? '#e5484d' : this.colors[service[i]];
      ctx.fillRect(x0, y, bw, ROW - 1);
      if (i === this.selected) {
        ctx.strokeStyle = '#111';
        ctx.lineWidth = 2;
        ctx.strokeRect(x0 + 1, y + 1, Math.max(bw - 2, 1), ROW - 3);
      }
      if (bw > 36) {
        const cx = Math.max(x0, 0) + 3;
        const room = Math.min(x1, w) - cx - 3;
        if (room > 20) {
          ctx.fillStyle = '#111';
          ctx.save();
          ctx.beginPath();
          ctx.rect(cx, y, room, ROW);
          ctx.clip();
          ctx.fillText(names[name[i]], cx, y + ROW / 2);
          ctx.restore();
        }
      }
    }
  }

  hit(e) {
    const r = this.canvas.getBoundingClientRect();
    const px = e.clientX - r.left;
    const d = Math.floor((e.clientY - r.top) / ROW);
    const w = r.width;
    const {n, start, duration, depth} = this.m;
    let best = -1;
    for (let i = 0; i < n; i++) {
      if (depth[i] !== d) continue;
      const x0 = this.x(start[i], w);
      const x1 = Math.max(this.x(start[i] + duration[i], w), x0 + 0.5);
      if (px >= x0 - 1 && px <= x1 + 1) { best = i; if (px >= x0 && px <= x1) break; }
    }
    return best;
  }

  hover(e) {
    const i = this.hit(e);
    if (i < 0) { this.tip.hidden = true; return; }
    const m = this.m;
    this.tip.textContent = `${m.services[m.service[i]]}: ${m.names[m.name[i]]} · ${fmtDuration(m.duration[i])} (self ${fmtDuration(m.self[i])})`;
    this.tip.hidden = false;
    const r = this.el.getBoundingClientRect();
    this.tip.style.left = `${Math.min(e.clientX - r.left + 12, r.width - this.tip.offsetWidth - 4)}px`;
    this.tip.style.top = `${e.clientY - r.top + this.el.scrollTop + 14}px`;
  }
}
