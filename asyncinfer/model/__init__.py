"""The demo model the stack deploys by default and local mode serves (``inference.py``)."""
