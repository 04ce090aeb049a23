/* What the server's page shell tells the scripts (dashboard/routes.py renders it): the
 * view, the mode, the site of a shared link, its token, and the event names Python owns. */

export const body = document.body;
export const main = document.getElementById('main');
export const view = body.dataset.view;
export const shared = body.dataset.mode === 'share';
export const shareToken = shared ? tokenIn(location.hash) : null;

// The event types that are not custom events (page views, engagement): named once, in
// schemas/event.py, and carried here by the page, so no script keeps a copy.
export const NOT_CUSTOM_EVENTS = JSON.parse(body.dataset.pageviews).concat([body.dataset.engagement]);

function tokenIn(hash) {
  const m = /(?:^#|&)auth=([^&]+)/.exec(hash);
  return m ? decodeURIComponent(m[1]) : null;
}
