"""What accounts tells higher floors, which it does not import.

`password_verified` is sent inside the login's transaction right after the password was accepted and
the keyring opened, with the plain password (an in-process call: it never leaves the process). A
receiver that has work to do at a user's login (the legacy import converts the user's old data)
returns a list of `accounts.login.Notice` for the page to show, or None.
"""

from django.dispatch import Signal

password_verified = Signal()  # kwargs: user: User, password: str; returns list[Notice] | None
