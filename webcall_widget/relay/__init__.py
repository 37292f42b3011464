"""The live session: connect tokens, the browser wire protocol, and the relay consumer."""
