"""``python -m sniparse``: the same command line as ``sniparse``."""

from .cli import main

if __name__ == "__main__":
    main()
