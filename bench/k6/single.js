// Single-event POST /event at a fixed number of virtual users, as a browser sends it.
import http from 'k6/http';
import { check } from 'k6';
import { pageview } from './browser.js';

// ITERATIONS: that many events in all (shared by the VUs), however long they take.
const iterations = Number(__ENV.ITERATIONS || 0);
export const options = {
  ...(iterations
    ? { scenarios: { all: { executor: 'shared-iterations', vus: Number(__ENV.VUS || 64), iterations, maxDuration: '30m' } } }
    : { vus: Number(__ENV.VUS || 64), duration: __ENV.DURATION || '10s' }),
  discardResponseBodies: true,
  summaryTrendStats: ['med', 'p(95)', 'p(99)', 'max'],
};

const url = `${__ENV.BASE}/event`;
const headers = { 'Content-Type': 'application/json' };
if (__ENV.API_KEY) headers['x-api-key'] = __ENV.API_KEY;

export default function () {
  // With a key, the site comes from the key; without, each event names one.
  const { event, agent } = pageview(__ENV.API_KEY ? null : `site-${__VU % 100}`, __ITER + __VU);
  const body = JSON.stringify(event);
  const sent = http.post(url, body, { headers: { ...headers, 'User-Agent': agent } });
  check(sent, { accepted: (r) => r.status === 202 });
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY]: JSON.stringify(data) };
}
