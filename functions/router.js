import cf from 'cloudfront';
// Viewer-request router (cloudfront-js-2.0): picks the release that serves a request and
// rewrites the URI into that release's folder. The renderer inserts `const SITE` (mode, entry)
// after the import line and drops comment-only lines, so comment here freely.
//
// Names shared with the Python side; tests/unit/test_contract.py checks them against
// hosting_toolkit/contract.py, so keep them as plain literals declared once.
const ROUTING_KEY = 'routing';
const RELEASE_COOKIE = '__release';
const RELEASES_PREFIX = 'releases/';
const RELEASE_HEADER = 'x-release';
const MAX_URI_LENGTH = 1024;
// Release id alphabet: the first character must be one of the first 36 (contract.RELEASE_ID_PATTERN).
const ID_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789._-';
// Encoded dot, slash, backslash and control characters (checked on the lowercased URI).
const ENCODED = ['%2e', '%2f', '%5c', '%0', '%1', '%7f'];
const kvs = cf.kvs();

function validId(id) {
  if (typeof id !== 'string' || id.length < 1 || id.length > 40 || id.indexOf('..') >= 0) return false;
  for (let i = 0; i < id.length; i++) {
    const k = ID_CHARS.indexOf(id[i]);
    if (k < 0 || (i === 0 && k > 35)) return false;
  }
  return true;
}

// Plain string checks only: no regular expression ever runs on viewer input.
function safePath(uri) {
  if (typeof uri !== 'string' || uri.length > MAX_URI_LENGTH || uri[0] !== '/') return false;
  for (let i = 0; i < uri.length; i++) {
    const c = uri.charCodeAt(i);
    if (c < 32 || c === 127 || c === 92) return false;
  }
  const lower = uri.toLowerCase();
  for (let i = 0; i < ENCODED.length; i++) {
    if (lower.indexOf(ENCODED[i]) >= 0) return false;
  }
  const segments = uri.split('/');
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i];
    // An empty segment is only allowed last (a trailing slash).
    if (s === '.' || s === '..' || (s === '' && i < segments.length - 1)) return false;
  }
  return true;
}

// The release engine writes an alias `a/index.html` when a static build only has `a.html`,
// so the mapping never has to know which files exist.
function mapPath(uri) {
  const last = uri.slice(uri.lastIndexOf('/') + 1);
  if (last.indexOf('.') >= 0) return uri;
  if (SITE.mode === 'static') return last === '' ? uri + 'index.html' : uri + '/index.html';
  return '/' + SITE.entry;
}

// Order of precedence (DESIGN 3.4): preview token, pinned cookie, canary cohort, live.
// A page navigation always gets the live release, so one write switches every viewer at once;
// only the assets a page asks for follow its pin (skew protection), while the pin is retained.
function chooseRelease(request, state, page) {
  if (!state || !validId(state.live)) return null;
  const cookie = request.cookies && request.cookies[RELEASE_COOKIE];
  const pinned = cookie ? cookie.value : '';
  const pins = Array.isArray(state.pins) ? state.pins : [];
  if (!page && validId(pinned) && pins.indexOf(pinned) >= 0) return pinned;
  return state.live;
}

// Responses the router generates never reach the viewer-response function, so they name
// their (absent) release themselves.
function reply(statusCode, type, body) {
  const headers = { 'content-type': { value: type }, 'cache-control': { value: 'no-store' } };
  headers[RELEASE_HEADER] = { value: 'none' };
  return { statusCode: statusCode, headers: headers, body: body };
}

const NOT_LIVE_PAGE = '<!doctype html><meta charset="utf-8"><title>Not published yet</title>' +
  '<h1>This site is not published yet</h1><p>No release is live. Please try again in a few minutes.</p>';

async function handler(event) {
  const request = event.request;
  if (!safePath(request.uri)) {
    return reply(400, 'text/plain; charset=utf-8', 'Bad request path.\n');
  }
  let state = null;
  try {
    // The one KVS read of the common path.
    state = await kvs.get(ROUTING_KEY, { format: 'json' });
  } catch (e) {
    // A missing key throws: nothing was ever activated, so answer 503 below.
  }
  const path = mapPath(request.uri);
  const release = chooseRelease(request, state, path.slice(-5) === '.html');
  if (!release) {
    return reply(503, 'text/html; charset=utf-8', NOT_LIVE_PAGE);
  }
  request.uri = '/' + RELEASES_PREFIX + release + path;
  return request;
}
