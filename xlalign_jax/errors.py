"""The one exception type for user mistakes: the CLI prints it as one line and exits non-zero."""


class UserError(Exception):
  """Bad input from the user (config, file, shape, flag). The message names the culprit."""
