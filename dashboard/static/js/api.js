/* The public APIs, with the session cookie (the admin) or a shared link's token. */
import { shared, shareToken } from './page.js';

export function api(method, path, payload, raw) {
  const headers = { Accept: raw ? 'text/csv' : 'application/json' };
  if (payload !== undefined) headers['Content-Type'] = 'application/json';
  if (shareToken) headers.Authorization = 'Bearer ' + shareToken;
  return fetch(path, {
    method: method,
    headers: headers,
    credentials: 'same-origin',
    body: payload === undefined ? undefined : JSON.stringify(payload)
  }).then((response) => {
    if (response.status === 401 && !shared) {
      location.assign('/login');
      throw new Error('logged out');
    }
    if (!response.ok) return refused(response, method, path);
    return raw ? response.blob() : response.json();
  });
}

// An error answer as one line: the API's message and its first detail, if it sent JSON.
function refused(response, method, path) {
  return response.json().then((answer) => {
    const detail = (answer.details || [])[0];
    throw new Error(answer.error + (detail ? ' (' + detail.field + ': ' + detail.message + ')' : ''));
  }, () => { throw new Error(method + ' ' + path + ': HTTP ' + response.status); });
}
