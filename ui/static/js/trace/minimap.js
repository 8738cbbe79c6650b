// Minimap of the whole trace (every span one thin line on a canvas) with a zoom window:
// drag on the map to select a time range, drag the window to move it, drag its edges to
// resize it, double-click to reset.

export class Minimap {
  constructor(model, colors, onRange) {
    this.m = model;
    this.colors = colors;
    this.onRange = onRange;
    this.v0 = 0;
    this.v1 = 1;
    this.el = document.createElement('div');
    this.el.className = 'minimap';
    this.el.title = 'Drag to zoom into a time range; double-click to reset';
    this.canvas = document.createElement('canvas');
    this.win = document.createElement('div');
    this.win.className = 'mm-window';
    this.win.innerHTML = '<span class="mm-handle left"></span><span class="mm-handle right"></span>';
    this.shadeL = document.createElement('div');
    this.shadeR = document.createElement('div');
    this.shadeL.className = this.shadeR.className = 'mm-shade';
    this.el.append(this.canvas, this.shadeL, this.shadeR, this.win);
    this.el.addEventListener('pointerdown', (e) => this.onDown(e));
    this.el.addEventListener('dblclick', () => this.set(0, 1));
    this.ro = new ResizeObserver(() => this.draw());
    this.ro.observe(this.el);
  }

  dispose() { this.ro.disconnect(); }

  draw() {
    const w = this.el.clientWidth;
    const hgt = this.el.clientHeight;
    if (!w || !hgt) return;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(hgt * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${hgt}px`;
    const ctx = this.canvas.getContext('2d');
    ctx.scale(dpr, dpr);
    const {n, start, duration, service, total} = this.m;
    const rowH = Math.max(hgt / n, 0.5);
    const lineH = Math.max(Math.min(rowH * 0.8, 6), 1);
    // One fill colour at a time: group rows by service first.
    const byService = this.colors.map(() => []);
    for (let i = 0; i < n; i++) byService[service[i]].push(i);
    byService.forEach((rows, k) => {
      ctx.fillStyle = this.colors[k];
      for (const i of rows) {
        const x = (start[i] / total) * w;
        ctx.fillRect(x, (i / n) * hgt, Math.max((duration[i] / total) * w, 1), lineH);
      }
    });
    this.place();
  }

  set(v0, v1, notify = true) {
    const min = 1e-6;
    v0 = Math.min(Math.max(v0, 0), 1 - min);
    v1 = Math.min(Math.max(v1, v0 + min), 1);
    this.v0 = v0;
    this.v1 = v1;
    this.place();
    if (notify) this.onRange(v0, v1);
  }

  place() {
    const full = this.v0 <= 0 && this.v1 >= 1;
    this.win.hidden = full;
    this.shadeL.style.width = `${this.v0 * 100}%`;
    this.shadeR.style.left = `${this.v1 * 100}%`;
    this.shadeR.style.right = '0';
    this.shadeL.hidden = this.shadeR.hidden = full;
    this.win.style.left = `${this.v0 * 100}%`;
    this.win.style.width = `${(this.v1 - this.v0) * 100}%`;
  }

  onDown(e) {
    if (e.button !== 0) return;
    const rect = this.el.getBoundingClientRect();
    const frac = (x) => Math.min(Math.max((x - rect.left) / rect.width, 0), 1);
    const at = frac(e.clientX);
    const v0 = this.v0;
    const v1 = this.v1;
    let mode = 'new';
    if (e.target.classList.contains('mm-handle')) mode = e.target.classList.contains('left') ? 'left' : 'right';
    else if (e.target === this.win) mode = 'move';
    this.el.setPointerCapture(e.pointerId);
    const move = (ev) => {
      const x = frac(ev.clientX);
      if (mode === 'move') {
        const w = v1 - v0;
        const s = Math.min(Math.max(v0 + x - at, 0), 1 - w);
        this.set(s, s + w);
      } else if (mode === 'left') this.set(Math.min(x, v1 - 0.001), v1);
      else if (mode === 'right') this.set(v0, Math.max(x, v0 + 0.001));
      else if (Math.abs(x - at) > 0.002) this.set(Math.min(x, at), Math.max(x, at));
    };
    const up = () => {
      this.el.removeEventListener('pointermove', move);
      this.el.removeEventListener('pointerup', up);
    };
    this.el.addEventListener('pointermove', move);
    this.el.addEventListener('pointerup', up);
    e.preventDefault();
  }
}
