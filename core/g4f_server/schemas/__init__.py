"""Wire schemas (pydantic): what clients send. "model" here always means an AI model."""
