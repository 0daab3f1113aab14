// Viewer-response function (cloudfront-js-2.0, no KeyValueStore): names the release that served
// a response in `x-release` and pins HTML viewers to it with the `__release` cookie, so the
// assets a page asks for come from the same release (skew protection). It never changes the
// cache key: the router's rewritten URI already is.
//
// Names shared with the Python side; tests/unit/test_contract.py checks them against
// hosting_toolkit/contract.py, so keep them as plain literals declared once.
const RELEASE_HEADER = 'x-release';
const RELEASE_METADATA_HEADER = 'x-amz-meta-release';
const RELEASE_COOKIE = '__release';
const RELEASES_PREFIX = 'releases/';
const COOKIE_ATTRIBUTES = 'Path=/; Secure; SameSite=Lax; Max-Age=3600';

// Every release object carries the metadata release=<id>; the rewritten URI
// (/releases/<id>/...) covers responses without it, such as S3's 403 for a missing key.
function releaseOf(event) {
  const meta = event.response.headers[RELEASE_METADATA_HEADER];
  if (meta && meta.value) {
    return meta.value;
  }
  const uri = event.request.uri;
  const prefix = '/' + RELEASES_PREFIX;
  if (uri.indexOf(prefix) === 0) {
    const end = uri.indexOf('/', prefix.length);
    if (end > prefix.length) {
      return uri.slice(prefix.length, end);
    }
  }
  return '';
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
  // A 304 revalidating a page carries no content type; its URI still ends in .html.
  const uri = event.request.uri;
  return uri.slice(-5) === '.html';
}

function handler(event) {
  const response = event.response;
  const release = releaseOf(event);
  delete response.headers[RELEASE_METADATA_HEADER];
  response.headers[RELEASE_HEADER] = { value: release || 'none' };
  if (release && isPage(event)) {
    if (!response.cookies) {
      response.cookies = {};
    }
    response.cookies[RELEASE_COOKIE] = { value: release, attributes: COOKIE_ATTRIBUTES };
  }
  return response;
}
