"""data: see README layout."""
