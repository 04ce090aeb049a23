/*! hitstream tracker (MIT licence, see LICENSE in hitstream) */
// <script defer data-site="SITE" src="https://HOST/js/hitstream.js"></script>
// Page views (also single-page-app navigations), custom events with
// hitstream("name", {props: {...}}), and with data-auto="outbound,downloads" clicks on
// links to other sites and on files. No cookies, no storage. Not on localhost or in
// automated browsers unless data-local="true" / data-automated="true".
(function () {
  'use strict';
  var w = window, d = document, l = w.location, n = w.navigator;
  var script = d.currentScript;
  if (!script) return;
  function attr(name) { return script.getAttribute('data-' + name); }
  var site = attr('site');
  var api = attr('api') || new URL('/api/event', script.src).href;
  var byHash = attr('hash') === 'true';
  var auto = (attr('auto') || '').split(',');
  var FILES = /\.(pdf|xlsx?|docx?|txt|rtf|csv|exe|key|pps|pptx?|7z|pkg|rar|gz|zip|avi|mov|mp4|mpe?g|wmv|midi?|mp3|wav|wma|dmg|iso|msi)$/i;
  var lastPage;

  function ignored() {
    if (attr('local') !== 'true' &&
        (/^(localhost|127(\.\d+){3}|\[::1\])$/.test(l.hostname) || l.protocol === 'file:')) {
      return 'localhost';
    }
    if (attr('automated') !== 'true' && (n.webdriver || w.Cypress || w._phantom)) {
      return 'an automated browser';
    }
  }

  function send(name, options) {
    var why = ignored();
    if (why) {
      if (w.console) console.warn('hitstream: not tracking ' + why);
      return;
    }
    options = options || {};
    var body = {n: name, u: l.href, d: site, r: d.referrer || null};
    if (options.props) body.p = options.props;
    if (byHash) body.h = 1;
    body = JSON.stringify(body);
    var queued = false;
    try { queued = n.sendBeacon(api, body); } catch (e) { /* no beacons here */ }
    if (!queued && w.fetch) {
      fetch(api, {
        method: 'POST', body: body, keepalive: true, credentials: 'omit',
        headers: {'Content-Type': 'text/plain'}
      })['catch'](function () {});
    }
    if (options.callback) options.callback();
  }

  function page() {
    var key = l.pathname + (byHash ? l.hash : '');
    if (key === lastPage) return;
    lastPage = key;
    send('pageview');
  }

  function click(event) {
    if (event.type === 'auxclick' && event.button !== 1) return;
    var link = event.target.closest && event.target.closest('a[href]');
    if (!link || !/^https?:$/.test(link.protocol)) return;
    var name = auto.indexOf('downloads') >= 0 && FILES.test(link.pathname) ? 'File Download'
      : auto.indexOf('outbound') >= 0 && link.host !== l.host ? 'Outbound Link: Click' : '';
    if (name) send(name, {props: {url: link.href}});
  }

  var history = w.history;
  if (history.pushState) {
    var push = history.pushState;
    history.pushState = function () {
      push.apply(this, arguments);
      page();
    };
    w.addEventListener('popstate', page);
  }
  if (byHash) w.addEventListener('hashchange', page);
  if (auto.indexOf('outbound') >= 0 || auto.indexOf('downloads') >= 0) {
    d.addEventListener('click', click);
    d.addEventListener('auxclick', click);
  }
  if (d.visibilityState === 'prerender') {
    d.addEventListener('visibilitychange', function () {
      if (d.visibilityState === 'visible') page();
    });
  } else {
    page();
  }
  // Calls made before the script ran (the snippet's queue), after the page view.
  var calls = (w.hitstream && w.hitstream.q) || [];
  w.hitstream = send;
  for (var i = 0; i < calls.length; i++) send.apply(null, calls[i]);
})();
