"""The OpenAI Agents SDK's own session tests, vendored to run against RmemSession."""
