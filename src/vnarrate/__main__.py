"""`python -m vnarrate`: the same as the `vnarrate` command."""

from .cli import main

if __name__ == "__main__":
    main()
