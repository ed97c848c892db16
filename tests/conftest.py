pytest_plugins = ["devkit.pytest_plugin"]
