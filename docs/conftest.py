# pytest collects the .rst pages for their doctests (setup.cfg): not the build output,
# the generated API stubs or this configuration.
collect_ignore = ["conf.py"]
collect_ignore_glob = ["_build/*", "api/*"]
