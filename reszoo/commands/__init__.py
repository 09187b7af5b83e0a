"""One module per `reszoo` subcommand (the table is reszoo.cli.COMMANDS)."""
