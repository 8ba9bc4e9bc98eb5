"""Subcommands of `movseg`, one module each (add_arguments, run)."""
