-- What visit:channel and visit:exit_page_hostname read besides the columns visits have
-- (reporting/sources.py): the landing page's click-id parameter, `gclid` or `msclkid`
-- (its name only, never the id: schemas/urls.py), on events and on a visit (its opener's,
-- like the other dimensions), and a visit's exit hostname (the hostname of its last event,
-- as the exit page is its path). sessions_mv is re-created to fill them; stop the
-- consumers while migrating (events inserted between its drop and its creation would miss
-- their visit). Rows stored before answer '' for both: their channel follows the other
-- rules (a Google visit from an ad click stored before is Organic Search), their exit
-- hostname is '' (events keep no record of it that a visit could be rebuilt from without
-- counting its page views twice). The view reads the last hostname as page_hostname:
-- inside it, `hostname` names the visit's (entry) hostname.
-- up
ALTER TABLE events ADD COLUMN IF NOT EXISTS click_id_param LowCardinality(String);
ALTER TABLE sessions
    ADD COLUMN IF NOT EXISTS click_id_param SimpleAggregateFunction(max, LowCardinality(String)),
    ADD COLUMN IF NOT EXISTS exit_hostname AggregateFunction(argMax, String, DateTime64(3, 'UTC'));
DROP VIEW IF EXISTS sessions_mv;
CREATE MATERIALIZED VIEW sessions_mv TO sessions AS
SELECT
    site_id,
    visitor_id,
    session_id,
    min(ts) AS start,
    max(ts) AS end,
    countIf(event_type IN ({pageview_names})) AS pageviews,
    count() AS events,
    max(user_id) AS user_id,
    maxIf(path, opener) AS entry_page,
    argMaxState(path, ts) AS exit_page,
    maxIf(hostname, opener) AS hostname,
    maxIf(referrer, opener) AS referrer,
    maxIf(source, opener) AS source,
    maxIf(utm_source, opener) AS utm_source,
    maxIf(utm_medium, opener) AS utm_medium,
    maxIf(utm_campaign, opener) AS utm_campaign,
    maxIf(utm_term, opener) AS utm_term,
    maxIf(utm_content, opener) AS utm_content,
    maxIf(device, opener) AS device,
    maxIf(browser, opener) AS browser,
    maxIf(browser_version, opener) AS browser_version,
    maxIf(os, opener) AS os,
    maxIf(os_version, opener) AS os_version,
    maxIf(country, opener) AS country,
    maxIf(click_id_param, opener) AS click_id_param,
    argMaxState(page_hostname, ts) AS exit_hostname
FROM (
    SELECT *, toUnixTimestamp64Milli(ts) = toInt64(session_id) AS opener,
        CAST(hostname, 'String') AS page_hostname
    FROM events
    WHERE session_id != 0 AND event_type != {engagement_name}
)
GROUP BY site_id, visitor_id, session_id
-- down
DROP VIEW IF EXISTS sessions_mv;
CREATE MATERIALIZED VIEW sessions_mv TO sessions AS
SELECT
    site_id,
    visitor_id,
    session_id,
    min(ts) AS start,
    max(ts) AS end,
    countIf(event_type IN ({pageview_names})) AS pageviews,
    count() AS events,
    max(user_id) AS user_id,
    maxIf(path, opener) AS entry_page,
    argMaxState(path, ts) AS exit_page,
    maxIf(hostname, opener) AS hostname,
    maxIf(referrer, opener) AS referrer,
    maxIf(source, opener) AS source,
    maxIf(utm_source, opener) AS utm_source,
    maxIf(utm_medium, opener) AS utm_medium,
    maxIf(utm_campaign, opener) AS utm_campaign,
    maxIf(utm_term, opener) AS utm_term,
    maxIf(utm_content, opener) AS utm_content,
    maxIf(device, opener) AS device,
    maxIf(browser, opener) AS browser,
    maxIf(browser_version, opener) AS browser_version,
    maxIf(os, opener) AS os,
    maxIf(os_version, opener) AS os_version,
    maxIf(country, opener) AS country
FROM (
    SELECT *, toUnixTimestamp64Milli(ts) = toInt64(session_id) AS opener
    FROM events
    WHERE session_id != 0 AND event_type != {engagement_name}
)
GROUP BY site_id, visitor_id, session_id;
ALTER TABLE sessions
    DROP COLUMN IF EXISTS click_id_param,
    DROP COLUMN IF EXISTS exit_hostname;
ALTER TABLE events DROP COLUMN IF EXISTS click_id_param
