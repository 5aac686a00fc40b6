"""``python -m pepper``: the command-line interface."""

from pepper.cli.main import main

main()
