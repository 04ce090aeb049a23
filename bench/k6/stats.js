// GET /stats for random sites and days of the loaded data; with WRITE_RATE > 0,
// single events are posted at that steady rate at the same time (the mixed run).
import http from 'k6/http';
import { check } from 'k6';

const sites = Number(__ENV.SITES || 100);
const days = Number(__ENV.DAYS || 30);
const writeRate = Number(__ENV.WRITE_RATE || 0);
const readVus = Number(__ENV.VUS || 8);
const scenarios = {};
if (readVus > 0) {
  scenarios.reads = { executor: 'constant-vus', vus: readVus, duration: __ENV.DURATION || '10s', exec: 'read' };
}
if (writeRate > 0) {
  scenarios.writes = {
    executor: 'constant-arrival-rate', rate: writeRate, timeUnit: '1s',
    duration: __ENV.DURATION || '10s', preAllocatedVUs: 50, maxVUs: 200, exec: 'write',
  };
}
export const options = {
  scenarios,
  // Declared so the summary carries per-kind latency (the bounds themselves are loose).
  thresholds: { 'http_req_duration{kind:stats}': ['p(99)<60000'], 'http_req_duration{kind:write}': ['p(99)<60000'] },
  discardResponseBodies: true,
  summaryTrendStats: ['med', 'p(95)', 'p(99)', 'max'],
};

export function read() {
  const site = `site-${Math.floor(Math.random() * sites)}`;
  const day = new Date(Date.now() - Math.floor(Math.random() * days) * 86400000).toISOString().slice(0, 10);
  const r = http.get(`${__ENV.BASE}/stats?site_id=${site}&date=${day}`, { tags: { kind: 'stats' } });
  check(r, { ok: (res) => res.status === 200 });
}

export function write() {
  const body = JSON.stringify({ site_id: `site-${__ITER % 100}`, event_type: 'page_view', path: '/mixed' });
  const r = http.post(`${__ENV.BASE}/event`, body, { headers: { 'Content-Type': 'application/json' }, tags: { kind: 'write' } });
  check(r, { accepted: (res) => res.status === 202 });
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY]: JSON.stringify(data) };
}
