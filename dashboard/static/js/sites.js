/* The sites view (admin): create a site, edit it, rotate its API key, make and revoke
 * shared links, manage its goals; a new secret shows once, above the list. */
import { alerts, showError } from './alerts.js';
import { api } from './api.js';
import { clear, h } from './dom.js';
import { goalsBox } from './goals.js';
import { body, main } from './page.js';

export function sitesView() {
  const sites = { list: h('div', { class: 'sites' }), created: h('div', { tabindex: '-1' }) };
  // Secrets (a new key, a shared link) show in `created`, outside the list the refresh rebuilds.
  sites.reveal = (box) => {
    clear(sites.created).appendChild(box);
    sites.created.scrollIntoView();
    sites.created.focus();
  };
  sites.refresh = () => refresh(sites);
  clear(main).append(h('h1', { text: 'Sites' }), alerts, sites.created, sites.list, createForm(sites));
  sites.refresh();
}

function refresh(sites) {
  return api('GET', '/api/sites').then((answer) => {
    clear(sites.list);
    if (!answer.sites.length) sites.list.appendChild(h('p', { text: 'No sites yet.' }));
    answer.sites.forEach((site) => { sites.list.appendChild(siteCard(sites, site)); });
    body.dataset.ready = '1';
  }, showError);
}

function createForm(sites) {
  const name = h('input', { id: 'new-name', required: true, maxlength: '200' });
  const isPublic = h('input', { id: 'new-public', type: 'checkbox' });
  const origins = h('input', { id: 'new-origins', placeholder: 'https://example.com' });
  const domains = h('input', { id: 'new-domains', placeholder: 'example.com' });
  const tz = h('input', { id: 'new-tz', value: 'UTC', list: 'zones' });
  const zones = h('datalist', { id: 'zones' }, (Intl.supportedValuesOf ? Intl.supportedValuesOf('timeZone') : []).map((z) => h('option', { value: z })));
  const form = h('form', { class: 'create', onsubmit: (e) => {
    e.preventDefault();
    api('POST', '/api/sites', {
      name: name.value, public: isPublic.checked, allowed_origins: lines(origins.value),
      domains: lines(domains.value), timezone: tz.value || 'UTC'
    }).then((site) => {
      sites.reveal(secretBox('Site ' + site.name + ' created', [
        ['Paste this into every page of the site', snippet(site.site_id)],
        ['API key (server-side events and reading stats)', site.api_key]
      ]));
      form.reset();
      sites.refresh();
    }, showError);
  } }, [
    h('h2', { text: 'New site' }),
    h('label', { for: 'new-name', text: 'Name' }), name,
    h('label', { for: 'new-public' }, [isPublic, ' Public: browsers may send events without a key from these origins']),
    h('label', { for: 'new-origins', text: 'Allowed origins (space or comma separated)' }), origins,
    h('label', { for: 'new-domains', text: 'Domains (for Plausible-style events)' }), domains,
    h('label', { for: 'new-tz', text: 'Time zone' }), tz, zones,
    h('button', { type: 'submit', text: 'Create site' })
  ]);
  return form;
}

function siteCard(sites, site) {
  const act = (promise) => { promise.then(() => sites.refresh(), showError); };
  return h('section', { class: 'site', 'data-site-id': site.site_id, 'aria-label': site.name }, [
    h('h2', {}, [site.name + ' ', h('code', { text: site.site_id })]),
    h('p', {}, [h('a', { href: '/dashboard?site=' + encodeURIComponent(site.site_id), text: 'Stats' })]),
    h('details', {}, [h('summary', { text: 'Snippet' }), h('pre', {}, [h('code', { text: snippet(site.site_id) })])]),
    h('details', { class: 'umami' }, [h('summary', { text: 'Umami snippet' }),
      h('p', {}, ['Website ID ', h('code', { class: 'website-id', text: site.website_id }), ': for Umami\'s tracker (your copy of its script.js) and @umami/node, which send to /api/send here.']),
      h('pre', {}, [h('code', { text: umamiSnippet(site.website_id) })])]),
    editForm(site, act),
    goalsBox(site),
    keysTable(site, act),
    h('div', { class: 'actions' }, [rotateButton(sites, site), shareButton(sites, site)])
  ]);
}

