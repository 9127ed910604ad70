"""The server process: the app that composes every capability's routes, the WebSocket and the pages."""
