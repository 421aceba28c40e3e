"""End-to-end tests: the simulator over HTTPS with mutual TLS, separate processes, PostgreSQL."""
