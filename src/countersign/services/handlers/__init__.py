"""What every collection handler shares (base.py)."""
