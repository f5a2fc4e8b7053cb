"""The `vnarrate` group: global flags, and commands loaded only when one is run or asked about.

Takes the command line; gives the click group. `vnarrate --help` lists the commands from
texts.py without importing them, so it starts as fast as click itself.
"""

from __future__ import annotations

import click

from ..runs.terminal import TerminalReporter
from ..version import __version__
from .texts import COMMANDS, EXIT_CODES_HELP, GROUP_HELP


class LazyGroup(click.Group):
    """A group whose commands (cli/commands.py, which loads Settings) are imported on use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        from .commands import BY_NAME  # on use only: keeps `vnarrate --help` fast

        return BY_NAME[cmd_name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(list(COMMANDS.items()))


@click.group(
    cls=LazyGroup,
    help=GROUP_HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, "--version", prog_name="vnarrate")
@click.option("-v", "--verbose", is_flag=True, help="Say what happens; tracebacks for bugs.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the product and errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    ctx.obj = TerminalReporter(verbose=verbose, quiet=quiet)
