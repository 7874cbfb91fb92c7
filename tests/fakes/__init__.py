"""Fake broker servers on loopback: real HTTP, the brokers' real request and response shapes."""
