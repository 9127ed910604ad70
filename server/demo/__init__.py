"""The demo hall: an embedded broker, the server and simulated clerks on real agent runtimes."""
