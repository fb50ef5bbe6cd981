-- find_child looks a successor up by family (refresh_tokens_family_idx) and parent: one
-- index fewer to write on every rotation.
DROP INDEX refresh_tokens_parent_idx;
