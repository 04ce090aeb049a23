/* The stats view: a site's headline, chart, current visitors and panels, for the admin
 * (any site) or a shared link (its one site); it loads again whenever its state changes. */
import { alerts, showError } from '../alerts.js';
import { api } from '../api.js';
import { clear, h } from '../dom.js';
import { body, main, shared, shareToken } from '../page.js';
import { readState, writeState } from '../state.js';
import { loadChart } from './chart.js';
import { renderChips, renderControls } from './controls.js';
import { loadHeadline, loadRealtime } from './headline.js';
import { PANELS, loadRestOfPanels, panelObserver, panelSection } from './panels.js';

const REALTIME_EVERY_MS = 15000;

export function statsView() {
  const stats = createStats();
  if (shared) {
    if (!shareToken) { showError(new Error('This shared link has no token (#auth=...).')); return; }
    renderControls(stats, []);
    stats.load();
  } else {
    startAdmin(stats);
  }
}

// The view's state, its elements, and what its parts share: `load` (again, from the
// state), `track` (a job in flight) and `generation` (answers to older loads are dropped).
function createStats() {
  const state = readState();
  const el = {
    controls: h('div', { class: 'controls' }),
    chips: h('ul', { class: 'filters', 'aria-label': 'Filters' }),
    realtime: h('p', { class: 'realtime', 'aria-live': 'polite', 'data-testid': 'realtime' }, ['…']),
    headline: h('ul', { class: 'headline', 'aria-label': 'Headline metrics' }),
    chartBox: h('figure', { class: 'chart' }),
    grid: h('div', { class: 'panels' }),
    heading: h('h1', { text: shared ? state.site : 'Stats' })
  };
  clear(main).append(el.heading, alerts, el.controls, el.realtime, el.chips, el.headline, el.chartBox, el.grid);
  const stats = { state: state, el: el, generation: 0, pending: 0, started: new Set(), screenFilled: 0, plot: null, realtimeTimer: null };
  stats.load = () => load(stats);
  stats.track = (job) => track(stats, job);
  stats.observer = panelObserver(stats);
  return stats;
}

// Jobs in flight. When none is left the first time in a load, the first screen is
// filled (`data-first-screen-ms`) and the panels below it start; `data-ready` is set
// when none is left after them (tests and the bench wait on it). Both times count from
// the navigation: what `make bench` reports as the page's load times.
function track(stats, job) {
  stats.pending += 1;
  body.dataset.ready = '';
  return job.catch(showError).then(() => {
    stats.pending -= 1;
    if (stats.pending > 0) return;
    const ms = String(Math.round(performance.now()));
    if (stats.screenFilled !== stats.generation) {
      stats.screenFilled = stats.generation;
      body.dataset.firstScreenMs = ms;
      if (loadRestOfPanels(stats)) return;
    }
    body.dataset.ready = '1';
    body.dataset.readyMs = ms;
  });
}

function load(stats) {
  writeState(stats.state);
  clear(alerts);
  const mine = ++stats.generation;
  renderChips(stats);
  if (!stats.state.site) {
    clear(stats.el.grid).appendChild(h('p', {}, ['No site yet: ', h('a', { href: '/dashboard/sites', text: 'create one' }), '.']));
    body.dataset.ready = '1';
    return;
  }
  stats.track(loadHeadline(stats, mine));
  stats.track(loadChart(stats, mine));
  stats.started = new Set();
  PANELS.forEach((panel) => {
    const section = panelSection(stats, panel);
    delete section.dataset.loaded;
    if (stats.observer) stats.observer.observe(section);
  });
  if (!stats.observer) loadRestOfPanels(stats);
  clearInterval(stats.realtimeTimer);
  loadRealtime(stats);
  stats.realtimeTimer = setInterval(() => loadRealtime(stats), REALTIME_EVERY_MS);
}

function startAdmin(stats) {
  const state = stats.state;
  // A site named in the address starts loading at once, beside the list of sites.
  let started = Boolean(state.site);
  if (started) stats.load();
  api('GET', '/api/sites').then((answer) => {
    const sites = answer.sites;
    if (!sites.some((s) => s.site_id === state.site)) {
      state.site = sites.length ? sites[0].site_id : '';
      started = false;
    }
    const tz = (sites.find((s) => s.site_id === state.site) || {}).timezone;
    if (tz) stats.el.heading.textContent = 'Stats (' + tz + ')';
    renderControls(stats, sites);
    if (!started) stats.load();
  }, showError);
}
