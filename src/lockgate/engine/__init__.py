"""The run engine: runs one pipeline run and reports every state change as an event."""
