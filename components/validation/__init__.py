"""validation: see README layout."""
