"""Running an installation: backups and restores, event retention."""
