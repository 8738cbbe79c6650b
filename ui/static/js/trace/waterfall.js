// The waterfall: a collapsible span tree against a time axis, virtualised.
//
// Only the rows in (and just around) the viewport exist in the DOM: a fixed pool of row
// elements is re-filled on scroll, and a spacer gives the scroll area its full height. A
// 100,000-span trace therefore costs the same DOM as a 30-span one.

import {esc, fmtDuration, serviceColor} from '../util.js';
import {selfIntervals, visibleRows} from './model.js';

export const ROW_H = 26;
const OVERSCAN = 8;
const MAX_INDENT_PX = 220;

export class Waterfall {
  constructor(model, {onSelect} = {}) {
    this.m = model;
    this.onSelect = onSelect || (() => {});
    this.collapsed = new Uint8Array(model.n);
    this.visible = visibleRows(model, this.collapsed);
    this.posOf = null;
    this.v0 = 0;
    this.v1 = 1;
    this.cpOn = false;
    this.matches = null;
    this.selected = -1;
    this.version = 0;
    this.frame = 0;
    this.onRendered = null;
    this.colors = model.services.map((s) => serviceColor(s));
    this.indent = 14;
    this.maxIndent = MAX_INDENT_PX;

    this.ticks = document.createElement('div');
    this.ticks.className = 'wf-ticks';
    this.header = document.createElement('div');
    this.header.className = 'wf-header';
    this.header.innerHTML = '<div class="wf-h-name">Service &amp; operation</div>';
    this.header.append(this.ticks);
    this.body = document.createElement('div');
    this.body.className = 'wf-body';
    this.body.tabIndex = 0;
    this.body.setAttribute('role', 'tree');
    this.body.setAttribute('aria-label', 'Spans');
    this.spacer = document.createElement('div');
    this.spacer.className = 'wf-spacer';
    this.rowsEl = document.createElement('div');
    this.rowsEl.className = 'wf-rows';
    this.body.append(this.spacer, this.rowsEl);
    this.el = document.createElement('div');
    this.el.className = 'waterfall';
    this.el.append(this.header, this.body);
    this.pool = [];

    this.body.addEventListener('scroll', () => this.schedule(), {passive: true});
    this.rowsEl.addEventListener('click', (e) => this.onClick(e));
    this.ro = new ResizeObserver(() => this.schedule(true));
    this.ro.observe(this.body);
    this.updateSpacer();
    this.drawTicks();
  }

  dispose() {
    this.ro.disconnect();
    cancelAnimationFrame(this.frame);
  }

  // --- state changes ---------------------------------------------------------------------------

  refreshVisible() {
    this.visible = visibleRows(this.m, this.collapsed);
    this.posOf = null;
    this.updateSpacer();
    this.invalidate();
  }

  invalidate() {
    this.version++;
    this.schedule();
  }

  toggle(row, force) {
    if (!this.m.childCount[row]) return;
    this.collapsed[row] = force === undefined ? (this.collapsed[row] ? 0 : 1) : (force ? 1 : 0);
    this.refreshVisible();
  }

  expandAll() {
    this.collapsed.fill(0);
    this.refreshVisible();
  }

  collapseAll() {
    this.expandToLevel(1);
  }

  /** Show ``level`` levels: rows at depth >= level - 1 with children are collapsed. */
  expandToLevel(level) {
    const {depth, childCount, n} = this.m;
    for (let i = 0; i < n; i++) this.collapsed[i] = childCount[i] && depth[i] >= level - 1 ? 1 : 0;
    this.refreshVisible();
  }

  /** Expand every ancestor of ``row`` so that it is visible. */
  reveal(row) {
    let changed = false;
    for (let p = this.m.parent[row]; p >= 0; p = this.m.parent[p]) {
      if (this.collapsed[p]) { this.collapsed[p] = 0; changed = true; }
    }
    if (changed) this.refreshVisible();
  }

  setRange(v0, v1) {
    this.v0 = v0;
    this.v1 = v1;
    this.drawTicks();
    this.invalidate();
  }

  setCriticalPath(on) {
    this.cpOn = on;
    this.el.classList.toggle('cp-on', on);
    this.invalidate();
  }

  setMatches(rows) {
    this.matches = rows;
    this.invalidate();
  }

