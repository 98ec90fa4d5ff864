"""Files for people outside the dashboard: the quarterly export, safe to publish."""
