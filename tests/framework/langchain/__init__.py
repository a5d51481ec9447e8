"""LangChain's own tests for chat message histories, vendored to run on rmem."""
