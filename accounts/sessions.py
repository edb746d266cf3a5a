"""The session store: Django's cache sessions (Redis), with an idle timeout that slides cheaply.

Sessions expire after SESSION_COOKIE_AGE without a request (settings: SESSION_SAVE_EVERY_REQUEST), so
every response pushes the expiry forward. Django's cache store does that by saving the session: a GET
to check it still exists, then a SET of the whole pickled session, on every page (#15: two of the
page's four Redis round trips). When the request changed nothing in the session, moving its expiry is
all that is needed: one EXPIRE, which also tells whether the session still exists. The SET of an
unchanged session also wrote back this request's copy over whatever a concurrent request of the same
user had stored meanwhile (a login step, a flash message); the EXPIRE leaves that alone.
"""

from __future__ import annotations

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore


class SessionStore(CacheSessionStore):
    def save(self, must_create: bool = False) -> None:
        """An unchanged, loaded session only has its expiry moved; anything else is saved as Django does."""
        loaded = hasattr(self, "_session_cache")
        if must_create or self.session_key is None or self.modified or not loaded:
            super().save(must_create=must_create)
            return
        if not self._cache.touch(self.cache_key, self.get_expiry_age()):
            # Deleted meanwhile (a logout in another tab, "log out everywhere"): as Django's save, which
            # SessionMiddleware turns into SessionInterrupted rather than bringing the session back.
            raise UpdateError
