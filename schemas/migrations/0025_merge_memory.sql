-- Merges in small blocks: the tables the consumer's inserts fill (events and the views'
-- targets) merge 1,024 rows at a time instead of 8,192, and `events` (the widest, and the
-- one plain MergeTree: the aggregating tables merge whole rows) merges vertically
-- whatever its size (the sorting key's columns first, then each other column alone), so
-- a merge holds a block of one column, not of every column of every part it reads.
-- Draining 3M events through `hitstream consume` (two runs each): peak RSS 570 / 607 ->
-- 518 / 516 MB, private 323 / 358 -> 292 / 284 MB; 10M events (one run each): 539 ->
-- 523 MB, private 292 -> 290 MB; the drain's rate within the runs' noise. Parts are not
-- rewritten: merges from now on use the settings.
-- up
ALTER TABLE events MODIFY SETTING merge_max_block_size = 1024,
    vertical_merge_algorithm_min_rows_to_activate = 1,
    vertical_merge_algorithm_min_columns_to_activate = 1;
ALTER TABLE sessions MODIFY SETTING merge_max_block_size = 1024;
ALTER TABLE daily_totals MODIFY SETTING merge_max_block_size = 1024;
ALTER TABLE daily_pages MODIFY SETTING merge_max_block_size = 1024;
ALTER TABLE daily_visits MODIFY SETTING merge_max_block_size = 1024
-- down
ALTER TABLE events RESET SETTING merge_max_block_size,
    vertical_merge_algorithm_min_rows_to_activate,
    vertical_merge_algorithm_min_columns_to_activate;
ALTER TABLE sessions RESET SETTING merge_max_block_size;
ALTER TABLE daily_totals RESET SETTING merge_max_block_size;
ALTER TABLE daily_pages RESET SETTING merge_max_block_size;
ALTER TABLE daily_visits RESET SETTING merge_max_block_size
