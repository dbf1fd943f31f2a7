"""``python -m components.cli``: the same as the ``ecgops`` console script."""

from components.cli import main

main()
