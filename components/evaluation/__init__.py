"""evaluation: see README layout."""
