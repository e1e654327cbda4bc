"""The `lockgate` command line (typer)."""
