import cf from 'cloudfront';
// [previews]
import crypto from 'crypto';
// [/previews]
// Viewer-request router (cloudfront-js-2.0): picks the release that serves a request and
// rewrites the URI into that release's folder. The renderer inserts `const SITE` (mode, entry,
// cohort lifetimes, compiled rules) after the import line and drops comment-only lines, so
// comment here freely. It keeps the `[rules]` blocks only for sites with rules or a www redirect.
//
// Names shared with the Python side; tests/unit/test_contract.py checks them against
// hosting_toolkit/contract.py, so keep them as plain literals declared once.
const ROUTING_KEY = 'routing';
const PREVIEW_TOKEN_KEY = 'preview-token';
const RELEASE_COOKIE = '__release';
const COHORT_COOKIE = '__cohort';
// The preview query parameter; the preview cookie has the same name.
const PREVIEW_PARAM = '__preview';
const TOKEN_PARAM = '__token';
const PREVIEW_RELEASE_HEADER = 'x-preview-release';
const PREVIEW_TOKEN_HEADER = 'x-preview-token';
// [previews]
// Set on every preview request: the viewer-response function answers it with `noindex`.
const PREVIEW_MARK_HEADER = 'x-hosting-preview';
// A named preview's KVS key is the prefix and its name; the mark tells a name from a release id
// in the preview parameter and cookie (`~pr-42`).
const PREVIEW_KEY_PREFIX = 'preview:';
const PREVIEW_NAME_MARK = '~';
const PRIVATE_PREVIEW = 'Private preview: open its preview link.\n';
// [/previews]
const RELEASES_PREFIX = 'releases/';
const RELEASE_HEADER = 'x-release';
// Tags a static folder asked for without its slash; the viewer-response function redirects it.
const FOLDER_HEADER = 'x-hosting-folder';
// Paths for files (RFC 8615), never for the app's routes: served as they are in spa mode too.
const WELL_KNOWN = '/.well-known/';
const MAX_URI_LENGTH = 1024;
const COHORTS = 10000;
const PREVIEW_COOKIE_ATTRIBUTES = 'Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=3600';
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

// The release engine writes an alias `a/index.html` when a static build only has `a.html` or an
// extensionless file `a`, so the mapping never has to know which files exist.
function mapPath(uri) {
  const last = uri.slice(uri.lastIndexOf('/') + 1);
  if (last.indexOf('.') >= 0) return uri;
  if (SITE.mode === 'static') return last === '' ? uri + 'index.html' : uri + '/index.html';
  return uri.indexOf(WELL_KNOWN) === 0 ? uri : '/' + SITE.entry;
}

// The value of a cookie, query parameter or header field, or '' when absent.
function fieldValue(fields, name) {
  const field = fields[name];
  return field ? field.value : '';
}

// The viewer's cohort, 0..COHORTS-1: from its `__cohort` cookie ("<cohort>.<issued seconds>")
// until the cookie's maximum lifetime, else drawn from the request id. The viewer-response
// function holds the same code, so it issues exactly the cohort this request was routed by.
function cohortOf(event) {
  const p = fieldValue(event.request.cookies, COHORT_COOKIE).split('.');
  if (p.length === 2 && p[0] >= 0 && p[0] < COHORTS && Date.now() / 1000 - p[1] < SITE.cohortMax) return +p[0];
  // FNV-1a (32 bits) with shifts only: cheap, no crypto, the same in every runtime.
  const id = String(event.context.requestId);
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h += (h << 1) + (h << 4) + (h << 7) + (h << 8) + (h << 24);
  }
  return (h >>> 0) % COHORTS;
}

