// Single-event POST /event at a fixed number of virtual users.
import http from 'k6/http';
import { check } from 'k6';

export const options = {
  vus: Number(__ENV.VUS || 64),
  duration: __ENV.DURATION || '10s',
  discardResponseBodies: true,
  summaryTrendStats: ['med', 'p(95)', 'p(99)', 'max'],
};

const url = `${__ENV.BASE}/event`;
const headers = { 'Content-Type': 'application/json' };
if (__ENV.API_KEY) headers['x-api-key'] = __ENV.API_KEY;

export default function () {
  const event = { event_type: 'page_view', path: `/page/${__ITER % 50}`, user_id: `user-${__VU}-${__ITER % 1000}` };
  // With a key, the site comes from the key; without, each event names one.
  if (!__ENV.API_KEY) event.site_id = `site-${__VU % 100}`;
  const body = JSON.stringify(event);
  check(http.post(url, body, { headers }), { accepted: (r) => r.status === 202 });
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY]: JSON.stringify(data) };
}
