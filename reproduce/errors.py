"""The one exception type a user mistake is reported with."""


class UserError(Exception):
    """Something the user can fix: the command line prints it as one line and exits.

    `exit_code` is 2 for a usage mistake (a bad option value), 1 otherwise.
    """

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


def report_errors(action, debug=False):
    """Run `action()`; a UserError or Ctrl-C becomes one line on stderr. Returns the exit status."""
    import sys
    import traceback
    try:
        action()
    except UserError as e:
        if debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0
