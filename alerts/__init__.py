"""framewatch alerts stage."""
