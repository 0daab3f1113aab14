// Viewer-response function (cloudfront-js-2.0, no KeyValueStore): names the release that served
// a response in `x-release` and pins HTML viewers to it with the `__release` cookie, so the
// assets a page asks for come from the same release (skew protection); keeps each page viewer's
// canary cohort in the `__cohort` cookie. It never changes the cache key: the router's
// rewritten URI already is. The renderer inserts `const SITE` (cohort lifetimes, the headers of
// `[[rules.headers]]`) at the top, and keeps the `[rules]` block only for sites with header rules.
//
// Names shared with the Python side; tests/unit/test_contract.py checks them against
// hosting_toolkit/contract.py, so keep them as plain literals declared once.
const RELEASE_HEADER = 'x-release';
const RELEASE_METADATA_HEADER = 'x-amz-meta-release';
const RELEASE_COOKIE = '__release';
const COHORT_COOKIE = '__cohort';
const COHORTS = 10000;
// `hosting-toolkit check` sends this header to learn which URI this function sees.
const CHECK_HEADER = 'x-hosting-check';
// The router's mark of a preview request; preview responses are never indexed.
const PREVIEW_MARK_HEADER = 'x-hosting-preview';
const ROBOTS_HEADER = 'x-robots-tag';
const COOKIE_ATTRIBUTES = 'Path=/; Secure; SameSite=Lax; Max-Age=3600';
const COHORT_COOKIE_ATTRIBUTES = 'Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=';
// The router's tag of a static folder asked for without its slash, and the metadata the release
// engine puts on a folder's own index.html: both together answer a redirect to the slash, as web
// servers do, so the page's relative links work.
const FOLDER_HEADER = 'x-hosting-folder';
const FOLDER_INDEX_METADATA_HEADER = 'x-amz-meta-folder-index';

// Every release object carries the metadata release=<id>; the router's request header names the
// release of responses without it (a 304), since CloudFront may pass this function the viewer's
// URI or the router's rewritten one (`hosting-toolkit check` says which).
function releaseOf(event) {
  const meta = event.response.headers[RELEASE_METADATA_HEADER];
  if (meta && meta.value) {
    return meta.value;
  }
  const tag = event.request.headers[RELEASE_HEADER];
  return tag ? tag.value : '';
}

function isPage(event) {
  const response = event.response;
  if (response.statusCode >= 400) {
    return false;
  }
  const type = response.headers['content-type'];
  if (type) {
    return type.value.toLowerCase().indexOf('text/html') === 0;
  }
  // A 304 revalidating a page carries no content type. The router maps every path whose last
  // segment has no dot to an .html file, so either URI tells a page.
  const uri = event.request.uri;
  const last = uri.slice(uri.lastIndexOf('/') + 1);
  return last.indexOf('.') < 0 || last.slice(-5) === '.html';
}

// The router's cohort code: the viewer's cohort from its cookie until the maximum lifetime,
// else the one drawn from the request id both functions see. Returns [cohort, issued seconds].
function cohortOf(event) {
  const cookie = event.request.cookies[COHORT_COOKIE];
  const p = cookie ? cookie.value.split('.') : [];
  const now = Date.now() / 1000;
  if (p.length === 2 && p[0] >= 0 && p[0] < COHORTS && now - p[1] < SITE.cohortMax) return p;
  const id = String(event.context.requestId);
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h += (h << 1) + (h << 4) + (h << 7) + (h << 8) + (h << 24);
  }
  return [(h >>> 0) % COHORTS, Math.floor(now)];
}

// Each page response restarts the idle lifetime, never past the maximum lifetime.
function cohortCookie(event) {
  const p = cohortOf(event);
  const left = Math.ceil(SITE.cohortMax - (Date.now() / 1000 - p[1]));
  return { value: p[0] + '.' + p[1], attributes: COHORT_COOKIE_ATTRIBUTES + Math.min(SITE.cohortIdle, left) };
}

// The router passes the release's matched `_headers` rules and a rule's page status as JSON
// `[status or 0, {name: value or null}]` (null: remove the header); no KVS read here.
const RELEASE_RULES_HEADER = 'x-hosting-release-rules';

function applyReleaseRules(event) {
  const tag = event.request.headers[RELEASE_RULES_HEADER];
  if (!tag) return;
  let rules = null;
  try {
    rules = JSON.parse(tag.value);
  } catch (e) {
    return;
  }
  const response = event.response;
  if (rules[0] && response.statusCode === 200) {
    response.statusCode = rules[0];
    delete response.statusDescription;
  }
  for (const name in rules[1]) {
    if (rules[1][name] === null) delete response.headers[name];
    else response.headers[name] = { value: rules[1][name] };
  }
}

// [rules]
// Header rules are matched by the router, on the path the viewer asked for (this function only
// sees the rewritten /releases/<id>/... URI): it tags the request with the numbers of the matching
// rules, and SITE.headers holds each rule's headers by number. CloudFront runs this function only
// for origin responses below 400, so the headers are not added to errors.
const RULES_HEADER = 'x-hosting-rules';

function addRuleHeaders(event) {
  const tag = event.request.headers[RULES_HEADER];
  if (!tag) return;
  tag.value.split('.').forEach((n) => {
    const headers = SITE.headers[+n];
    for (const name in headers) event.response.headers[name] = { value: headers[name] };
  });
}
// [/rules]

// The folder with its slash and the viewer's query string, names and values still encoded.
function folderLocation(event) {
  const q = event.request.querystring;
  let query = '';
  for (const name in q) {
    (q[name].multiValue || [q[name]]).forEach((v) => { query += '&' + name + '=' + v.value; });
  }
  return event.request.headers[FOLDER_HEADER].value + '/' + (query ? '?' + query.slice(1) : '');
}

function handler(event) {
  const response = event.response;
  const folderIndex = response.headers[FOLDER_INDEX_METADATA_HEADER];
  delete response.headers[FOLDER_INDEX_METADATA_HEADER];
  if (folderIndex && event.request.headers[FOLDER_HEADER] && response.statusCode === 200) {
    response.statusCode = 301;
    response.statusDescription = 'Moved Permanently';
    response.headers.location = { value: folderLocation(event) };
  }
  // Site-wide header rules come after the release's, so hosting.toml wins.
  applyReleaseRules(event);
  // [rules]
  addRuleHeaders(event);
  // [/rules]
  const release = releaseOf(event);
  delete response.headers[RELEASE_METADATA_HEADER];
  response.headers[RELEASE_HEADER] = { value: release || 'none' };
  if (event.request.headers[PREVIEW_MARK_HEADER]) response.headers[ROBOTS_HEADER] = { value: 'noindex' };
  if (event.request.headers[CHECK_HEADER]) {
    response.headers[CHECK_HEADER] = { value: event.request.uri + (event.request.headers[RELEASE_HEADER] ? ' tagged' : '') };
  }
  if (release && isPage(event)) {
    if (!response.cookies) {
      response.cookies = {};
    }
    response.cookies[RELEASE_COOKIE] = { value: release, attributes: COOKIE_ATTRIBUTES };
    response.cookies[COHORT_COOKIE] = cohortCookie(event);
  }
  return response;
}
