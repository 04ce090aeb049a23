-- A visit's region and city (visit:region, visit:region_name, visit:city_name): the
-- ISO 3166-2 code and the names ingest finds for the client address in DB-IP's city
-- database when one is configured (ingest/places.py; never the address), on events and on
-- a visit (its opener's, like the country). sessions_mv is re-created to fill them; stop
-- the consumers while migrating (events inserted between its drop and its creation would
-- miss their visit). Rows stored before answer '' for all three: events keep no address a
-- place could be found from afterwards.
-- up
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS region LowCardinality(String),
    ADD COLUMN IF NOT EXISTS region_name LowCardinality(String),
    ADD COLUMN IF NOT EXISTS city_name LowCardinality(String);
ALTER TABLE sessions
    ADD COLUMN IF NOT EXISTS region SimpleAggregateFunction(max, LowCardinality(String)),
    ADD COLUMN IF NOT EXISTS region_name SimpleAggregateFunction(max, LowCardinality(String)),
    ADD COLUMN IF NOT EXISTS city_name SimpleAggregateFunction(max, LowCardinality(String));
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
    argMaxState(page_hostname, ts) AS exit_hostname,
    maxIf(region, opener) AS region,
    maxIf(region_name, opener) AS region_name,
    maxIf(city_name, opener) AS city_name
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
    maxIf(country, opener) AS country,
    maxIf(click_id_param, opener) AS click_id_param,
    argMaxState(page_hostname, ts) AS exit_hostname
FROM (
    SELECT *, toUnixTimestamp64Milli(ts) = toInt64(session_id) AS opener,
        CAST(hostname, 'String') AS page_hostname
    FROM events
    WHERE session_id != 0 AND event_type != {engagement_name}
)
GROUP BY site_id, visitor_id, session_id;
ALTER TABLE sessions
    DROP COLUMN IF EXISTS region,
    DROP COLUMN IF EXISTS region_name,
    DROP COLUMN IF EXISTS city_name;
ALTER TABLE events
    DROP COLUMN IF EXISTS region,
    DROP COLUMN IF EXISTS region_name,
    DROP COLUMN IF EXISTS city_name
