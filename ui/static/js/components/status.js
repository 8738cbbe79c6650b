// Loading indicators, error messages and empty states, so that no page is ever blank.

import {h} from '../util.js';

/** Show a spinner in ``el`` if the work takes longer than a blink; call the result when done. */
export function loading(el, text = 'Loading…', delay = 120) {
  const node = h('div', {class: 'loading', role: 'status'}, h('span', {class: 'spinner'}), text);
  const timer = setTimeout(() => el.append(node), delay);
  return () => {
    clearTimeout(timer);
    node.remove();
  };
}

export function errorBox(err, retry) {
  const msg = err && err.message ? err.message : String(err);
  return h('div', {class: 'message error', role: 'alert'},
    h('strong', null, 'Error: '), msg,
    retry ? h('button', {class: 'btn small', onclick: retry, style: {marginLeft: '12px'}}, 'Retry') : null);
}

export function emptyState(title, hint) {
  return h('div', {class: 'empty'}, h('div', {class: 'empty-title'}, title), hint ? h('div', {class: 'empty-hint'}, hint) : null);
}

/** Run ``work()`` with a loading indicator in ``el``; on failure show the error there. */
export async function withLoading(el, work, text) {
  const done = loading(el, text);
  try {
    return await work();
  } catch (e) {
    if (e.name !== 'AbortError') el.append(errorBox(e));
    throw e;
  } finally {
    done();
  }
}
