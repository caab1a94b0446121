"""OpenAI wire models (pydantic): what clients send and the shapes the gateway answers with."""
