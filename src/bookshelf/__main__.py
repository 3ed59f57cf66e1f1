"""``python -m bookshelf``: the same commands as the ``bookshelf`` console script."""

from bookshelf.cli import main

main()
