"""``python -m numfmt``: the command line, whatever ``numfmt`` means on PATH (GNU coreutils
has a ``numfmt`` of its own)."""

from numfmt.cli import main

if __name__ == "__main__":
    main(prog_name="numfmt")
