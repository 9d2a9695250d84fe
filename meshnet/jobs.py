"""RQ entry points of the meshnet app, one module per part of the app.

The job registry imports this module (autodiscovery of ``<app>.jobs``);
each part registers its kinds in its own ``jobs_<part>`` module.
"""

from . import (
    jobs_addresses,  # noqa: F401, E402
    jobs_changes,  # noqa: F401, E402
    jobs_directory,  # noqa: F401, E402
    jobs_routing,  # noqa: F401, E402
)
