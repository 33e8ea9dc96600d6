"""``python -m strongroom.server`` is the ``strongroom`` command."""

from strongroom.server.cli import main

if __name__ == "__main__":
    main()
