"""sandboxd: run untrusted code in Docker sandboxes and watch it run, live."""

__version__ = "0.1.0"
