"""Reference servers the hub is measured against."""
