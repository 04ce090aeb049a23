// POST /events with BATCH events of one site per request, the sites taken in turn (a
// batch of a site goes to one shard of the stream; the requests spread over them all).
import http from 'k6/http';
import { check } from 'k6';
import { pageview } from './browser.js';

export const options = {
  vus: Number(__ENV.VUS || 16),
  duration: __ENV.DURATION || '10s',
  discardResponseBodies: true,
  summaryTrendStats: ['med', 'p(95)', 'p(99)', 'max'],
};

const size = Number(__ENV.BATCH || 100);
const sites = Number(__ENV.SITES || 100);
const url = `${__ENV.BASE}/events`;
const headers = { 'Content-Type': 'application/json' };
const bodies = [];
for (let s = 0; s < sites; s++) {
  const events = [];
  for (let i = 0; i < size; i++) {
    events.push({ ...pageview(`site-${s}`, i).event, user_id: `user-${i}` });
  }
  bodies.push(JSON.stringify(events));
}

export default function () {
  const body = bodies[(__VU * 7919 + __ITER) % sites];
  check(http.post(url, body, { headers }), { accepted: (r) => r.status === 202 });
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY]: JSON.stringify(data) };
}