function editForm(site, act) {
  const editOrigins = h('input', { value: site.allowed_origins.join(' '), 'aria-label': 'Allowed origins of ' + site.name });
  const editDomains = h('input', { value: site.domains.join(' '), 'aria-label': 'Domains of ' + site.name });
  const editTz = h('input', { value: site.timezone, list: 'zones', 'aria-label': 'Time zone of ' + site.name });
  const editWebsite = h('input', { value: site.website_id, maxlength: '36', 'aria-label': 'Website ID of ' + site.name });
  const editPublic = h('input', { type: 'checkbox', checked: site.public, 'aria-label': site.name + ' is public' });
  const editServer = h('input', { type: 'checkbox', checked: site.accept_server_events, 'aria-label': site.name + ' takes server-side events without a key' });
  return h('form', { class: 'edit', onsubmit: (e) => {
    e.preventDefault();
    act(api('PATCH', '/api/sites/' + encodeURIComponent(site.site_id), {
      public: editPublic.checked, allowed_origins: lines(editOrigins.value),
      domains: lines(editDomains.value), timezone: editTz.value,
      accept_server_events: editServer.checked, website_id: editWebsite.value.trim()
    }));
  } }, [
    h('label', {}, [editPublic, ' Public']),
    h('label', { title: 'A public site also takes keyless events sent with no Origin header (server-side senders)' }, [editServer, ' Server-side events without a key']),
    h('label', {}, ['Allowed origins ', editOrigins]),
    h('label', {}, ['Domains ', editDomains]),
    h('label', {}, ['Time zone ', editTz]),
    h('label', {}, ['Website ID (Umami) ', editWebsite]),
    h('button', { type: 'submit', text: 'Save' })
  ]);
}

function keysTable(site, act) {
  return h('table', {}, [
    h('caption', { text: 'Keys and share tokens of ' + site.name }),
    h('thead', {}, [h('tr', {}, ['Key', 'Kind', 'Created', 'State', ''].map((t) => h('th', { scope: 'col', text: t })))]),
    h('tbody', {}, site.keys.map((key) => keyRow(site, key, act)))
  ]);
}

function keyRow(site, key, act) {
  const state = key.revoked ? 'revoked' : key.active ? (key.expires_at ? 'expires ' + key.expires_at.slice(0, 16) : 'active') : 'expired';
  const revoke = h('button', { type: 'button', class: 'danger', text: 'Revoke', 'aria-label': 'Revoke ' + key.key_id, onclick: () => {
    if (confirm('Revoke ' + key.key_id + '? It stops working at once.')) {
      act(api('DELETE', '/api/sites/' + encodeURIComponent(site.site_id) + '/keys/' + key.key_id));
    }
  } });
  return h('tr', {}, [
    h('th', { scope: 'row' }, [h('code', { text: key.key_id })]),
    h('td', { text: key.read_only ? 'share link' : 'API key' }),
    h('td', { text: key.created_at.slice(0, 16).replace('T', ' ') }),
    h('td', { text: state }),
    h('td', {}, [key.active ? revoke : null])
  ]);
}

function rotateButton(sites, site) {
  return h('button', { type: 'button', text: 'Rotate API key', onclick: () => {
    api('POST', '/api/sites/' + encodeURIComponent(site.site_id) + '/keys').then((key) => {
      sites.reveal(secretBox('New API key of ' + site.name, [['API key (the previous ones work until ' + key.previous_keys_expire_at.slice(0, 16) + ')', key.api_key]]));
      return sites.refresh();
    }, showError);
  } });
}

function shareButton(sites, site) {
  return h('button', { type: 'button', text: 'Create shared link', onclick: () => {
    api('POST', '/api/sites/' + encodeURIComponent(site.site_id) + '/shares').then((share) => {
      sites.reveal(secretBox('Shared link of ' + site.name + ' (read-only)', [['Anyone with this link sees this site\'s stats', location.origin + share.path]]));
      return sites.refresh();
    }, showError);
  } });
}

function secretBox(title, rows) {
  return h('div', { class: 'secret', role: 'status' }, [h('h3', { text: title }), h('p', { text: 'Shown once: copy it now.' })]
    .concat(rows.map((r) => h('div', {}, [h('span', { class: 'label', text: r[0] }), h('pre', {}, [h('code', { text: r[1] })])]))));
}

function snippet(siteId) {
  return '<script defer data-site="' + siteId + '" src="' + location.origin + '/js/hitstream.js"></script>';
}

// Umami's tracker posts to `data-host-url`/api/send; hitstream does not serve Umami's
// script (MIT, npm `umami`): the page loads the site owner's copy of it.
function umamiSnippet(websiteId) {
  return '<script defer src="/path/to/umami/script.js" data-host-url="' + location.origin + '" data-website-id="' + websiteId + '"></script>';
}

function lines(text) {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}
