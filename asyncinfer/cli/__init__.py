"""The user's command line: ``python -m asyncinfer`` (see ``app``)."""
