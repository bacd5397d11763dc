"""The command line's own layer: options, command bodies, tables, progress, completion, the
alert hook. Above the engine; `nsscale/cli.py` wires these into the Typer app."""
