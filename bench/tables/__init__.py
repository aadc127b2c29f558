"""Paper tables computed from run records (one module per paper)."""