// Compares every character, so the time taken does not tell how much of a guess was right.
function sameToken(a, b) {
  if (!b || a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return d === 0;
}

// The preview token, or '' when none was ever created (then nothing can be previewed).
async function previewSecret() {
  let secret = '';
  try {
    secret = await kvs.get(PREVIEW_TOKEN_KEY);
  } catch (e) {
    // Missing key.
  }
  return secret;
}

// [previews]
// The preview name of a preview host (`<name>.<SITE.previews.domain>`, one DNS label), or ''.
function hostPreview(request) {
  const tail = '.' + SITE.previews.domain;
  const host = fieldValue(request.headers, 'host').toLowerCase();
  const name = host.slice(0, host.length - tail.length);
  return tail.length > 1 && host.slice(-tail.length) === tail && name.indexOf('.') < 0 && validId(name) ? name : '';
}

// A signed link's token, "<expiry unix seconds>-<hex HMAC-SHA256 of '<name>.<expiry>' keyed by
// the preview token>": opens one preview until it expires, without handing out the token.
function signedOk(name, token, secret) {
  const p = token.split('-');
  return p.length === 2 && secret !== '' && Date.now() / 1000 < +p[0] &&
    sameToken(p[1], crypto.createHmac('sha256', secret).update(name + '.' + p[0]).digest('hex'));
}

// A named preview: [mark + name, token, by query, its state] once its key is read and the token
// (unless it is public on its own host) checked against the copy the key holds. A preview host that fails gets its own answer, never
// the production site; on the site's own host a failed ask serves production.
async function namedPreview(ask, named) {
  const name = ask[0].slice(1);
  const fail = (status, text) => (named ? reply(status, 'text/plain; charset=utf-8', text) : null);
  const open = named && SITE.previews.public;
  if (!validId(name)) return fail(404, 'No such preview.\n');
  if (!open && !ask[1]) return fail(401, PRIVATE_PREVIEW);
  let state = null;
  try {
    state = await kvs.get(PREVIEW_KEY_PREFIX + name, { format: 'json' });
  } catch (e) {
    // A missing key throws: the preview was removed, or never opened.
  }
  if (!state || !validId(state.live)) return fail(404, 'No such preview.\n');
  if (!open) {
    // The preview's key holds a copy of the token, so this costs no read; a key written while no
    // token existed has none.
    let secret = state.t;
    if (!secret) secret = await previewSecret();
    if (!sameToken(ask[1], secret) && !signedOk(name, ask[1], secret)) return fail(401, PRIVATE_PREVIEW);
  }
  ask[3] = state;
  return ask;
}
// [/previews]

// A preview is asked for by query (then answered with a redirect that sets the cookie), by the
// headers (tools) or by the cookie ("<id>.<token>"): [id, token, by query]. Only these
// requests read the token key.
async function previewOf(request) {
  const q = request.querystring;
  const h = request.headers;
  const c = fieldValue(request.cookies, PREVIEW_PARAM);
  const k = c.lastIndexOf('.');
  const ask = fieldValue(q, TOKEN_PARAM) ? [fieldValue(q, PREVIEW_PARAM), fieldValue(q, TOKEN_PARAM), true]
    : fieldValue(h, PREVIEW_TOKEN_HEADER) ? [fieldValue(h, PREVIEW_RELEASE_HEADER), fieldValue(h, PREVIEW_TOKEN_HEADER)]
    : [c.slice(0, k), c.slice(k + 1)];
  // [previews]
  // On a preview host the host names the preview; a viewer cannot ask for another one there.
  const named = hostPreview(request);
  if (named) ask[0] = PREVIEW_NAME_MARK + named;
  if (ask[0][0] === PREVIEW_NAME_MARK) return namedPreview(ask, named);
  // [/previews]
  if (!ask[1] || !validId(ask[0])) return null;
  // Awaited on its own line: the runtime takes no `await` inside call arguments.
  const secret = await previewSecret();
  return sameToken(ask[1], secret) ? ask : null;
}

// Order of precedence (DESIGN 3.4): preview token, pinned cookie, canary cohort, live.
// Only the assets a page asks for follow its pin (skew protection) while the pinned release is
// live, canary or retained; page navigations get the canary or live release by cohort.
function chooseRelease(event, state, page) {
  if (!state || !validId(state.live)) return null;
  const canary = validId(state.canary) ? state.canary : '';
  const pinned = fieldValue(event.request.cookies, RELEASE_COOKIE);
  const pinnable = [state.live, canary].concat(Array.isArray(state.pins) ? state.pins : []);
  if (!page && validId(pinned) && pinnable.indexOf(pinned) >= 0) return pinned;
  if (canary && cohortOf(event) < state.weight * COHORTS / 100) return canary;
  return state.live;
}

// Responses the router generates never reach the viewer-response function, so they name
// their (absent) release themselves.
function reply(statusCode, type, body) {
  const headers = { 'content-type': { value: type }, 'cache-control': { value: 'no-store' } };
  headers[RELEASE_HEADER] = { value: 'none' };
  return { statusCode: statusCode, headers: headers, cookies: {}, body: body };
}

function badPath() {
  return reply(400, 'text/plain; charset=utf-8', 'Bad request path.\n');
}

// The viewer's query string (names and values still encoded), without the names in `skip`.
function queryOf(request, skip) {
  const q = request.querystring;
  let query = '';
  for (const name in q) {
    if (skip.indexOf(name) < 0) {
      (q[name].multiValue || [q[name]]).forEach((v) => { query += '&' + name + '=' + v.value; });
    }
  }
  return query.slice(1);
}

function redirect(status, location) {
  const response = reply(status, 'text/plain', '');
  response.headers.location = { value: location };
  return response;
}

// The same path and query without the preview parameters, so the token leaves the address bar.
function previewRedirect(request, ask) {
  const query = queryOf(request, [PREVIEW_PARAM, TOKEN_PARAM]);
  const response = redirect(302, request.uri + (query ? '?' + query : ''));
  response.cookies[PREVIEW_PARAM] = { value: ask[0] + '.' + ask[1], attributes: PREVIEW_COOKIE_ATTRIBUTES };
  return response;
}

// A rule pattern holds one entry per path segment: the text it must equal, 0 for any one non-empty
// segment (`:name`) or 1 for the rest of the path (`*`, last). A target holds literal text and
// capture numbers. Matching compares whole segments of a path safePath accepted.
// What the pattern's placeholders captured in the request's path segments, or null.
function capture(segments, pattern) {
  const found = [];
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    const s = segments[i + 1];
    if (p === 1) {
      found.push(segments.slice(i + 1).join('/'));
      return found;
    }
    if (s === undefined || (p === 0 ? s === '' : s !== p)) return null;
    if (p === 0) found.push(s);
  }
  return segments.length === pattern.length + 1 ? found : null;
}

