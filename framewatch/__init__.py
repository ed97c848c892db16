"""framewatch core: settings, records, taxonomy, clients, the local stack and the command."""

__version__ = "0.1.0"
