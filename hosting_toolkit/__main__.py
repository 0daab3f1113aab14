"""``python -m hosting_toolkit`` runs the CLI."""

from hosting_toolkit.cli.main import main

main()