function fill(target, found) {
  let out = '';
  for (let i = 0; i < target.length; i++) out += typeof target[i] === 'number' ? found[target[i]] : target[i];
  return out;
}

// Browsers may keep a permanent redirect; an hour lets a corrected rule take over soon.
const PERMANENT_REDIRECT_CACHE = 'max-age=3600';
// The viewer's query string is kept, after the target's own query if it has one.
function ruleRedirect(request, status, target) {
  const query = queryOf(request, []);
  const response = redirect(status, query ? target + (target.indexOf('?') < 0 ? '?' : '&') + query : target);
  if (status === 301 || status === 308) response.headers['cache-control'].value = PERMANENT_REDIRECT_CACHE;
  return response;
}

// The first rule of `list` matching `uri`: its redirect response, [path to serve, served as it is
// (no spa or clean-URL mapping), status to serve it with or 0], or null. A rule is [pattern,
// target, status, query conditions, target query, exact, paths left to their files]; what it
// builds passes safePath again, and viewer text in another host's URL only lands in its path.
// A condition is [name, value or 0]: the query parameter must be there (with that value, or any,
// captured after the path's).
function firstRule(request, list, uri, release) {
  for (let i = 0; i < list.length; i++) {
    const r = list[i];
    const found = capture(uri.split('/'), r[0]);
    let ok = found && !(r[6] && r[6].indexOf(uri) >= 0);
    ((ok && r[3]) || []).forEach((c) => {
      const v = fieldValue(request.querystring, c[0]);
      if (!v || (c[1] ? v !== c[1] : !found.push(v))) ok = false;
    });
    if (ok) {
      const target = fill(r[1], found);
      if (target[0] === '/' ? !safePath(target) : target.indexOf('\\') >= 0 || target.indexOf(' ') >= 0) return badPath();
      if (r[2] < 300 || r[2] > 399) return [target, r[5], r[2] > 200 ? r[2] : 0];
      const response = ruleRedirect(request, r[2], r[4] ? target + '?' + r[4] : target);
      response.headers[RELEASE_HEADER].value = release;
      return response;
    }
  }
  return null;
}

// Netlify matches a path with or without its trailing slash alike.
function trim(u) {
  return u.length > 1 && u.slice(-1) === '/' ? u.slice(0, -1) : u;
}

// A release's own rules (its `_redirects` and `_headers`, compiled by
// hosting_toolkit/release/release_rules.py) live under `rules:<id>`, read only for a release the
// routing state marks as having them. Header rules ([pattern, {name: value or null}]) match the
// path the viewer asked for and go to the viewer-response function by value.
const RULES_KEY_PREFIX = 'rules:';
const RELEASE_RULES_HEADER = 'x-hosting-release-rules';

