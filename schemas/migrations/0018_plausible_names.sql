-- Plausible's names for stored visits (schemas/names.py owns them and renders this
-- file's two placeholders, names_up and names_down): browsers (Mobile Safari -> Safari, Chrome Mobile -> Chrome,
-- Edge -> Microsoft Edge, in-app web views -> Mobile App without a version, ...), OSes
-- (Mac OS X -> Mac, Linux -> GNU/Linux, iOS on a tablet -> iPadOS), devices (Desktop,
-- Mobile, Tablet), sources (Yahoo -> Yahoo!, VK -> Vkontakte, YouTube -> Youtube, ...) and
-- referrers (no leading www., no trailing /), in raw events and in visits (sessions; the
-- daily aggregates hold none of these columns, and none is in a sort key). Mutations rewrite
-- these columns in the parts holding rows to rename, and each statement waits for its
-- mutation (mutations_sync = 2: every replica); a row already renamed matches no condition,
-- so the step can run again after a crash. Cost: one read of the six columns of every part
-- and one rewrite of them (only them) in parts with old names: 2 million events took 1.2 s
-- on two shared cores (chdb), so about a minute per 100 million, and the I/O of those
-- columns' compressed size twice (system.columns); sessions are fewer rows. Events already in
-- the stream when it runs keep the names the old ingest gave them: stop ingest and let the
-- consumers drain the stream before starting the new release (docs/operations.md). On a
-- cluster the statements go to the _local tables ON CLUSTER: a replicated table's
-- mutation runs once per shard and its replicas apply it. The down half gives ingest's former names back
-- where the row tells them (Safari on iOS was Mobile Safari): Opera Mini, IE Mobile,
-- Facebook's and Instagram's in-app browsers, mobile apps' versions and referrers' www.
-- are not restored.
-- up
ALTER TABLE events UPDATE {names_up} SETTINGS mutations_sync = 2;
ALTER TABLE sessions UPDATE {names_up} SETTINGS mutations_sync = 2
-- down
ALTER TABLE sessions UPDATE {names_down} SETTINGS mutations_sync = 2;
ALTER TABLE events UPDATE {names_down} SETTINGS mutations_sync = 2
