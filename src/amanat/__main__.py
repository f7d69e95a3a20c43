"""``python -m amanat`` is the ``amanat`` command."""

from amanat.cli import main

main()
