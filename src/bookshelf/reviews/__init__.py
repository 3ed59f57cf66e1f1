"""Reviews: one per reader per book, owned by their author."""
