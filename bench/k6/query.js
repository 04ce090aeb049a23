// POST /api/v2/query: the dashboard's mix (30-day headline, daily series, top pages,
// sources of visitors from one country, realtime) for random sites of the loaded data,
// each request tagged with its query; QUERY=<name> runs one of them only. With
// WRITE_RATE > 0, single events are posted at that steady rate at the same time.
import http from 'k6/http';
import { check } from 'k6';

const sites = Number(__ENV.SITES || 100);
const writeRate = Number(__ENV.WRITE_RATE || 0);
const readVus = Number(__ENV.VUS || 4);
const headline = ['visitors', 'visits', 'pageviews', 'bounce_rate', 'visit_duration', 'views_per_visit'];
const MIX = {
  headline: { metrics: headline, date_range: '30d' },
  series: { metrics: ['visitors', 'pageviews'], date_range: '30d', dimensions: ['time:day'] },
  pages: { metrics: ['visitors', 'pageviews'], date_range: '30d', dimensions: ['event:page'], pagination: { limit: 10 } },
  sources: {
    metrics: ['visitors'], date_range: '30d', dimensions: ['visit:source'],
    filters: [['is', 'visit:country', ['DE']]], pagination: { limit: 10 },
  },
  realtime: { metrics: ['visitors', 'pageviews'], date_range: 'realtime' },
};
const names = __ENV.QUERY ? [__ENV.QUERY] : Object.keys(MIX);
const thresholds = {
  'http_req_duration{kind:write}': ['p(99)<60000'],
  'http_req_duration{scenario:reads}': ['p(99)<60000'],
};
for (const name of Object.keys(MIX)) {
  // Declared so the summary carries per-query latency (the bounds themselves are loose).
  thresholds[`http_req_duration{kind:${name}}`] = ['p(99)<60000'];
}
const scenarios = {
  reads: { executor: 'constant-vus', vus: readVus, duration: __ENV.DURATION || '10s', exec: 'read' },
};
if (writeRate > 0) {
  scenarios.writes = {
    executor: 'constant-arrival-rate', rate: writeRate, timeUnit: '1s',
    duration: __ENV.DURATION || '10s', preAllocatedVUs: 50, maxVUs: 200, exec: 'write',
  };
}
export const options = {
  scenarios, thresholds, discardResponseBodies: true,
  summaryTrendStats: ['med', 'p(95)', 'p(99)', 'max'],
};
const headers = { 'Content-Type': 'application/json' };

export function read() {
  const name = names[Math.floor(Math.random() * names.length)];
  const site = `site-${Math.floor(Math.random() * sites)}`;
  const body = JSON.stringify({ site_id: site, ...MIX[name] });
  const r = http.post(`${__ENV.BASE}/api/v2/query`, body, { headers, tags: { kind: name } });
  check(r, { ok: (res) => res.status === 200 });
}

export function write() {
  const body = JSON.stringify({ site_id: `site-${__ITER % sites}`, event_type: 'pageview', path: '/mixed' });
  const r = http.post(`${__ENV.BASE}/event`, body, { headers, tags: { kind: 'write' } });
  check(r, { accepted: (res) => res.status === 202 });
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY]: JSON.stringify(data) };
}
