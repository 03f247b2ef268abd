"""Push notifications of new alerts to responders: webhook, e-mail, command.

Why a package in the kernel: the outbox rows are written by ``weibo_mh.alert_queue`` in the
transaction that creates their alerts, and the sender runs inside the scoring worker (which may
not import ``analysis``) as well as on its own (``python -m weibo_mh.notify run``). One module
per job:

- ``outbox``: the ``notifications`` rows and the per-channel lease (database only);
- ``message``: what a digest says, built from alert rows (no network);
- ``channels``: how a digest reaches a webhook, an SMTP server or a command (network only);
- ``sender``: the loop that decides when a channel sends (digest window, hourly cap, back-off);
- ``__main__``: ``run``, ``test``, ``status`` and ``retry``.
"""
