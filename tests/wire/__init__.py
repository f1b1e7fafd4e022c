"""Loopback servers that speak each vendor's wire protocol, for driving the real SDKs in tests."""
