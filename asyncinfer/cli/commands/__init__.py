"""One module per command of the ``asyncinfer`` CLI; ``asyncinfer.cli.app`` registers them."""
