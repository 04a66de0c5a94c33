"""``deepres serve``: an HTTP inference service with dynamic batching (serve/app.py)."""
