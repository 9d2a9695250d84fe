"""The lab: mesh nodes and clients in network namespaces (see DESIGN.md).

Public API::

    from portal.lab import Lab, LabSpec

    lab = Lab(prefix="byz", base_dir=settings.PORTAL.lab_dir)
    lab.up(LabSpec(nodes=3, topology="line", clients=1))
    seconds = lab.wait_converged(timeout=60)
    lab.status().to_dict()          # namespaces, links, addresses, daemons
    lab.exec("c1", ["ping", "-c1", "10.213.1.1"])
    lab.down()

``portal.lab.spec`` holds the naming and address plan; tests get labs from
the fixtures in ``portal.lab.pytest_plugin``.
"""

from .lab import Lab, LabError, LabStatus, list_namespaces
from .spec import LabSpec

__all__ = ["Lab", "LabError", "LabSpec", "LabStatus", "list_namespaces"]
