"""The bounds nncli checks before it works, below every room (they import only ``errors``):
``files`` (which paths it reads and writes: regular files, never a device, a named pipe or a
link loop, and where a checkpoint may go) and ``limits`` (how much: the memory an estimate may
claim and the columns a header may name)."""
