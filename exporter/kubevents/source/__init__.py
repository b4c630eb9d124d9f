"""Sources: where raw Events come from (a replay file, a cluster watch)."""
