"""framewatch scoring stage."""
