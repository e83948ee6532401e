"""Sub-commands of the ``millinet`` CLI, one module each."""
