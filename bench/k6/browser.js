// What a browser's tracker sends, shared by the k6 scripts: a real User-Agent, the
// page's full URL (with UTM tags on some), a referrer, and a custom property.
export const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
];
const REFERRERS = [
  'https://www.google.com/', 'https://duckduckgo.com/', 'https://news.ycombinator.com/item?id=1',
  'https://www.reddit.com/r/analytics/', '', 'https://t.co/abc',
];
const CAMPAIGNS = ['', '', '', '?utm_source=newsletter&utm_medium=email&utm_campaign=spring'];

// One page view of site `site`, iteration `i`: the body (without site_id when a key names
// the site) and the User-Agent to send it with.
export function pageview(site, i) {
  const event = {
    event_type: 'pageview',
    url: `https://site-${i % 100}.example/page/${i % 50}${CAMPAIGNS[i % CAMPAIGNS.length]}`,
    referrer: REFERRERS[i % REFERRERS.length],
    props: { plan: i % 3 ? 'free' : 'pro' },
  };
  if (site) event.site_id = site;
  return { event, agent: AGENTS[i % AGENTS.length] };
}
