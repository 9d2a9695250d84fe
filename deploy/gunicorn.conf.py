"""gunicorn settings for the portal's web process (``portal.wsgi``).

Sized for the smallest node we expect: a 1 GB netbook where web, worker and
Redis together must stay under 150 MB resident. One Django process costs
about 50-60 MB, so the web side is a single worker process with a few
threads (``gthread``): the pages are short and mostly wait on SQLite, and
threads share one copy of Django. A second process would buy little on two
cores and cost another 50 MB. Operators of bigger machines raise
``GUNICORN_WORKERS``.

The socket (``--bind unix:...``) and the pid file are given on the command
line by ``manage.py runnode`` or the systemd unit, so this file is the same
for both.
"""

import os

wsgi_app = "portal.wsgi:application"
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "1"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))

# nginx in front buffers slow clients; a request that takes longer than this
# is a bug (long work belongs in a job), so the worker is recycled.
timeout = 30
graceful_timeout = 20
keepalive = 5

# Recycle the worker now and then so a slow leak never grows into the
# netbook's swap; the jitter keeps a restart from landing on every node
# at once after a mesh-wide announcement.
max_requests = 2000
max_requests_jitter = 200

# gunicorn applies this umask only while it creates the socket. The socket
# itself is open to all (0777) because access is decided by its folder:
# ``<state>/run/web`` is owned by the web user and the nginx workers' group,
# mode 0750, so only nginx (and root) can reach gunicorn. Files the web
# process writes (SQLite) follow the process umask set by its starter (027).
umask = 0o000

# Requests come only from nginx over the Unix socket; trust its headers.
forwarded_allow_ips = "*"

accesslog = None
errorlog = "-"
loglevel = "warning"
capture_output = False
proc_name = "byzantium-web"
