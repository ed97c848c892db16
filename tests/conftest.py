pytest_plugins = ["framewatch.testing.pytest_plugin"]
