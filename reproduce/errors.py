"""The one exception type a user mistake is reported with."""


class UserError(Exception):
    """Something the user can fix: the command line prints it as one line and exits.

    `exit_code` is 2 for a usage mistake (a bad option value), 1 otherwise.
    """

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code
