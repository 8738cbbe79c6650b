// The only way the UI talks to the server: GET requests to its public HTTP API.

import {queryString} from './util.js';

export const API = '/api/spanlake/v1';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function detailMessage(body, status) {
  const d = body && (body.detail ?? body.error?.message ?? body.errors?.map((e) => e.msg).join('; '));
  if (typeof d === 'string') return d;
  if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).slice(1).join('.')}: ${e.msg}`).join('; ');
  return `the server answered ${status}`;
}

/** A response index.html already requested for this URL (used once). */
function takePrefetched(url) {
  const pending = window.__spanlakePrefetch;
  if (!pending || !(url in pending)) return null;
  const res = pending[url];
  delete pending[url];
  return res;
}

/** GET ``path`` (relative to the Spanlake API unless it starts with /api/) as JSON. */
export async function getJSON(path, params = {}, {signal} = {}) {
  const url = (path.startsWith('/api/') ? path : API + path) + queryString(params);
  let res;
  try {
    res = await (takePrefetched(url) || fetch(url, {signal, headers: {Accept: 'application/json'}}));
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'cannot reach the Spanlake server; is it running?');
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    if (res.ok) throw new ApiError(res.status, 'the server sent a response that is not JSON');
  }
  if (!res.ok) throw new ApiError(res.status, detailMessage(body, res.status));
  return body;
}

/** A fetcher that aborts its previous request when called again (search-as-you-type). */
export function latestOnly() {
  let controller = null;
  return (path, params) => {
    if (controller) controller.abort();
    controller = new AbortController();
    return getJSON(path, params, {signal: controller.signal});
  };
}

export const isAbort = (e) => e && e.name === 'AbortError';
