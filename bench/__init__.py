"""The benchmark suite of the node portal (``make bench``, see bench/README.md).

One run measures, side by side on the same machine and in the same minute:

- the operator's pages (dashboard, job list) under a 50-connection load,
  against gunicorn serving a static file with the same settings
  (:mod:`bench.web`);
- the idle memory of web + worker + Redis as ``make run`` starts them
  (:mod:`bench.memory`);
- how long a lab mesh takes to converge (:mod:`bench.convergence`).

Machines here are shared and noisy, so the suite reports ratios and medians
of repeated rounds rather than absolute figures, and nothing in the test
suite asserts on a time.
"""
