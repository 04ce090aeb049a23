-- The visits table compresses in blocks of 16 to 64 KiB instead of 64 KiB to 1 MiB. It
-- is an aggregating table, so a merge reads every column of every part it merges at
-- once (no vertical merge), with a block of each column in memory, and writes every
-- column at once: draining 10M events, one merge of `sessions` held up to 180 MB; with
-- these blocks, 75 MB. Parts are not rewritten: merges from now on use the settings.
-- up
ALTER TABLE sessions MODIFY SETTING max_compress_block_size = 65536,
    min_compress_block_size = 16384
-- down
ALTER TABLE sessions RESET SETTING max_compress_block_size, min_compress_block_size
