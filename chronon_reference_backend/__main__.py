"""``python -m chronon_reference_backend serve|init-models|openapi`` — the same
subcommands as ``chronon-airflow backend ...``, usable without the main CLI."""
import argparse
import sys

from chronon_reference_backend.cli import add_backend_subcommands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chronon_reference_backend")
    add_backend_subcommands(parser.add_subparsers(dest="backend_command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
