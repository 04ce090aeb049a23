/* hitstream dashboard: fills the server's page shells (dashboard/routes.py) from the
 * public APIs. Plain ES modules served as they are (no build step); no dependency but the
 * vendored uPlot. Every value shown comes from an API answer and reaches the page as text
 * (dom.js). The stats view reads /api/v2/query with the session cookie (admin) or, on a
 * shared link, with the token after `#auth=` (api.js). */
import { view } from './page.js';
import { queueView } from './queue.js';
import { sitesView } from './sites.js';
import { statsView } from './stats/view.js';

document.querySelectorAll('[data-nav]').forEach((link) => {
  if (link.dataset.nav === view) link.setAttribute('aria-current', 'page');
});
if (view === 'stats') statsView();
else if (view === 'sites') sitesView();
else if (view === 'queue') queueView();
