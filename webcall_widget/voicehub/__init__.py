"""The upstream: everything that knows how to talk to VoiceHub (HTTP and the live socket)."""
