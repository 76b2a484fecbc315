"""`python -m vresponses` runs the command line."""

from vresponses.cli import main

main()