  select(row, {scroll = true, notify = true} = {}) {
    this.selected = row;
    if (row >= 0) {
      this.reveal(row);
      if (scroll) this.scrollToRow(row);
    }
    this.invalidate();
    if (notify) this.onSelect(row);
  }

  /** Position of ``row`` among the visible rows, or -1. */
  position(row) {
    if (!this.posOf) {
      this.posOf = new Int32Array(this.m.n).fill(-1);
      this.visible.forEach((r, k) => { this.posOf[r] = k; });
    }
    return this.posOf[row];
  }

  scrollToRow(row) {
    const k = this.position(row);
    if (k < 0) return;
    const top = k * ROW_H;
    const h = this.body.clientHeight;
    if (top < this.body.scrollTop + ROW_H) this.body.scrollTop = Math.max(0, top - ROW_H * 2);
    else if (top > this.body.scrollTop + h - ROW_H * 2) this.body.scrollTop = top - h + ROW_H * 3;
  }

  /** The visible row ``delta`` positions away from the selection. */
  step(delta) {
    if (!this.visible.length) return;
    const k = this.selected >= 0 ? this.position(this.selected) : -1;
    const next = k < 0 ? 0 : Math.min(Math.max(k + delta, 0), this.visible.length - 1);
    this.select(this.visible[next]);
  }

  // --- rendering -------------------------------------------------------------------------------

  updateSpacer() {
    this.spacer.style.height = `${this.visible.length * ROW_H}px`;
  }

  drawTicks() {
    const span = (this.v1 - this.v0) * this.m.total;
    const base = this.v0 * this.m.total;
    let html = '';
    for (let k = 0; k <= 4; k++) {
      const cls = k === 0 ? 'first' : k === 4 ? 'last' : '';
      html += `<span class="${cls}" style="left:${k * 25}%">${fmtDuration(base + (span * k) / 4)}</span>`;
    }
    this.ticks.innerHTML = html;
  }

