"""One module per command: files in, data out, no printing (``nncli.cli`` parses, calls one
function of a module here and renders what it returns)."""
