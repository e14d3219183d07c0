"""Outbound messaging: when a message may go out, how it is written, and how it reaches the provider."""
