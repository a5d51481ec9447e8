"""LangGraph's own store tests, vendored to run against rmem.integrations.langgraph."""
