"""Tags: user labels on messages, and suggestions learned from the user's own tagging."""
