"""Framework test suites vendored to run against rmem adapters."""
