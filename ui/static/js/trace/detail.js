// Span detail panel: everything about one span, fetched on demand from the span API.

import {getJSON, isAbort} from '../api.js';
import {errorBox, loading} from '../components/status.js';
import {fmtDuration, fmtTime, h, opLink, pct, serviceLink, traceHref} from '../util.js';

function attrTable(attrs, emptyText = 'none') {
  if (!attrs.length) return h('div', {class: 'muted small'}, emptyText);
  return h('table', {class: 'kv'}, h('tbody', null, attrs.map((a) => h('tr', {dataset: {key: a.key}},
    h('th', {title: a.type}, a.key),
    h('td', {class: a.type === 'string' ? '' : `t-${a.type}`}, a.value)))));
}

function section(title, body, open = true, count) {
  return h('details', {class: 'd-section', open},
    h('summary', null, title, count !== undefined ? h('span', {class: 'count'}, count) : null), body);
}

export class DetailPanel {
  constructor(traceId, {onClose}) {
    this.traceId = traceId;
    this.onClose = onClose;
    this.cache = new Map();
    this.controller = null;
    this.el = h('aside', {class: 'detail', 'aria-label': 'Span detail'});
    this.el.hidden = true;
  }

  async show(spanId, occurrence, traceDurationNs) {
    this.el.hidden = false;
    const key = `${spanId}:${occurrence}`;
    if (this.controller) this.controller.abort();
    this.controller = new AbortController();
    const head = h('div', {class: 'detail-head'},
      h('span', {class: 'mono muted'}, spanId),
      h('button', {class: 'btn small icon', title: 'Close (Esc)', 'aria-label': 'Close detail', onclick: () => this.onClose()}, '✕'));
    const body = h('div', {class: 'detail-body'});
    this.el.replaceChildren(head, body);
    let d = this.cache.get(key);
    if (!d) {
      const done = loading(body);
      try {
        d = await getJSON(`/traces/${this.traceId}/spans/${spanId}`, {occurrence: occurrence || ''},
          {signal: this.controller.signal});
        this.cache.set(key, d);
      } catch (e) {
        done();
        if (!isAbort(e)) body.append(errorBox(e));
        return;
      }
      done();
    }
    body.replaceChildren(...this.content(d, traceDurationNs).filter(Boolean));
  }

  hide() {
    this.el.hidden = true;
    if (this.controller) this.controller.abort();
  }

  content(d, total) {
    const status = d.statusCode === 'error'
      ? h('span', {class: 'status err'}, 'ERROR')
      : h('span', {class: `status ${d.statusCode}`}, d.statusCode.toUpperCase());
    const timing = h('table', {class: 'kv timing'}, h('tbody', null,
      row('Start', `${fmtTime(d.startNs)} (+${fmtDuration(d.startOffsetNs)})`),
      row('Duration', fmtDuration(d.durationNs)),
      row('Self time', `${fmtDuration(d.selfTimeNs)} (${pct(d.durationNs > 0 ? d.selfTimeNs / d.durationNs : 0)} of span)`),
      row('Critical path', d.criticalPathNs ? `${fmtDuration(d.criticalPathNs)} (${pct(d.criticalPathNs / total)} of trace)` : 'not on the critical path'),
      row('Depth', `${d.depth} · ${d.childCount} child${d.childCount === 1 ? '' : 'ren'}`),
      d.parentSpanId ? row('Parent', h('span', {class: 'mono'}, d.parentSpanId)) : row('Parent', 'none (root)'),
      d.traceState ? row('Trace state', d.traceState) : null,
    ));
    const events = d.events.map((e) => h('div', {class: `event${e.name === 'exception' ? ' err' : ''}`},
      h('div', {class: 'event-head'}, h('b', null, e.name), h('span', {class: 'muted'}, ` +${fmtDuration(e.offsetNs)} from span start`)),
      attrTable(e.attributes, 'no attributes')));
    const links = d.links.map((l) => h('div', {class: 'link'},
      l.stored
        ? h('a', {href: traceHref(l.traceId, {span: l.spanId}), class: 'mono', title: 'Open the linked trace'}, `${l.traceId} / ${l.spanId}`)
        : h('span', {class: 'mono muted', title: 'The linked trace is not stored'}, `${l.traceId} / ${l.spanId} (not stored)`),
      l.attributes.length ? attrTable(l.attributes) : null));
    const dropped = [['attributes', d.droppedAttributesCount], ['events', d.droppedEventsCount], ['links', d.droppedLinksCount]]
      .filter(([, n]) => n > 0).map(([what, n]) => `${n} ${what} dropped by the SDK`);
    return [
      h('div', {class: 'detail-title'},
        h('div', {class: 'detail-op'}, opLink(d.service, d.operation)),
        h('div', {class: 'detail-sub'}, serviceLink(d.service), h('span', {class: 'kind'}, d.kind), status)),
      d.statusMessage ? h('div', {class: 'message status-msg small', 'data-testid': 'status-message'}, d.statusMessage) : null,
      d.warnings.length ? h('div', {class: 'message warn small'}, d.warnings.map((w) => h('div', null, w))) : null,
      dropped.length ? h('div', {class: 'message warn small'}, dropped.join('; ')) : null,
      section('Timing', timing),
      section('Attributes', h('div', {class: 'span-attributes'}, attrTable(d.attributes)), true, d.attributes.length),
      section('Events', events.length ? events : h('div', {class: 'muted small'}, 'none'), true, d.events.length),
      section('Links', links.length ? links : h('div', {class: 'muted small'}, 'none'), d.links.length > 0, d.links.length),
      section('Resource', attrTable(d.resource.attributes), false, d.resource.attributes.length),
      section('Scope', h('div', null,
        h('div', {class: 'small'}, d.scope.name ? `${d.scope.name} ${d.scope.version}` : h('span', {class: 'muted'}, 'unnamed')),
        d.scope.attributes.length ? attrTable(d.scope.attributes) : null), false),
    ];
  }
}

function row(label, value) {
  return h('tr', null, h('th', null, label), h('td', null, value));
}