function releaseRules(request, rules, asked, release) {
  const h = {};
  let tag = 0;
  (rules.h || []).forEach((r) => {
    if (!capture(trim(asked).split('/'), r[0])) return;
    for (const n in r[1]) h[n] = h[n] && r[1][n] ? h[n] + ', ' + r[1][n] : r[1][n];
    tag = 1;
  });
  const got = firstRule(request, rules.r || [], trim(request.uri), release) || [request.uri, 0, 0];
  if (got[2] || (tag && !got.statusCode)) request.headers[RELEASE_RULES_HEADER] = { value: JSON.stringify([got[2] || 0, h]) };
  return got;
}

// [rules]
// Site-wide redirect, rewrite and header rules of hosting.toml, compiled at synth time
// (hosting_toolkit/edge/rules.py) into SITE.rules: redirects then rewrites in `r`, as above.
const RULES_HEADER = 'x-hosting-rules';

// Answers the www redirect or the first matching redirect rule; else tags the request with the
// numbers of the header rules matching the path the viewer asked for (the viewer-response function
// only sees the rewritten URI) and returns the path to serve: the first matching rewrite's, or the
// viewer's. Runs before any KVS read.
function applyRules(request) {
  const rules = SITE.rules;
  const uri = request.uri;
  if (rules.www && fieldValue(request.headers, 'host').toLowerCase() === rules.www[0]) {
    return ruleRedirect(request, 301, 'https://' + rules.www[1] + uri);
  }
  const tags = [];
  for (let i = 0; i < rules.headers.length; i++) {
    if (capture(uri.split('/'), rules.headers[i])) tags.push(i);
  }
  // A viewer's own tag must never select header rules.
  delete request.headers[RULES_HEADER];
  if (tags.length) request.headers[RULES_HEADER] = { value: tags.join('.') };
  const got = firstRule(request, rules.r, uri, 'none') || [uri];
  return got.statusCode ? got : got[0];
}
// [/rules]

const NOT_LIVE_PAGE = '<!doctype html><meta charset="utf-8"><title>Not published yet</title>' +
  '<h1>This site is not published yet</h1><p>No release is live. Please try again in a few minutes.</p>';

async function handler(event) {
  const request = event.request;
  const asked = request.uri;
  if (!safePath(asked)) return badPath();
  // [rules]
  const ruled = applyRules(request);
  if (typeof ruled !== 'string') return ruled;
  // [/rules]
  const preview = await previewOf(request);
  // [previews]
  if (preview && preview.statusCode) return preview;
  // [/previews]
  if (preview && preview[2]) return previewRedirect(request, preview);
  // [rules]
  // Rewritten only now, so a preview redirect keeps the address the viewer asked for.
  request.uri = ruled;
  // [/rules]
  let release = preview ? preview[0] : null;
  let state = null;
  // [previews]
  // A named preview is routed by its own state as production is by `routing`: its pages get its
  // release, and the assets they ask for follow their pin (skew protection).
  if (preview && preview[3]) {
    state = preview[3];
    release = chooseRelease(event, state, mapPath(request.uri).slice(-5) === '.html');
  }
  // [/previews]
  if (!release) {
    try {
      // The one KVS read of the common path.
      state = await kvs.get(ROUTING_KEY, { format: 'json' });
    } catch (e) {
      // A missing key throws: nothing was ever activated, so answer 503 below.
    }
    release = chooseRelease(event, state, mapPath(request.uri).slice(-5) === '.html');
  }
  if (!release) {
    return reply(503, 'text/html; charset=utf-8', NOT_LIVE_PAGE);
  }
  // A viewer's own tags must never cause a redirect or choose headers.
  delete request.headers[FOLDER_HEADER];
  delete request.headers[RELEASE_RULES_HEADER];
  let served = [request.uri];
  // One more read, only for a release its state marks as having rules (a release preview has no
  // state read: try its key).
  if (state ? Array.isArray(state.rules) && state.rules.indexOf(release) >= 0 : preview) {
    let rules = null;
    try {
      rules = await kvs.get(RULES_KEY_PREFIX + release, { format: 'json' });
    } catch (e) {
      // A release without rules has no key.
    }
    if (rules) served = releaseRules(request, rules, asked, release);
    if (served.statusCode) return served;
  }
  const path = served[1] ? served[0] : mapPath(served[0]);
  if (path === served[0] + '/index.html') request.headers[FOLDER_HEADER] = { value: served[0] };
  request.uri = '/' + RELEASES_PREFIX + release + path;
  // Tells the viewer-response function the release, whichever URI CloudFront passes it.
  request.headers[RELEASE_HEADER] = { value: release };
  // [previews]
  if (preview) request.headers[PREVIEW_MARK_HEADER] = { value: '1' };
  // [/previews]
  return request;
}
