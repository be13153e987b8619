"""``python -m asyncinfer`` and the ``asyncinfer`` console script."""

from __future__ import annotations

from asyncinfer.cli.app import app


def main() -> None:
    app(prog_name="asyncinfer")


if __name__ == "__main__":
    main()
