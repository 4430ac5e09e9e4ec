"""One module per command: files in, data out, no printing."""
