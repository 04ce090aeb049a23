// POST /events with BATCH events per request.
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
const url = `${__ENV.BASE}/events`;
const headers = { 'Content-Type': 'application/json' };
const events = [];
for (let i = 0; i < size; i++) {
  events.push({ ...pageview(`site-${i % 100}`, i).event, user_id: `user-${i}` });
}
const body = JSON.stringify(events);

export default function () {
  check(http.post(url, body, { headers }), { accepted: (r) => r.status === 202 });
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY]: JSON.stringify(data) };
}
