"""framewatch's devkit wing: what is not the product's hot path (demo, test data, test harness).

Stages never import it; it imports only the core, like any plugin.
"""
