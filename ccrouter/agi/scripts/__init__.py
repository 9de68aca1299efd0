"""AGI scripts: one module per script, one public `async def` named after it."""
