"""The bounds on how much work one message may cost the parser, in one place.

Separate so that every cap on hostile input (parts, nesting, header sizes, warnings) can be read and
tuned together; each is imported by the one module that enforces it.
"""

# Bounds that keep hostile input (millions of parts, megabyte headers) from costing more than a normal
# message; real mail never comes near them.
_MAX_WARNINGS = 50
_MAX_PARTS = 1000
_MAX_DEPTH = 30
_MAX_ADDRESS_HEADER = 256 * 1024  # getaddresses() is pure Python: about 1 s per MB
_MAX_DATE_HEADER = 300
_MAX_FILENAME = 255
_CALENDAR_SCAN = 64 * 1024  # METHOD sits near the top of a VCALENDAR
