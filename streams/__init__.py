"""framewatch streams stage."""
