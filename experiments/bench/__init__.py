"""Performance benchmarks behind ``millinet bench`` (simulator, env, service)."""