  schedule(resized = false) {
    if (resized) {
      this.version++;
      this.fitIndent();
    }
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.renderRows();
    });
  }

  /** Deep traces and narrow columns indent less per level, so the names stay readable. */
  fitIndent() {
    const nameCol = this.header.firstChild.offsetWidth || 400;
    this.maxIndent = Math.min(MAX_INDENT_PX, nameCol * 0.4);
    this.indent = Math.max(2, Math.min(14, this.maxIndent / Math.max(this.m.maxDepth, 1)));
  }

  renderRows() {
    const height = this.body.clientHeight || 600;
    const need = Math.ceil(height / ROW_H) + OVERSCAN * 2;
    while (this.pool.length < need) {
      const row = document.createElement('div');
      row.className = 'wf-row';
      row.setAttribute('role', 'treeitem');
      this.rowsEl.append(row);
      this.pool.push(row);
    }
    const first = Math.max(0, Math.floor(this.body.scrollTop / ROW_H) - OVERSCAN);
    for (let k = 0; k < this.pool.length; k++) {
      const el = this.pool[k];
      const pos = first + k;
      if (k >= need || pos >= this.visible.length) {
        if (!el.hidden) { el.hidden = true; el._key = ''; }
        continue;
      }
      const row = this.visible[pos];
      const key = `${row}:${this.version}`;
      el.hidden = false;
      el.style.transform = `translateY(${pos * ROW_H}px)`;
      if (el._key !== key) {
        el._key = key;
        this.fillRow(el, row);
      }
    }
    if (this.onRendered) {
      const cb = this.onRendered;
      this.onRendered = null;
      cb();
    }
  }

  fillRow(el, i) {
    const m = this.m;
    const svcName = m.services[m.service[i]];
    const op = m.names[m.name[i]];
    const color = this.colors[m.service[i]];
    const isErr = m.status[i] === 2;
    const onCp = m.cp[i] > 0;
    let cls = 'wf-row';
    if (i === this.selected) cls += ' selected';
    if (isErr) cls += ' error';
    if (onCp) cls += ' on-cp';
    if (this.matches && this.matches.has(i)) cls += ' match';
    if (this.matches && this.matches.size && !this.matches.has(i)) cls += ' no-match';
    el.className = cls;
    el.dataset.row = i;
    el.dataset.spanId = m.spanId[i];
    el.setAttribute('aria-level', m.depth[i] + 1);
    const hasKids = m.childCount[i] > 0;
    if (hasKids) el.setAttribute('aria-expanded', this.collapsed[i] ? 'false' : 'true');
    else el.removeAttribute('aria-expanded');
    const d = m.depth[i];
    const indent = Math.round(Math.min(d * this.indent, this.maxIndent)) + 4;
    const toggle = hasKids
      ? `<button class="wf-toggle" tabindex="-1" aria-label="${this.collapsed[i] ? 'Expand' : 'Collapse'}">${this.collapsed[i] ? '▸' : '▾'}</button>`
      : '<span class="wf-leaf"></span>';
    const hidden = this.collapsed[i] ? `<span class="wf-count" title="hidden descendants">+${m.end[i] - i - 1}</span>` : '';
    const warn = m.warnRows.has(i) ? '<span class="wf-warn" title="has warnings">⚑</span>' : '';

    const range = (this.v1 - this.v0) * m.total;
    const base = this.v0 * m.total;
    const s = m.start[i];
    const dur = m.duration[i];
    const left = ((s - base) / range) * 100;
    const width = (Math.max(dur, 0) / range) * 100;
    let inner = '';
    const rel = (t) => (dur > 0 ? ((t - s) / dur) * 100 : 0);
    if (dur > 0 && width > 0.15) {
      for (const [a, b] of selfIntervals(m, i)) inner += `<i class="wf-self" style="left:${rel(a)}%;width:${rel(b) - rel(a)}%"></i>`;
    } else {
      inner += '<i class="wf-self" style="left:0;width:100%"></i>';
    }
    if (this.cpOn) {
      for (let k = m.cpFirst[i]; k < m.cpFirst[i + 1]; k++) {
        const sec = m.cpOrder[k];
        const a = rel(m.cpStart[sec]);
        inner += `<i class="wf-cp" style="left:${a}%;width:${Math.max(rel(m.cpEnd[sec]) - a, 0.5)}%"></i>`;
      }
    }
    for (let k = m.evFirst[i]; k < m.evFirst[i + 1]; k++) {
      const e = m.evOrder[k];
      inner += `<i class="wf-ev${m.evError[e] ? ' err' : ''}" style="left:${rel(m.evTime[e])}%" title="${esc(m.names[m.evName[e]])} at +${fmtDuration(m.evTime[e] - s)}"></i>`;
    }
    const right = left + width;
    const label = fmtDuration(dur);
    // After the bar when there is room; else inside its end when it is wide; else before it.
    let durAttrs;
    if (right < 80) durAttrs = `style="left:calc(${Math.max(right, 0)}% + 4px)"`;
    else if (width > 30) durAttrs = `style="right:calc(${100 - Math.min(right, 100)}% + 4px)" data-inside="1"`;
    else durAttrs = `style="right:calc(${Math.min(100 - left, 100)}% + 4px)"`;
    const selfLabel = m.childCount[i] ? ` · self ${fmtDuration(m.self[i])}` : '';
    const title = `${svcName}: ${op}\nstart +${fmtDuration(s)} · duration ${fmtDuration(dur)} · self ${fmtDuration(m.self[i])}` +
      (onCp ? `\ncritical path ${fmtDuration(m.cp[i])}` : '');
    el.innerHTML =
      `<div class="wf-name" style="padding-left:${indent}px" title="${esc(`${svcName}: ${op}`)}">${toggle}` +
      `<span class="wf-svc" style="--c:${color}">${esc(svcName)}</span><span class="wf-op">${esc(op)}</span>` +
      `${isErr ? '<span class="wf-err" title="error">!</span>' : ''}${warn}${hidden}</div>` +
      `<div class="wf-tl"><div class="wf-bar" style="left:${left}%;width:${width}%;--c:${color}" title="${esc(title)}">${inner}</div>` +
      `<span class="wf-dur" ${durAttrs}>${label}${selfLabel}</span></div>`;
  }

  onClick(e) {
    const rowEl = e.target.closest('.wf-row');
    if (!rowEl) return;
    const row = Number(rowEl.dataset.row);
    if (e.target.closest('.wf-toggle')) {
      this.toggle(row);
      return;
    }
    this.select(row, {scroll: false});
  }
}
