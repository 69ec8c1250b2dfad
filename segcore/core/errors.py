"""The one class of user errors: bad params, files, archives, checkpoints or model files.

A stage's entry point (segcore.pipeline.cli.run) prints a UserError as one line and exits with
code 2; every other exception is a bug and keeps its traceback. Subclasses name the kind of
input; some also derive from ValueError or RuntimeError, as they did before this class existed.
"""


class UserError(Exception):
    """Input the user can fix; the message names the value or file and what is allowed."""
