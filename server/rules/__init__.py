"""The rules core: pure functions over typed facts, a policy, a calendar and a clock.

Nothing in this package does I/O or reads the time: adapters in ``server/``
feed it, so a day can be replayed and every rule tested from a table.
"""
